"""Commands on the books database: ``close``, ``reopen`` and ``books`` (``books check``).

Registered on the main group by :mod:`exporter.cli`, whose ``ExporterGroup`` turns errors into
exit codes; nothing here catches them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import closing
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


@click.command()
@_period_options
@_books_options
@click.option("--accounts", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The account mapping the period was exported with (default: templates/accounts.toml).")
def close(**params: Any) -> None:
    """Mark an exported period as handed off: it stays closed, late changes go to the next period.

    Refused (exit 2) for a period never exported or whose pack was changed since.

    \b
    Example:
        wavespeed-export close --period 2024-01
    """
    path = closing.books_path(params["out"], params["books_file"])
    closed = closing.close(path, _label(params), params["accounts"])
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
@_period_options
@_books_options
@click.option("--reason", required=True, help="Why the period is restated (kept in the books).")
def reopen(**params: Any) -> None:
    """Reopen a closed period for a deliberate restatement (the reason is kept in the books).

    \b
    Example:
        wavespeed-export reopen --period 2024-01 --reason "provider re-billed two video tasks"
    """
    path = closing.books_path(params["out"], params["books_file"])
    label = _label(params)
    closing.reopen(path, label, params["reason"])
    echo(f"reopened {label}: export it again to restate it")


@click.group(invoke_without_command=True)
@_books_options
@click.pass_context
def books(ctx: click.Context, **params: Any) -> None:
    """List the periods in the books: exported, closed, records, usage, top-ups, adjustments, pending.

    \b
    Examples:
        wavespeed-export books
        wavespeed-export books check
    """
    ctx.obj = closing.books_path(params["out"], params["books_file"])
    if ctx.invoked_subcommand is not None:
        return
    header = ("period", "exported", "closed", "records", "usage", "top-ups", "adjustments", "pending")
    rows = [
        (line.period.label, f"{line.period.exported_at:%Y-%m-%d %H:%M}",
         f"{line.period.closed_at:%Y-%m-%d %H:%M}" if line.period.closed_at else "open",
         f"{line.period.records:,}", line.usage, line.topups, line.adjustments, line.pending)
        for line in closing.list_periods(ctx.obj)
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@books.command()
@_books_options
@click.pass_context
def check(ctx: click.Context, **params: Any) -> None:
    """Verify that every closed pack still matches what the books recorded (exit 5 naming the file).

    \b
    Example:
        wavespeed-export books check --out output
    """
    checked = closing.check(_subcommand_books(ctx, params))
    for warning in checked.warnings:
        echo(f"warning: {warning}", err=True)
    closed = checked.closed
    echo(f"{len(closed)} closed period(s) match the books" + (f": {', '.join(closed)}" if closed else ""))


@books.command()
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
    path = _subcommand_books(ctx, params)
    for record_id, period in closing.acknowledge(path, ids, params["reason"]):
        echo(f"acknowledged {record_id} (booked in {period}): no longer reported missing")


def _subcommand_books(ctx: click.Context, params: dict[str, Any]) -> Path:
    """The books a ``books`` subcommand works on: its own --out/--books if given, else the group's."""
    given = any(ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT for name in ("out", "books_file"))
    return closing.books_path(params["out"], params["books_file"]) if given else ctx.obj


COMMANDS = (close, reopen, books)
