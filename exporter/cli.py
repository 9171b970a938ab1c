"""Command line: options and the environment -> ExportConfig -> one pipeline call -> a short report.

This is the only place where an :class:`~exporter.errors.ExportError` becomes an exit code.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from . import __version__, pipeline
from .process import prepare
from .books.database import BOOKS_NAME, DEFAULT_ACCOUNT
from .config import (
    DEFAULT_DATE_FORMAT,
    DEFAULT_FORMATS,
    DEFAULT_BALANCE_MAX_RECORDS,
    DEFAULT_GRANULARITY,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_OUT,
    GRANULARITIES,
    MAX_LOOKBACK_DAYS,
    BooksSettings,
    OutputSettings,
    RenderOptions,
)
from .cli_books import COMMANDS as BOOKS_COMMANDS
from .cli_books import superseded_lines
from .cli_options import (
    AmountType,
    AsOfDate,
    FormatList,
    Seconds,
    api_context,
    build_config,
    line_writer,
    option_text,
    refuse_close_unfinished,
    refuse_ignored,
    sandbox_instant,
    source_options,
)
from .cli_profiles import (
    CONFIG_ENV,
    CONFIG_NAME,
    INVERTED,
    OPTION_KEYS,
    PROFILE_ONLY,
    Run,
    account_key,
    config_option,
    each_profile,
    find_config,
    load_config,
    profile_options,
    profile_params,
    runs,
)
from .display import echo, json_text, visible
from .errors import ConfigError, ExportError, from_foreign, os_reason
from .writers import FORMATS
from .writers.manifest import export_summary, report_summary
from .writers.terminal import render_result, render_summary, replaced_line


class ExporterGroup(click.Group):
    """The one place where an error becomes ``Error: <one line>`` on stderr and an exit code.

    The exporter's own errors carry their code; anything else is read by
    :func:`exporter.errors.from_foreign` (the table in errors.py). No traceback, unless ``--debug``
    (or WAVESPEED_DEBUG=1) asks for one on an error that is not the exporter's own.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: usage errors (exit 2), --help, --version
        except ExportError as exc:
            error = exc
        except (Exception, KeyboardInterrupt) as exc:
            if ctx.params.get("debug"):
                raise
            if isinstance(exc, BrokenPipeError):
                _discard_stdout()
            error = from_foreign(exc)
        failure = click.ClickException(_one_line(option_text(error)))
        failure.exit_code = error.exit_code  # type: ignore[misc]  # click declares it per class
        raise failure from error


def _one_line(message: str) -> str:
    """One line (line breaks as spaces), terminal-safe (display.visible); text a terminal cannot
    print escaped."""
    flat = visible(_LINE_BREAKS.sub(" ", message)).strip()
    return flat.encode("utf-8", "backslashreplace").decode("utf-8")


_LINE_BREAKS = re.compile(r"[\r\n]+")


def _discard_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the final flush at exit cannot fail again."""
    try:
        target = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (e.g. under click's CliRunner)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, target)
    finally:
        os.close(devnull)


@click.group(cls=ExporterGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="wavespeed-export")
@click.option("--debug", is_flag=True, envvar="WAVESPEED_DEBUG",
              help="Show the traceback of an unexpected error (env: WAVESPEED_DEBUG=1).")
def cli(debug: bool) -> None:
    """Export a WaveSpeedAI account's billing history as an accountant's month-end pack.

    \b
    Example (no key, no network: the built-in sandbox API):
        wavespeed-export export --sandbox --period 2024-01
    """


@cli.command()
@profile_options
@source_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Folder that receives <out>/<label>/ (with profiles: <out>/<profile>/<label>/).")
@click.option("--format", "formats", type=FormatList(), default=",".join(DEFAULT_FORMATS), show_default=True,
              help=f"Comma-separated subset of: {', '.join(FORMATS)}.")
@click.option("--accounts", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Account mapping TOML (default: templates/accounts.toml).")
@click.option("--granularity", type=click.Choice(GRANULARITIES), default=DEFAULT_GRANULARITY, show_default=True,
              help="One usage journal entry per calendar month, or one per day.")
@click.option("--iif-lists", is_flag=True, help="Prepend !ACCNT/!CLASS blocks to the IIF file (fresh company files).")
@click.option("--date-format", default=DEFAULT_DATE_FORMAT, show_default=True,
              help="strftime format of the dates in the Xero file, as your Xero organisation's region reads "
                   "them (e.g. %m/%d/%Y in the US). QuickBooks files always use MM/DD/YYYY.")
@click.option("--strict", is_flag=True, help="Fail (exit 6) instead of writing when there is any warning.")
@click.option("--no-reconcile", is_flag=True, help="Skip the comparison with the provider's usage summary.")
@click.option("--from-source", type=click.Path(exists=True, path_type=Path),
              help="Re-render offline from an earlier export's source/ archive (no API).")
@click.option("--books", "books_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The books database (default: <out>/books.sqlite).")
@click.option("--close", "close_after", is_flag=True, help="Close the period once exported (month-end automation).")
@click.option("--lookback", type=click.IntRange(0, MAX_LOOKBACK_DAYS), default=DEFAULT_LOOKBACK_DAYS, show_default=True,
              help="Re-check closed periods that ended up to this many days before the period for late changes.")
@click.option("--recheck", type=click.Choice(["changed", "full"]), default="changed", show_default=True,
              help="Closed days re-read for late changes: those whose day totals at the provider changed "
                   "(and those that held pending records), or every one (catches what day totals cannot show).")
@click.option("--opening-balance", type=AmountType(), metavar="AMOUNT",
              help="The credit balance at the start of the period, when the books and the provider cannot tell.")
@click.option("--balance-max-records", type=click.IntRange(0), default=DEFAULT_BALANCE_MAX_RECORDS, show_default=True,
              help="Most records after the period fetched to derive its closing from the provider's balance.")
@click.option("--topups", type=click.Path(dir_okay=False, exists=True, path_type=Path), metavar="FILE",
              help="CSV of the top-ups paid (date,amount,reference): the current API lists none; they are "
                   "booked and tied out against the provider's balance.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object for scripts (period, formats, totals, warnings, files) instead of text.")
@click.option("--lock-timeout", type=Seconds(0), default=0, show_default=True, metavar="SECONDS",
              help="Wait this long for another export of the same period into the same --out (0: fail at once, exit 2).")
def export(**params: Any) -> None:
    """Write the accountant pack for a period into <out>/<label>/.

    CSV files, an Excel workbook, QuickBooks files, manifest.json and the raw source archive.
    Nothing is written unless every file is complete.

    \b
    Examples:
        wavespeed-export export --sandbox --period 2024-01
        WAVESPEED_API_KEY=... wavespeed-export export --period 2024-01 --timezone Europe/Berlin
        wavespeed-export export --period 2024-Q1 --format csv,quickbooks
        wavespeed-export export --period last-month --strict -q     # cron: silent unless something is wrong
        wavespeed-export export --period last-month --json | jq .totals
        wavespeed-export export --from-source output/2024-01
        wavespeed-export export --all-profiles --period last-month   # every account of wavespeed-export.toml
    """
    _, todo = runs(params, lambda: export)
    if todo[0].profile is None:
        _export_one(todo[0].params)
        return
    done: dict[str, pipeline.ExportResult] = {}
    finish = ("consolidated", lambda: _consolidate(todo, done, params)) if len(todo) > 1 else None
    try:
        each_profile(todo, lambda run: _export_one(profile_params(run), run, done), quiet=params["quiet"],
                     as_json=params["as_json"], finish=finish)
    except ExportError:
        if finish is not None and len(done) < len(todo):
            from .consolidate import not_written
            echo(not_written([run.name for run in todo if run.name not in done]), err=True)
        raise


def _consolidate(todo: list[Run], done: dict[str, pipeline.ExportResult], params: dict[str, Any]) -> dict[str, Any]:
    """Several accounts exported: their consolidated month (docs/profiles.md); what --json shows of it."""
    # imported here: its workbook layout loads openpyxl, which an export of one account's CSV never needs
    from .consolidate import account_pack, consolidate

    first = todo[0].params
    result = consolidate([Path(run.params["out"]) for run in todo],
                         [account_pack(run.name, done[run.name]) for run in todo],
                         [tuple(run.params["formats"]) for run in todo],
                         RenderOptions(iif_lists=first["iif_lists"], date_format=first["date_format"]),
                         first["lock_timeout"])
    if not params["quiet"] and not params["as_json"]:
        echo(f"consolidated {result.consolidated.label}: {result.folder} ({len(result.files)} files, "
             f"{len(todo)} accounts)")
    return {"folder": str(result.folder), "accounts": [pack.name for pack in result.consolidated.accounts],
            "formats": list(result.formats), "files": [path.name for path in result.files]}


def _export_one(params: dict[str, Any], run: Run | None = None,
                done: dict[str, pipeline.ExportResult] | None = None) -> dict[str, Any] | None:
    """One account's export and its lines; with --json and a profile, the JSON is returned instead.
    ``done`` collects each profile's result (for the consolidated pack)."""
    refuse_ignored(params)
    refuse_close_unfinished(params)
    if run is not None and run.profile is not None:
        params["api_key"] = account_key(run.profile)
    with api_context(params) as (base_url, api_key):
        config = build_config(
            params, base_url, api_key, archive=params["from_source"],
            output=OutputSettings(
                out=params["out"], formats=params["formats"], accounts=params["accounts"],
                granularity=params["granularity"], strict=params["strict"],
                render=RenderOptions(iif_lists=params["iif_lists"], date_format=params["date_format"]),
                reconcile=not params["no_reconcile"], lock_timeout=params["lock_timeout"],
            ),
            books=BooksSettings(
                path=params["books_file"], close=params["close_after"], lookback_days=params["lookback"],
                recheck=params["recheck"], opening_balance=params["opening_balance"], topups=params["topups"],
                account=run.name if run is not None else DEFAULT_ACCOUNT,
            ),
        )
        result = pipeline.run_export(config)
    if done is not None and run is not None:
        done[run.name] = result
    if params["as_json"]:
        summary = export_summary(result.manifest, result.folder, result.replaced)
        if run is not None and run.profile is not None:
            return summary
        _echo_json(summary)
    elif params["quiet"]:  # cron: nothing to mail unless there is something to look at
        for warning in result.report.warnings:
            echo(f"warning: {warning}", err=True)
    else:
        replaced = replaced_line(result.replaced) if result.replaced else None
        echo(render_result(result.report, result.folder, result.files, replaced))
    if result.closed and not params["as_json"] and not params["quiet"]:  # -q: silent unless something is wrong
        label = result.report.context.window.label
        echo(f"closed {label}")
        for line in superseded_lines(label, result.superseded):
            echo(line)
    return None


@cli.command()
@config_option
@source_options
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON Lines here instead of stdout.")
def fetch(**params: Any) -> None:
    """Print a period's records as JSON Lines, amounts exactly as the API sent them.

    \b
    Examples:
        wavespeed-export fetch --sandbox --period 2024-01 --output jan.jsonl
        wavespeed-export fetch --period 2024-01 | jq -c 'select(.type == "topup")'
    """
    _, (run,) = runs(params, lambda: export)  # the configuration file's [defaults] apply
    params = run.params
    refuse_ignored(params)
    with api_context(params) as (base_url, api_key), line_writer(params["output"]) as write:
        extraction = pipeline.fetch(build_config(params, base_url, api_key), write)
    if not params["quiet"]:
        echo(f"{len(extraction.records):,} records in the period", err=True)
        for warning in extraction.warnings:
            echo(f"warning: {warning}", err=True)


@cli.command()
@profile_options
@source_options
@click.option("--from-source", type=click.Path(exists=True, path_type=Path),
              help="Read an earlier export's source/ archive instead of the API.")
@click.option("--accounts", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Account mapping TOML (default: templates/accounts.toml).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object for scripts (period, totals, warnings, spend per model) instead of the table.")
def summary(**params: Any) -> None:
    """Show spend per model and the period's totals; writes no files.

    \b
    Examples:
        wavespeed-export summary --sandbox --period 2024-01
        wavespeed-export summary --period this-month --json | jq '.by_model[0]'
        wavespeed-export summary --all-profiles --period 2024-01      # each account of wavespeed-export.toml
    """
    _, todo = runs(params, lambda: export)
    if todo[0].profile is None:
        _summary_one(todo[0].params)
    else:
        each_profile(todo, lambda run: _summary_one(run.params, run), quiet=params["quiet"], as_json=params["as_json"])


def _summary_one(params: dict[str, Any], run: Run | None = None) -> dict[str, Any] | None:
    refuse_ignored(params)
    if run is not None and run.profile is not None:
        params["api_key"] = account_key(run.profile)
    with api_context(params) as (base_url, api_key):
        report = pipeline.summarize(
            build_config(params, base_url, api_key, archive=params["from_source"],
                         output=OutputSettings(accounts=params["accounts"]))
        )
    if params["as_json"]:
        if run is not None and run.profile is not None:
            return report_summary(report)
        _echo_json(report_summary(report))
    else:
        echo(render_summary(report))
    return None


def _echo_json(value: dict[str, Any]) -> None:
    echo(json_text(value))


# what `config` shows, in this order: the file's key -> the parameter name
SHOWN = {"out": "out", "books": "books_file", **{k: v for k, v in OPTION_KEYS.items() if k != "mapping"},
         **PROFILE_ONLY}


def settings(run: Run) -> list[tuple[str, str, str]]:
    """(setting, value, where it came from) of one run, as ``wavespeed-export config`` shows them;
    the key never, only where it comes from."""
    params = profile_params(run)
    if run.profile is not None:
        rows = [("key", run.profile.key_origin(), f"profile {run.profile.name}")]
    else:
        given = run.params.get("api_key")
        rows = [("key", "the built-in sandbox's demo key" if run.params.get("sandbox") else
                 "--api-key or WAVESPEED_API_KEY" + ("" if given else " (none given)"), run.origins.get("api_key", "built-in"))]
    rows.append(("base_url", "sandbox (served on a free local port)" if params.get("sandbox") else str(params["base_url"]),
                 run.origins.get("base_url", "built-in")))
    for key, name in SHOWN.items():
        if name not in params:
            continue
        value = params[name]
        if name in INVERTED:
            value = not value
        origin = run.origins.get(name, "built-in")
        if name == "books_file" and run.params.get(name) is None:  # <out>/books.sqlite: from wherever out came
            value, origin = Path(run.params["out"]) / BOOKS_NAME, run.origins.get("out", "built-in")
        shown = ("true" if value else "false") if isinstance(value, bool) else (
            ",".join(value) if isinstance(value, tuple) else "-" if value is None else str(value))
        rows.append((key, shown, origin))
    return rows


def _show_config(**params: Any) -> None:
    """Print the settings each profile of the configuration file runs with, and where each came
    from: command line, profile, defaults or built-in. Keys are never shown, only where they come from.

    Takes the options of export: what they would change is shown as coming from the command line.

    \b
    Examples:
        wavespeed-export config
        wavespeed-export config --config accounts/wavespeed-export.toml --profile prod
        wavespeed-export config --timezone UTC --json
    """
    path = find_config(params["config_file"])
    if path is None:
        raise ConfigError(f"no configuration file: --config FILE, {CONFIG_ENV}, or {CONFIG_NAME} in the working directory")
    if not params["profiles"] and not params["all_profiles"]:
        params["all_profiles"] = bool(load_config(path, export).profiles)
    params["config_file"] = path
    config, todo = runs(params, lambda: export)
    assert config is not None
    shown = [(run, settings(run)) for run in todo]
    if params["as_json"]:
        _echo_json({"file": str(config.path), "profiles": [
            {"profile": run.profile.name if run.profile else None,
             "settings": {key: {"value": value, "from": origin} for key, value, origin in rows}}
            for run, rows in shown]})
        return
    echo(f"configuration file: {config.path}")
    for run, rows in shown:
        echo("")
        echo(f"[profiles.{run.profile.name}]" if run.profile else "(no profile: [defaults] only)")
        width = max(len(value) for _, value, _ in rows)
        for key, value, origin in rows:
            echo(f"  {key:<20} {value:<{width}}  {origin}")


cli.add_command(click.Command(
    "config", callback=_show_config, params=list(export.params), help=_show_config.__doc__,
    short_help="Show each profile's settings and where each value came from.",
    context_settings={"max_content_width": 100},
))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: any free one).")
@click.option("--api", type=click.Choice(("current", "legacy", "both")), default="current", show_default=True,
              help="API generation served: current (billings/search), legacy (account/billings) or both.")
@click.option("--as-of", "as_of", type=AsOfDate(), metavar="YYYY-MM-DD",
              help="Serve the account as it stood at 00:00 UTC that day (default: as of now).")
def sandbox(host: str, port: int, api: str = "current", as_of: date | None = None) -> None:
    """Serve the built-in sandbox API in the foreground (Ctrl-C stops it).

    It serves the current API generation (POST /api/v3/billings/search, ...) by default;
    --api legacy serves GET /api/v3/account/billings, ... instead, --api both serves both.

    \b
    Example:
        wavespeed-export sandbox --port 8765
        wavespeed-export export --base-url http://127.0.0.1:8765 --api-key ws-sandbox-demo-key --period 2024-01
        wavespeed-export sandbox --as-of 2024-02-01      # January as it stood at month end
    """
    from .sandbox.server import run

    instant = sandbox_instant(as_of, "--as-of")
    try:
        run(host, port, api=api, as_of=instant)
    except OSError as exc:  # binding: the port is taken, the address is not ours, the name unknown
        raise ConfigError(f"cannot serve on {host}:{port}: {os_reason(exc)} (try another --port, or 0 for any free one)") from None


for _command in BOOKS_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    prepare()
    cli(prog_name="wavespeed-export")
