"""Command line: options and the environment -> ExportConfig -> one pipeline call -> a short report.

This is the only place where an :class:`~exporter.errors.ExportError` becomes an exit code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem

from . import __version__, pipeline
from .config import (
    CONNECT_TIMEOUT,
    Clock,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_DATE_FORMAT,
    DEFAULT_FORMATS,
    DEFAULT_BALANCE_MAX_RECORDS,
    DEFAULT_GRANULARITY,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_OUT,
    DEFAULT_PAGE_SIZE,
    DEFAULT_TIMEOUT,
    GRANULARITIES,
    ExportConfig,
    RenderOptions,
    RetryPolicy,
    system_clock,
)
from .cli_books import COMMANDS as BOOKS_COMMANDS
from .errors import ConfigError, ExportError, OutputError, from_foreign, os_reason
from .extract.urls import check_base_url
from .money import parse_amount
from .period import RELATIVE_PERIODS, resolve_window
from .writers import FORMATS, JOURNAL_FORMATS
from .writers.manifest import MANIFEST_NAME, export_summary, report_summary
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
        failure = click.ClickException(_one_line(str(error)))
        failure.exit_code = error.exit_code  # type: ignore[misc]  # click declares it per class
        raise failure from error


def _one_line(message: str) -> str:
    """Line breaks and control characters out; text a terminal cannot print escaped."""
    flat = _CONTROL.sub(" ", message).strip()
    return flat.encode("utf-8", "backslashreplace").decode("utf-8")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


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


class AmountType(click.ParamType):
    """An exact decimal amount (``123.45``, ``-0.0025``) -> micros; never through float."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_amount(str(value).strip())[0]
        except ValueError as exc:
            self.fail(f"{value!r} is not an amount: {exc}", param, ctx)


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

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        done, _, last = incomplete.rpartition(",")
        prefix = done + "," if done else ""
        return [CompletionItem(prefix + name) for name in FORMATS if name.startswith(last)]


def _complete_period(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """The words of --period (months and quarters are typed)."""
    return [word for word in RELATIVE_PERIODS if word.startswith(incomplete)]


@dataclass(frozen=True)
class CliState:
    """What the commands share: the clock (tests pass ``obj=CliState(clock=...)`` to the runner)."""

    clock: Clock = system_clock


def _clock() -> Clock:
    state = click.get_current_context().find_object(CliState)
    return state.clock if state is not None else system_clock


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


def _source_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that reads billing records."""
    options = [
        click.option("--period", metavar="PERIOD", shell_complete=_complete_period,
                     help="Calendar month (2024-01), quarter (2024-Q1), last-month or this-month (in --timezone)."),
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
        click.option("-q", "--quiet", is_flag=True,
                     help="No progress bar, no notices; export prints nothing on success but warnings (stderr)."),
        click.option("-v", "--verbose", is_flag=True, help="Log every request (URL, status, time) on stderr."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


# what reading billing records from the API takes; --from-source reads none of it
_API_OPTIONS = ("period", "start", "end", "tz_name", "api_key", "base_url", "sandbox", "page_size", "concurrency",
                "retries", "backoff", "max_wait", "timeout")


def _refuse_ignored(params: dict[str, Any]) -> None:
    """Options given on the command line that this run would ignore: exit 2, so nobody believes
    they took effect. Values from the environment (WAVESPEED_API_KEY, ...) are not refused."""
    ctx = click.get_current_context()
    flags = {param.name: max(param.opts, key=len) for param in ctx.command.params}
    formats = set(params.get("formats") or ())
    rules = [
        (params.get("from_source") is not None, "--from-source (it re-renders the archive's own period, offline)",
         _API_OPTIONS),
        (params["sandbox"], "--sandbox (it serves its own API, with its own key)", ("base_url", "api_key")),
        (params["quiet"], "--quiet", ("verbose",)),
        ("quickbooks" not in formats, "a --format without quickbooks", ("iif_lists",)),
        (not formats & set(JOURNAL_FORMATS), f"a --format without a journal ({', '.join(JOURNAL_FORMATS)})",
         ("granularity",)),
    ]
    for applies, reason, names in rules:
        ignored = [flags[name] for name in names
                   if name in params and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
        if applies and ignored:
            one = len(ignored) == 1
            raise ConfigError(f"{', '.join(ignored)} {'has' if one else 'have'} no effect with {reason}: "
                              f"drop {'it' if one else 'them'}")


def _config(params: dict[str, Any], base_url: str, api_key: str, **extra: Any) -> ExportConfig:
    from_source = extra.get("from_source")
    window = None
    if from_source is None:  # with --from-source the archive's own window is used
        window = resolve_window(params["period"], params["start"], params["end"], params["tz_name"], _clock()())
    api_key = api_key.strip()
    if from_source is None:
        if not api_key:
            raise ConfigError("no API key: pass --api-key, set WAVESPEED_API_KEY, or use --sandbox")
        base_url = check_base_url(base_url)  # refuse plain http to a remote host before anything else
        _check_api(base_url, api_key)
    return ExportConfig(
        window=window,
        base_url=base_url,
        api_key=api_key,
        page_size=params["page_size"],
        concurrency=params["concurrency"],
        retry=RetryPolicy(attempts=params["retries"], backoff=params["backoff"], max_wait=params["max_wait"]),
        timeout=(min(CONNECT_TIMEOUT, params["timeout"]), params["timeout"]),
        progress=_progress_printer(params["quiet"]),
        clock=_clock(),
        **extra,
    )


def _check_api(base_url: str, api_key: str) -> None:
    """A key an HTTP header can carry and a URL requests can use, or ConfigError (the key is never shown)."""
    if not _KEY_CHARACTERS.fullmatch(api_key):
        raise ConfigError("the API key contains spaces or characters other than printable ASCII; "
                          "check --api-key or WAVESPEED_API_KEY")
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number in range)
    except ValueError as exc:
        raise ConfigError(f"--base-url {base_url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url {base_url!r} must be an http:// or https:// URL with a host")


_KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")


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
    """Lines to a file (replaced only when complete; OutputError if it cannot be written) or to stdout."""
    if path is None:
        yield lambda line: print(line, file=sys.stdout)
        sys.stdout.flush()  # a reader that went away shows up here, inside the command
        return
    partial = path.with_name(path.name + ".partial")

    def cannot_write(exc: OSError) -> OutputError:
        return OutputError(f"cannot write {path}: {os_reason(exc)}")

    try:
        handle = open(partial, "w", encoding="utf-8")
    except OSError as exc:
        raise cannot_write(exc) from None

    def write(line: str) -> None:
        try:
            handle.write(line + "\n")
        except OSError as exc:
            raise cannot_write(exc) from None

    try:
        yield write
        try:
            handle.close()
            partial.replace(path)
        except OSError as exc:
            raise cannot_write(exc) from None
    finally:
        with contextlib.suppress(OSError):
            handle.close()
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
@click.option("--lookback", type=click.IntRange(0), default=DEFAULT_LOOKBACK_DAYS, show_default=True,
              help="Re-check closed periods that ended up to this many days before the period for late changes.")
@click.option("--opening-balance", type=AmountType(), metavar="AMOUNT",
              help="The credit balance at the start of the period, when the books and the provider cannot tell.")
@click.option("--balance-max-records", type=click.IntRange(0), default=DEFAULT_BALANCE_MAX_RECORDS, show_default=True,
              help="Most records after the period fetched to derive its closing from the provider's balance.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object for scripts (period, formats, totals, warnings, files) instead of text.")
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
        wavespeed-export export --period 2024-Q1 --format csv,quickbooks
        wavespeed-export export --period last-month --strict -q     # cron: silent unless something is wrong
        wavespeed-export export --period last-month --json | jq .totals
        wavespeed-export export --from-source output/2024-01
    """
    _refuse_ignored(params)
    with _api(params) as (base_url, api_key):
        config = _config(
            params, base_url, api_key,
            out=params["out"], formats=params["formats"], accounts=params["accounts"],
            granularity=params["granularity"], strict=params["strict"],
            render=RenderOptions(iif_lists=params["iif_lists"], date_format=params["date_format"]),
            reconcile=not params["no_reconcile"], from_source=params["from_source"],
            books=params["books_file"], close=params["close_after"], lookback_days=params["lookback"],
            opening_balance=params["opening_balance"], balance_max_records=params["balance_max_records"],
            lock_timeout=params["lock_timeout"],
        )
        result = pipeline.run_export(config)
    if params["as_json"]:
        manifest = json.loads((result.folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        _echo_json(export_summary(manifest, result.folder, result.replaced))
    elif params["quiet"]:  # cron: nothing to mail unless there is something to look at
        for warning in result.report.warnings:
            click.echo(f"warning: {warning}", err=True)
    else:
        replaced = replaced_line(result.replaced) if result.replaced else None
        click.echo(render_result(result.report, result.folder, result.files, replaced))


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
    _refuse_ignored(params)
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
    """
    _refuse_ignored(params)
    with _api(params) as (base_url, api_key):
        report = pipeline.summarize(
            _config(params, base_url, api_key, from_source=params["from_source"], accounts=params["accounts"])
        )
    if params["as_json"]:
        _echo_json(report_summary(report))
    else:
        click.echo(render_summary(report))


def _echo_json(value: dict[str, Any]) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


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

    try:
        run(host, port)
    except OSError as exc:  # binding: the port is taken, the address is not ours, the name unknown
        raise ConfigError(f"cannot serve on {host}:{port}: {os_reason(exc)} (try another --port, or 0 for any free one)") from None


for _command in BOOKS_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="wavespeed-export")
