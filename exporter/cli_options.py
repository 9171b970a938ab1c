"""The command line's options and the environment, turned into an ExportConfig.

Parameter types (exact amounts, format lists), the options every record-reading command shares,
the refusal of options a run would ignore, the key and URL checks, the in-process sandbox, and
the small terminal helpers (logging, progress bar, line output). :mod:`exporter.cli` holds the
commands and the one place errors become exit codes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem

from .config import (
    API_CHOICES,
    CONNECT_TIMEOUT,
    Clock,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_PAGE_SIZE,
    DEFAULT_TIMEOUT,
    ApiSettings,
    ArchiveSource,
    BooksSettings,
    DEFAULT_BALANCE_MAX_RECORDS,
    ExportConfig,
    LiveSource,
    OutputSettings,
    RetryPolicy,
    system_clock,
)
from .display import VisibleFormatter, echo
from .errors import ConfigError, ExportError, OutputError, os_reason
from .extract.urls import check_base_url
from .money import parse_amount
from .period import RELATIVE_PERIODS, resolve_window
from .writers import FORMATS, journal_formats


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


class Seconds(click.ParamType):
    """A finite number of seconds, at least ``minimum`` (--timeout: 0.1): nan, inf and less are refused."""

    name = "seconds"

    def __init__(self, minimum: float = 0.1) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds < self.minimum:
            self.fail(f"{value!r} is not a finite number of seconds of at least {self.minimum:g}", param, ctx)
        return seconds


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


class AsOfDate(click.ParamType):
    """A calendar day ``YYYY-MM-DD`` (``--sandbox-as-of``): the sandbox as it stood at 00:00 UTC that day."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        text = str(value).strip()
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError
            return date.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is not a date: expected YYYY-MM-DD, e.g. 2024-02-01", param, ctx)


def complete_period(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """The words of --period (months and quarters are typed)."""
    return [word for word in RELATIVE_PERIODS if word.startswith(incomplete)]


@dataclass(frozen=True)
class CliState:
    """What the commands share: the clock (tests pass ``obj=CliState(clock=...)`` to the runner)."""

    clock: Clock = system_clock


def current_clock() -> Clock:
    state = click.get_current_context().find_object(CliState)
    return state.clock if state is not None else system_clock


def source_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that reads billing records."""
    options = [
        click.option("--period", metavar="PERIOD", shell_complete=complete_period,
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
        click.option("--sandbox-api", type=click.Choice(("current", "legacy")), default="current", show_default=True,
                     help="API generation the --sandbox serves: current (billings/search) or legacy "
                          "(account/billings)."),
        click.option("--sandbox-as-of", "sandbox_as_of", type=AsOfDate(), metavar="YYYY-MM-DD",
                     help="With --sandbox: serve the account as it stood at 00:00 UTC that day (default: as of now)."),
        click.option("--api", "api", type=click.Choice(API_CHOICES), default="auto", show_default=True,
                     help="Billing API generation: auto tries the current API (billings/search), then the "
                          "legacy one (account/billings)."),
        click.option("--page-size", type=click.IntRange(1, 1000), default=DEFAULT_PAGE_SIZE, show_default=True,
                     help="Records asked per page (the server may serve fewer)."),
        click.option("--concurrency", type=click.IntRange(1, 64), default=DEFAULT_CONCURRENCY, show_default=True,
                     help="Pages fetched at once after the first. 8 keeps a 2-core client near pages x latency / 8 "
                          "from 20 ms to 150 ms per request; more pays only on slow links and costs waits if the API "
                          "answers 429."),
        click.option("--retries", type=click.IntRange(1, 50), default=RetryPolicy.attempts, show_default=True,
                     help="Attempts per request on 429/5xx/network errors."),
        click.option("--backoff", type=Seconds(0), default=RetryPolicy.backoff, show_default=True,
                     help="First retry wait in seconds (doubles each retry, with jitter)."),
        click.option("--max-wait", type=Seconds(0), default=RetryPolicy.max_wait, show_default=True,
                     help="Most seconds spent waiting on retries in one run."),
        click.option("--timeout", type=Seconds(), default=DEFAULT_TIMEOUT, show_default=True,
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
_API_OPTIONS = ("period", "start", "end", "tz_name", "api_key", "base_url", "sandbox", "sandbox_as_of", "api",
                "page_size", "concurrency", "retries", "backoff", "max_wait", "timeout")


def refuse_ignored(params: dict[str, Any]) -> None:
    """Options given on the command line that this run would ignore: exit 2, so nobody believes
    they took effect. Values from the environment (WAVESPEED_API_KEY, ...) are not refused."""
    ctx = click.get_current_context()
    flags = {param.name: max(param.opts, key=len) for param in ctx.command.params}
    formats = set(params.get("formats") or ())
    rules: list[tuple[bool, str | Callable[[], str], tuple[str, ...]]] = [
        (params.get("from_source") is not None, "--from-source (it re-renders the archive's own period, offline)",
         (*_API_OPTIONS, "topups")),
        (params["sandbox"], "--sandbox (it serves its own API, with its own key)", ("base_url", "api_key")),
        (not params.get("sandbox"), "the real API (it picks the generation --sandbox serves)", ("sandbox_api",)),
        (not params["sandbox"], "the real API (only the built-in --sandbox has a history to date)", ("sandbox_as_of",)),
        (params["quiet"], "--quiet", ("verbose",)),
        ("quickbooks" not in formats, "a --format without quickbooks", ("iif_lists",)),
        (bool(formats) and not journal_formats(tuple(sorted(formats))),
         lambda: f"a --format without a journal ({', '.join(journal_formats())})", ("granularity",)),
    ]
    for applies, reason, names in rules:
        ignored = [flags[name] for name in names
                   if name in params and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
        if applies and ignored:
            one = len(ignored) == 1
            reason = reason if isinstance(reason, str) else reason()  # every writer loaded only for the message
            raise ConfigError(f"{', '.join(ignored)} {'has' if one else 'have'} no effect with {reason}: "
                              f"drop {'it' if one else 'them'}")


def refuse_close_unfinished(params: dict[str, Any]) -> None:
    """--close on a period that has not ended yet (this-month, a range through today): exit 2 before
    anything is fetched; a closed period is final, and this one's records may still change."""
    if not params.get("close_after") or params.get("from_source") is not None:
        return
    window = resolve_window(params["period"], params["start"], params["end"], params["tz_name"], current_clock()())
    if current_clock()() < window.end:
        end = window.end.astimezone(window.tz)
        raise ConfigError(f"--close: {window.label} has not ended (it ends {end:%Y-%m-%d %H:%M} {window.tz_name}); "
                          "export it without --close, and close it once it is over")


def build_config(params: dict[str, Any], base_url: str, api_key: str, *, archive: Path | None = None,
                 output: OutputSettings | None = None, books: BooksSettings | None = None) -> ExportConfig:
    """The options as the pipeline's settings, resolved once: the period (or ``archive``), the API
    settings (checked: a key, a base URL that may carry it), and the output and books settings."""
    source: LiveSource | ArchiveSource
    api_key = api_key.strip()
    if archive is None:
        source = LiveSource(resolve_window(params["period"], params["start"], params["end"], params["tz_name"],
                                           current_clock()()))
        if not api_key:
            raise ConfigError("no API key: pass --api-key, set WAVESPEED_API_KEY, or use --sandbox")
        base_url = check_base_url(base_url)  # refuse plain http to a remote host before anything else
        _check_key(api_key)
    else:  # the archive's own window is used
        source = ArchiveSource(archive)
    api = ApiSettings(
        base_url=base_url, sandbox=bool(params.get("sandbox")), api_key=api_key, generation=params["api"],
        page_size=params["page_size"], concurrency=params["concurrency"],
        retry=RetryPolicy(attempts=params["retries"], backoff=params["backoff"], max_wait=params["max_wait"]),
        timeout=(min(CONNECT_TIMEOUT, params["timeout"]), params["timeout"]),
        balance_max_records=params.get("balance_max_records", DEFAULT_BALANCE_MAX_RECORDS),
        progress=_progress_printer(params["quiet"]),
    )
    return ExportConfig(source, api, output or OutputSettings(), books or BooksSettings(), clock=current_clock())


def option_text(error: ExportError) -> str:
    """An error's text with the settings it names as the options that set them (errors.SETTING)."""
    return error.text(lambda name: "--" + name.replace("_", "-"))


MIN_KEY_LENGTH = 8


def _check_key(api_key: str) -> None:
    """A key an HTTP header can carry, and long enough to be told apart from the text around it,
    or ConfigError (the key is never shown). Every answer is cleaned of the key before use
    (extract/redact.py): a key of a few characters would mask those characters in every model
    name and id, so it is refused as surely mistyped (README, "Using the real API")."""
    if not _KEY_CHARACTERS.fullmatch(api_key):
        raise ConfigError("the API key contains spaces or characters other than printable ASCII; "
                          "check --api-key or WAVESPEED_API_KEY")
    if len(api_key) < MIN_KEY_LENGTH:
        raise ConfigError(f"the API key is {len(api_key)} character(s) long, fewer than {MIN_KEY_LENGTH}: "
                          "a truncated or mistyped key? Check --api-key or WAVESPEED_API_KEY")


_KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")


@contextlib.contextmanager
def api_context(params: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(base_url, api_key): the real API, or a sandbox served in-process on a free port."""
    _setup_logging(params["quiet"], params["verbose"])
    if params["api_key"] and not params["quiet"] and _from_command_line("api_key"):
        echo("note: --api-key on the command line is visible to other local users (ps) and in shell "
                   "history; prefer the WAVESPEED_API_KEY environment variable", err=True)
    if not params["sandbox"]:
        yield params["base_url"], params["api_key"] or ""
        return
    from .sandbox import DEMO_KEY, serve_in_thread

    as_of = sandbox_instant(params.get("sandbox_as_of"))
    with serve_in_thread(api=params.get("sandbox_api") or "current", as_of=as_of) as server:
        if not params["quiet"]:
            echo(f"sandbox API at {server.url}", err=True)
            if params.get("sandbox_as_of") is not None:
                echo(f"sandbox: the account as it stood at {as_of:%Y-%m-%d %H:%M} UTC", err=True)
        yield server.url, DEMO_KEY


def sandbox_instant(day: date | None, option: str = "--sandbox-as-of") -> datetime:
    """The instant the sandbox serves the account as of: 00:00 UTC of ``day``, or now (the CLI's
    clock). ConfigError for a day before the sandbox's history starts."""
    from .sandbox.history import day_start, history_start
    from .sandbox.server import default_dataset

    if day is None:
        return current_clock()()
    first = history_start(default_dataset())
    if day < first:
        raise ConfigError(f"{option} {day.isoformat()} is before the sandbox's history, which starts "
                          f"{first.isoformat()}")
    return day_start(day)


def _from_command_line(name: str) -> bool:
    context = click.get_current_context(silent=True)
    return context is not None and context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


@contextlib.contextmanager
def line_writer(path: Path | None) -> Iterator[Callable[[str], None]]:
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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(VisibleFormatter("%(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


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




__all__ = [
    "AmountType", "AsOfDate", "option_text", "CliState", "FormatList", "Seconds", "api_context", "build_config", "current_clock", "line_writer",
    "refuse_close_unfinished", "refuse_ignored", "sandbox_instant", "source_options",
]
