"""Command line: options and the environment -> ExportConfig -> one pipeline call -> a short report.

This is the only place where an :class:`~exporter.errors.ExportError` becomes an exit code.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from . import __version__, pipeline
from .config import (
    CONNECT_TIMEOUT,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_FORMATS,
    DEFAULT_GRANULARITY,
    DEFAULT_OUT,
    DEFAULT_PAGE_SIZE,
    DEFAULT_TIMEOUT,
    GRANULARITIES,
    ExportConfig,
    RenderOptions,
    RetryPolicy,
)
from .errors import ConfigError, ExportError
from .extract.urls import check_base_url
from .period import resolve_window
from .writers import FORMATS
from .writers.terminal import render_result, render_summary


class ExporterGroup(click.Group):
    """Turns the exporter's errors into ``Error: <one line>`` and their exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ExportError as exc:
            error = click.ClickException(str(exc))
            error.exit_code = exc.exit_code  # type: ignore[misc]  # click declares it per class
            raise error from exc


class FormatList(click.ParamType):
    name = "formats"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = tuple(dict.fromkeys(part.strip().lower() for part in str(value).split(",") if part.strip()))
        unknown = [n for n in names if n not in FORMATS]
        if unknown or not names:
            self.fail(f"unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}", param, ctx)
        return names


@click.group(cls=ExporterGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="wavespeed-export")
def cli() -> None:
    """Export a WaveSpeedAI account's billing history as an accountant's month-end pack.

    \b
    Example (no key, no network: the built-in sandbox API):
        wavespeed-export export --sandbox --period 2024-01
    """


def _source_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that reads billing records."""
    options = [
        click.option("--period", metavar="YYYY-MM", help="Calendar month to export, e.g. 2024-01."),
        click.option("--start", metavar="YYYY-MM-DD", help="First day of a date range (inclusive)."),
        click.option("--end", metavar="YYYY-MM-DD", help="Last day of a date range (inclusive)."),
        click.option("--timezone", "tz_name", default="UTC", show_default=True,
                     help="IANA time zone whose midnights bound the period, e.g. America/Los_Angeles."),
        click.option("--api-key", envvar="WAVESPEED_API_KEY", show_envvar=True,
                     help="API key (Bearer). Prefer the environment variable: options show up in shell history."),
        click.option("--base-url", envvar="WAVESPEED_BASE_URL", show_envvar=True, default=DEFAULT_BASE_URL,
                     show_default=True, help="API base URL."),
        click.option("--sandbox", is_flag=True, help="Run against the built-in sandbox API (no key, no network)."),
        click.option("--page-size", type=click.IntRange(1, 1000), default=DEFAULT_PAGE_SIZE, show_default=True,
                     help="Records asked per page (the server may serve fewer)."),
        click.option("--concurrency", type=click.IntRange(1, 64), default=DEFAULT_CONCURRENCY, show_default=True,
                     help="Pages fetched at once after the first."),
        click.option("--retries", type=click.IntRange(1, 50), default=RetryPolicy.attempts, show_default=True,
                     help="Attempts per request on 429/5xx/network errors."),
        click.option("--backoff", type=click.FloatRange(0), default=RetryPolicy.backoff, show_default=True,
                     help="First retry wait in seconds (doubles each retry, with jitter)."),
        click.option("--max-wait", type=click.FloatRange(0), default=RetryPolicy.max_wait, show_default=True,
                     help="Most seconds spent waiting on retries in one run."),
        click.option("--timeout", type=click.FloatRange(0.1), default=DEFAULT_TIMEOUT, show_default=True,
                     help="Seconds one request may take, from sending it to the last byte of its answer "
                          f"(connecting: at most {CONNECT_TIMEOUT:g}); a slower answer counts as a failed attempt."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar, no retry notices."),
        click.option("-v", "--verbose", is_flag=True, help="Log every request (URL, status, time) on stderr."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _config(params: dict[str, Any], base_url: str, api_key: str, **extra: Any) -> ExportConfig:
    from_source = extra.get("from_source")
    window = None
    if from_source is None or params["period"] or params["start"] or params["end"]:
        if from_source is not None:
            raise ConfigError("--from-source re-renders the archive's own period: drop --period/--start/--end")
        window = resolve_window(params["period"], params["start"], params["end"], params["tz_name"])
    if from_source is None and not api_key:
        raise ConfigError("no API key: pass --api-key, set WAVESPEED_API_KEY, or use --sandbox")
    if from_source is None:
        base_url = check_base_url(base_url)  # refuse plain http to a remote host before anything else
    return ExportConfig(
        window=window,
        base_url=base_url,
        api_key=api_key,
        page_size=params["page_size"],
        concurrency=params["concurrency"],
        retry=RetryPolicy(attempts=params["retries"], backoff=params["backoff"], max_wait=params["max_wait"]),
        timeout=(min(CONNECT_TIMEOUT, params["timeout"]), params["timeout"]),
        progress=_progress_printer(params["quiet"]),
        **extra,
    )


@contextlib.contextmanager
def _api(params: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(base_url, api_key): the real API, or a sandbox served in-process on a free port."""
    _setup_logging(params["quiet"], params["verbose"])
    if params["api_key"] and not params["quiet"] and _from_command_line("api_key"):
        click.echo("note: --api-key on the command line is visible to other local users (ps) and in shell "
                   "history; prefer the WAVESPEED_API_KEY environment variable", err=True)
    if not params["sandbox"]:
        yield params["base_url"], params["api_key"] or ""
        return
    from .sandbox import DEMO_KEY, serve_in_thread

    with serve_in_thread() as server:
        if not params["quiet"]:
            click.echo(f"sandbox API at {server.url}", err=True)
        yield server.url, DEMO_KEY


def _from_command_line(name: str) -> bool:
    context = click.get_current_context(silent=True)
    return context is not None and context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


@contextlib.contextmanager
def _line_writer(path: Path | None) -> Iterator[Callable[[str], None]]:
    """Lines to a file (replaced only when complete) or to stdout."""
    if path is None:
        yield lambda line: print(line, file=sys.stdout)
        return
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            yield lambda line: print(line, file=handle)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _setup_logging(quiet: bool, verbose: bool) -> None:
    level = logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s", force=True)


def _progress_printer(quiet: bool) -> Callable[[int, int, int], None] | None:
    if quiet or not sys.stderr.isatty():
        return None

    def show(done: int, total: int, records: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        click.echo(f"\rpages [{'#' * filled}{'.' * (width - filled)}] {done}/{total}  records {records:,}{end}",
                   nl=False, err=True)

    return show


@cli.command()
@_source_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Folder that receives <out>/<label>/.")
@click.option("--format", "formats", type=FormatList(), default=",".join(DEFAULT_FORMATS), show_default=True,
              help=f"Comma-separated subset of: {', '.join(FORMATS)}.")
@click.option("--accounts", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Account mapping TOML (default: templates/accounts.toml).")
@click.option("--granularity", type=click.Choice(GRANULARITIES), default=DEFAULT_GRANULARITY, show_default=True,
              help="One usage journal entry per calendar month, or one per day.")
@click.option("--iif-lists", is_flag=True, help="Prepend !ACCNT/!CLASS blocks to the IIF file (fresh company files).")
@click.option("--strict", is_flag=True, help="Fail (exit 6) instead of writing when there is any warning.")
@click.option("--no-reconcile", is_flag=True, help="Skip the comparison with the provider's usage summary.")
@click.option("--from-source", type=click.Path(exists=True, path_type=Path),
              help="Re-render offline from an earlier export's source/ archive (no API).")
@click.option("--lock-timeout", type=click.FloatRange(0), default=0, show_default=True, metavar="SECONDS",
              help="Wait this long for another export of the same period into the same --out (0: fail at once, exit 2).")
def export(**params: Any) -> None:
    """Write the accountant pack for a period into <out>/<label>/.

    CSV files, an Excel workbook, QuickBooks files, manifest.json and the raw source archive.
    Nothing is written unless every file is complete.

    \b
    Examples:
        wavespeed-export export --sandbox --period 2024-01
        WAVESPEED_API_KEY=... wavespeed-export export --period 2024-01 --timezone Europe/Berlin
        wavespeed-export export --start 2024-01-01 --end 2024-03-31 --format csv,quickbooks
        wavespeed-export export --from-source output/2024-01
    """
    with _api(params) as (base_url, api_key):
        config = _config(
            params, base_url, api_key,
            out=params["out"], formats=params["formats"], accounts=params["accounts"],
            granularity=params["granularity"], render=RenderOptions(iif_lists=params["iif_lists"]), strict=params["strict"],
            reconcile=not params["no_reconcile"], from_source=params["from_source"],
            lock_timeout=params["lock_timeout"],
        )
        result = pipeline.run_export(config)
    click.echo(render_result(result.report, result.folder, result.files))


@cli.command()
@_source_options
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON Lines here instead of stdout.")
def fetch(**params: Any) -> None:
    """Print a period's records as JSON Lines, amounts exactly as the API sent them.

    \b
    Examples:
        wavespeed-export fetch --sandbox --period 2024-01 --output jan.jsonl
        wavespeed-export fetch --period 2024-01 | jq -c 'select(.type == "topup")'
    """
    with _api(params) as (base_url, api_key), _line_writer(params["output"]) as write:
        extraction = pipeline.fetch(_config(params, base_url, api_key), write)
    if not params["quiet"]:
        click.echo(f"{len(extraction.records):,} records in the period", err=True)
        for warning in extraction.warnings:
            click.echo(f"warning: {warning}", err=True)


@cli.command()
@_source_options
@click.option("--from-source", type=click.Path(exists=True, path_type=Path),
              help="Read an earlier export's source/ archive instead of the API.")
def summary(**params: Any) -> None:
    """Show spend per model and the period's totals; writes no files.

    \b
    Example:
        wavespeed-export summary --sandbox --period 2024-01
    """
    with _api(params) as (base_url, api_key):
        report = pipeline.summarize(_config(params, base_url, api_key, from_source=params["from_source"]))
    click.echo(render_summary(report))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: any free one).")
def sandbox(host: str, port: int) -> None:
    """Serve the built-in sandbox API in the foreground (Ctrl-C stops it).

    \b
    Example:
        wavespeed-export sandbox --port 8765
        wavespeed-export export --base-url http://127.0.0.1:8765 --api-key ws-sandbox-demo-key --period 2024-01
    """
    from .sandbox.server import run

    run(host, port)


def main() -> None:
    cli(prog_name="wavespeed-export")
