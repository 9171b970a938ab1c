"""Commands on the books database: ``close``, ``reopen`` and ``books`` (``books check``).

Registered on the main group by :mod:`exporter.cli`, whose ``ExporterGroup`` turns errors into
exit codes; nothing here catches them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from . import closing
from .books.database import DEFAULT_ACCOUNT
from .cli_options import current_clock
from .cli_profiles import each_profile, profile_options, profile_params, runs
from .config import DEFAULT_OUT
from .display import echo
from .period import resolve_window


def _books_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True,
                     help="The export folder (its books.sqlite is used unless --books is given)."),
        click.option("--books", "books_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="The books database (default: <out>/books.sqlite)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _period_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--period", metavar="YYYY-MM", help="The calendar month, e.g. 2024-01."),
        click.option("--start", metavar="YYYY-MM-DD", help="First day of a date range (inclusive)."),
        click.option("--end", metavar="YYYY-MM-DD", help="Last day of a date range (inclusive)."),
        click.option("--timezone", "tz_name", default="UTC", show_default=True, help="As given to export."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _label(params: dict[str, Any]) -> str:
    return resolve_window(params["period"], params["start"], params["end"], params["tz_name"]).label


def _export_command() -> click.Command:
    """The export command, whose options the configuration file's values are checked with."""
    root = click.get_current_context().find_root().command
    assert isinstance(root, click.Group)
    return root.commands["export"]


def _for_each_account(params: dict[str, Any], given: frozenset[str] = frozenset(), *,
                      work: Callable[[dict[str, Any], str], None]) -> None:
    """``work(params, account)`` once without a profile, or once per profile asked for (each on its
    own: one failing does not stop the others); the configuration file's values merged in."""
    _, todo = runs(params, _export_command, given)
    if todo[0].profile is None:
        work(todo[0].params, DEFAULT_ACCOUNT)
    else:
        each_profile(todo, lambda run: work(profile_params(run), run.name))


@click.command()
@profile_options
@_period_options
@_books_options
@click.option("--accounts", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="Ignored: closing keeps what the export booked, with the mapping the export used.")
def close(**params: Any) -> None:
    """Mark an exported period as handed off: it stays closed, late changes go to the next period.

    Refused (exit 2) for a period never exported or whose pack was changed since.

    \b
    Example:
        wavespeed-export close --period 2024-01
        wavespeed-export close --profile client-acme --period 2024-01
    """
    _for_each_account(params, work=_close)


def _close(params: dict[str, Any], account: str) -> None:
    path = closing.books_path(params["out"], params["books_file"])
    closed = closing.close(path, _label(params), account, current_clock())
    period = closed.period
    echo(f"closed {period.label} ({period.records:,} records, pack {period.pack})")
    for line in superseded_lines(period.label, closed.superseded):
        echo(line)


def superseded_lines(label: str, superseded: tuple[str, ...]) -> list[str]:
    """The note that closing ``label`` dropped the open exports overlapping it from the books."""
    if not superseded:
        return []
    return [f"note: {', '.join(superseded)} (open, overlapping {label}) dropped from the books; their packs stay on disk"]


@click.command()
@profile_options
@_period_options
@_books_options
@click.option("--reason", required=True, help="Why the period is restated (kept in the books).")
def reopen(**params: Any) -> None:
    """Reopen a closed period for a deliberate restatement (the reason is kept in the books).

    \b
    Example:
        wavespeed-export reopen --period 2024-01 --reason "provider re-billed two video tasks"
    """
    _for_each_account(params, work=_reopen)


def _reopen(params: dict[str, Any], account: str) -> None:
    path = closing.books_path(params["out"], params["books_file"])
    label = _label(params)
    closing.reopen(path, label, params["reason"], account, current_clock())
    echo(f"reopened {label}: export it again to restate it")


@click.group(invoke_without_command=True)
@profile_options
@_books_options
@click.pass_context
def books(ctx: click.Context, **params: Any) -> None:
    """List the periods in the books: exported, closed, records, usage, top-ups, adjustments, pending.

    \b
    Examples:
        wavespeed-export books
        wavespeed-export books check
        wavespeed-export books --all-profiles
    """
    # the group's options, for a subcommand that gives none of its own (and which of them were given)
    ctx.obj = (dict(params), {n for n in params if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE})
    if ctx.invoked_subcommand is not None:
        return
    _for_each_account(params, work=_list)


def _list(params: dict[str, Any], account: str) -> None:
    header = ("period", "exported", "closed", "records", "usage", "top-ups", "adjustments", "pending")
    rows = [
        (line.period.label, f"{line.period.exported_at:%Y-%m-%d %H:%M}",
         f"{line.period.closed_at:%Y-%m-%d %H:%M}" if line.period.closed_at else "open",
         f"{line.period.records:,}", line.usage, line.topups, line.adjustments, line.pending)
        for line in closing.list_periods(closing.books_path(params["out"], params["books_file"]), account)
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@books.command()
@profile_options
@_books_options
@click.pass_context
def check(ctx: click.Context, **params: Any) -> None:
    """Verify that every closed pack still matches what the books recorded (exit 5 naming the file).

    \b
    Example:
        wavespeed-export books check --out output
        wavespeed-export books check --all-profiles
    """
    _for_each_account(*_subcommand_params(ctx, params), work=_check)


def _check(params: dict[str, Any], account: str) -> None:
    checked = closing.check(closing.books_path(params["out"], params["books_file"]), account)
    for warning in checked.warnings:
        echo(f"warning: {warning}", err=True)
    closed = checked.closed
    echo(f"{len(closed)} closed period(s) match the books" + (f": {', '.join(closed)}" if closed else ""))


@books.command()
@profile_options
@_books_options
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.option("--reason", required=True, help="Why the records are accepted as gone (kept in the books).")
@click.pass_context
def acknowledge(ctx: click.Context, ids: tuple[str, ...], **params: Any) -> None:
    """Accept records the provider no longer returns: later exports stop warning about them.

    The records stay booked in their closed period (nothing is reversed); the reason is kept.

    \b
    Example:
        wavespeed-export books acknowledge txn_2024010004000 --reason "pruned by the provider, ticket 1234"
    """
    def acknowledge_in(params: dict[str, Any], account: str) -> None:
        path = closing.books_path(params["out"], params["books_file"])
        for record_id, period in closing.acknowledge(path, ids, params["reason"], account, current_clock()):
            echo(f"acknowledged {record_id} (booked in {period}): no longer reported missing")

    _for_each_account(*_subcommand_params(ctx, params), work=acknowledge_in)


def _subcommand_params(ctx: click.Context, params: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """What a ``books`` subcommand works on: its own --out/--books and profile options if given,
    else the group's (``books --out X check``); and the names the group was given on the command line."""
    group: dict[str, Any]
    group_given: set[str]
    group, group_given = ctx.obj if isinstance(ctx.obj, tuple) else ({}, set())
    merged, given = dict(params), set[str]()
    for names in (("out", "books_file"), ("config_file", "profiles", "all_profiles")):
        if not any(ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE for n in names):
            merged.update({n: group[n] for n in names if n in group})
            given.update(n for n in names if n in group_given)
    return merged, frozenset(given)


COMMANDS = (close, reopen, books)
