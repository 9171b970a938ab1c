"""What an export is asked to do, and every default, defined once.

The CLI builds an :class:`ExportConfig` from options and the environment; its option defaults
come from the constants here, so ``--help``, the library and the tests agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Literal

from .errors import ConfigError
from .period import Window

DEFAULT_BASE_URL = "https://api.wavespeed.ai"
DEFAULT_OUT = Path("output")
DEFAULT_PAGE_SIZE = 100
DEFAULT_CONCURRENCY = 8  # measured: docs/api.md, "Client"
DEFAULT_TIMEOUT = 60.0  # seconds: read timeout per request
CONNECT_TIMEOUT = 10.0  # seconds: at most this, never more than the read timeout
DEFAULT_FORMATS = ("csv", "xlsx", "quickbooks", "html")
DEFAULT_LOOKBACK_DAYS = 90  # closed periods that ended this long before an export are re-checked
MAX_LOOKBACK_DAYS = 3660  # --lookback: about ten years, the longest a books file is expected to re-check
DEFAULT_BALANCE_MAX_RECORDS = 200_000  # records after a period fetched to derive its closing balance
DEFAULT_DATE_FORMAT = "%d/%m/%Y"  # dates in the Xero file (docs/xero.md); QuickBooks keeps MM/DD/YYYY

# the billing API generation (docs/api.md): auto tries the current API, then the legacy one
ApiChoice = Literal["auto", "current", "legacy"]
API_CHOICES: tuple[ApiChoice, ...] = ("auto", "current", "legacy")

Granularity = Literal["monthly", "daily"]
GRANULARITIES: tuple[Granularity, ...] = ("monthly", "daily")
DEFAULT_GRANULARITY: Granularity = "monthly"

# (pages done, pages in all, records received so far)
ProgressCallback = Callable[[int, int, int], None]
# the current instant, timezone-aware; injected so "now" is a parameter, not a hidden input
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most ``attempts`` tries and ``max_wait`` seconds of waiting in all.

    Waits grow as ``backoff * 2**n`` (capped at ``max_backoff``) with full jitter, unless the
    server names a wait in ``Retry-After``.
    """

    attempts: int = 6
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_wait: float = 120.0

    def delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_backoff, self.backoff * 2**retry)
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class RenderOptions:
    """Format options the writers read (each writer takes what concerns it)."""

    iif_lists: bool = False  # prepend !ACCNT/!CLASS/!VEND blocks to the IIF file
    date_format: str = DEFAULT_DATE_FORMAT  # strftime format of the Xero file's dates

    def __post_init__(self) -> None:
        check_date_format(self.date_format)


def check_date_format(text: str) -> None:
    """A strftime format that writes a whole date on one line which reads back as the same day."""
    samples = (date(2024, 1, 31), date(2025, 12, 5))
    try:
        written = [day.strftime(text) for day in samples]
        same = all(datetime.strptime(out, text).date() == day for out, day in zip(written, samples))
    except ValueError:
        written, same = [], False
    if not same or any(ch in out for out in written for ch in "\t\r\n\""):
        raise ConfigError(f"[[date_format]] {text!r} does not write a whole date that reads back (try %d/%m/%Y or %m/%d/%Y)")


@dataclass(frozen=True)
class ApiSettings:
    """How to talk to the provider: where, with which key, how hard to try."""

    base_url: str = DEFAULT_BASE_URL
    sandbox: bool = False  # the built-in sandbox serves base_url (the books record it as "sandbox")
    api_key: str = field(default="", repr=False)  # never printed, logged or written
    generation: ApiChoice = "auto"  # the billing API generation
    page_size: int = DEFAULT_PAGE_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: tuple[float, float] = (CONNECT_TIMEOUT, DEFAULT_TIMEOUT)  # (connect, read) seconds
    balance_max_records: int = DEFAULT_BALANCE_MAX_RECORDS  # records after a period fetched for its balance
    progress: ProgressCallback | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class OutputSettings:
    """What the pack holds and where it goes."""

    out: Path = DEFAULT_OUT
    formats: tuple[str, ...] = DEFAULT_FORMATS
    accounts: Path | None = None  # the account mapping TOML; None: the shipped template
    granularity: Granularity = DEFAULT_GRANULARITY
    render: RenderOptions = field(default_factory=RenderOptions)
    strict: bool = False
    reconcile: bool = True  # compare with the provider's own usage summary and balance
    lock_timeout: float = 0.0  # seconds to wait for another export of the same period and folder


@dataclass(frozen=True)
class BooksSettings:
    """What the books are asked to do with the export."""

    path: Path | None = None  # the books database; None: <out>/books.sqlite
    account: str = "default"  # the provider account in the books (a profile's name; books/database.py)
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    recheck: Literal["changed", "full"] = "changed"  # closed days re-read: those whose totals changed, or all
    close: bool = False  # close the period once exported (month-end automation)
    opening_balance: int | None = None  # micros: the credit at the start of the period, when nothing else tells
    topups: Path | None = None  # the payment receipts' CSV, for the current API's missing top-ups


@dataclass(frozen=True)
class LiveSource:
    """Records of ``window`` from the API; pages wait in ``resume_folder`` between runs."""

    window: Window
    resume_folder: Path | None = None


@dataclass(frozen=True)
class ArchiveSource:
    """Records of an earlier export's ``source/`` archive, re-rendered offline for its own window."""

    path: Path


@dataclass(frozen=True)
class ExportConfig:
    """Everything an export needs, by concern; built once by the CLI (or a profile) from options,
    the configuration file and the environment, before the pipeline runs."""

    source: LiveSource | ArchiveSource
    api: ApiSettings = field(default_factory=ApiSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    books: BooksSettings = field(default_factory=BooksSettings)
    clock: Clock = field(default=system_clock, repr=False, compare=False)  # generated_at, periods not over

    @property
    def window(self) -> Window | None:
        """The period asked for; None for an archive (its own window is read from it)."""
        return self.source.window if isinstance(self.source, LiveSource) else None

    @property
    def archive(self) -> Path | None:
        """The archive re-rendered; None for records from the API."""
        return self.source.path if isinstance(self.source, ArchiveSource) else None
