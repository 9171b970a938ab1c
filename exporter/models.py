"""The data the pipeline hands from step to step. Money is always exact (int micros or int cents).

The frames' columns and the kinds of value they hold are declared in :mod:`exporter.tables`
(``TRANSACTIONS``, ``BY_MODEL``, ...); :class:`Summaries` and :class:`Report` refuse others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from . import tables
from .period import Window

if TYPE_CHECKING:
    from .books.carry import Carry
    from .books.mapping import AccountMapping
    from .books.recheck import Recheck

COMPLETED = "completed"
# the few-valued text columns the transactions frame holds as categories (sorted, as astype("category") makes them)
CATEGORY_COLUMNS = ("type", "status", "model", "payment_method", "currency", "api_key_name", "api_key_id")
TRANSACTION_COLUMNS = tables.TRANSACTIONS.names

# How a completed record is booked (docs/booking.md, "The booking model"):
# topup      a top-up (amount > 0): Dr prepaid / Cr the payment method's account, one entry each
# payout     a refund paid out to the payer (amount < 0): Dr the payment account / Cr prepaid, one each
# usage      usage (amount < 0): summarised, Dr expense per (account, class) / Cr prepaid
# task_refund  a refunded task (amount > 0, names a model): summarised, Dr prepaid / Cr expense
# credit     any other credit back (amount > 0, no model): Dr prepaid / Cr refunds, one each
# suspense   anything the rules cannot place: the suspense account, one each, and a warning
Role = Literal["topup", "payout", "usage", "task_refund", "credit", "suspense"]
ROLES: tuple[Role, ...] = ("topup", "payout", "usage", "task_refund", "credit", "suspense")
SUMMARY_ROLES: tuple[Role, ...] = ("usage", "task_refund")


@dataclass(frozen=True)
class JournalLine:
    """One line of a journal entry. ``amount_cents`` > 0 is a debit, < 0 a credit."""

    account: str
    amount_cents: int
    memo: str
    klass: str = ""  # QuickBooks class, "" for none
    name: str = ""  # QuickBooks Name (the vendor), needed on Accounts Payable lines


@dataclass(frozen=True)
class JournalEntry:
    """A balanced journal entry: its lines' ``amount_cents`` sum to exactly zero."""

    number: str  # Journal No. / IIF DOCNUM: deterministic, at most 11 characters
    date: date
    currency: str
    memo: str
    role: Role
    lines: tuple[JournalLine, ...]
    source_ids: tuple[str, ...] = ()  # the record ids behind a single entry or refunded tasks
    adjusts: str = ""  # for a late change to a closed period: that period's label

    @property
    def balance_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)


@dataclass(frozen=True)
class ExtractionStats:
    """How the records were obtained; reported in the manifest and the Summary sheet."""

    source: str  # base URL of the API, or the archive path for --from-source; never the key
    server_total: int | None  # what the API's pagination said for the queried range
    unique_fetched: int  # distinct ids over the queried range (wider than the period)
    duplicates_dropped: int
    pages: int
    in_period: int
    api: str = "legacy"  # the API generation that answered: "legacy" or "current" (docs/api.md)


@dataclass(frozen=True)
class ProviderUsage:
    """The provider's own usage summary for the period: positive spend in micros per model."""

    costs: dict[str, int]
    total_cost: int | None


ADJUSTMENT_COLUMNS = tables.ADJUSTMENTS.names


@dataclass(frozen=True)
class RollForward:
    """The prepaid credit of one currency over the period, exact micros (docs/booking.md, "Roll-forward").

    opening + topups + usage + refunds + other + adjustments = closing, where usage is negative,
    refunds are credits back (positive) and payouts (negative), other is any type the API adds.
    ``opening``/``closing`` are None when unknown.
    """

    currency: str
    opening_micros: int | None
    topups_micros: int
    usage_micros: int
    refunds_micros: int
    other_micros: int
    adjustments_micros: int
    closing_micros: int | None
    opening_source: str  # how the opening was obtained, for people (e.g. "closing of 2023-12 in the books")
    provider_balance_micros: int | None = None  # the provider's balance now, when it was read
    pending_micros: int = 0  # pending records of the period (the provider may reserve them)
    chained: bool = False  # the opening is the previous period's closing in the books
    # "" when the top-ups are records (booked); otherwise how they were derived, or why they are
    # unknown: the current API lists no top-ups (docs/booking.md, "Top-ups with the current API")
    topups_source: str = ""

    @property
    def topups_derived(self) -> bool:
        """The top-ups are a figure of the roll-forward, not records the journal booked."""
        return bool(self.topups_source)


@dataclass(frozen=True)
class ProviderBalance:
    """The provider's credit balance as read now, and what happened after the period ended.

    ``after_net_micros`` is the net of the completed records created between the period's end and
    ``read_at`` (None when that range was too large to fetch: ``skipped`` says why).
    """

    balance_micros: int
    currency: str
    read_at: datetime
    after_net_micros: int | None
    after_records: int = 0
    skipped: str = ""


@dataclass(frozen=True)
class Summaries:
    """The transactions frame and what is summed from it (:mod:`exporter.transform`)."""

    transactions: pd.DataFrame  # tables.TRANSACTIONS
    by_model: pd.DataFrame  # tables.BY_MODEL
    by_key: pd.DataFrame  # tables.BY_KEY
    by_day: pd.DataFrame  # tables.BY_DAY
    totals: pd.DataFrame  # tables.TOTALS
    status_counts: pd.DataFrame  # tables.STATUS_COUNTS
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for table, frame in ((tables.TRANSACTIONS, self.transactions), (tables.BY_MODEL, self.by_model),
                             (tables.BY_KEY, self.by_key), (tables.BY_DAY, self.by_day), (tables.TOTALS, self.totals),
                             (tables.STATUS_COUNTS, self.status_counts)):
            table.require(frame)


@dataclass(frozen=True)
class Report:
    """Everything the writers need, complete when it leaves the pipeline; writers only read it."""

    window: Window
    summaries: Summaries
    stats: ExtractionStats
    mapping: AccountMapping  # the mapping the journal was booked with
    journal: tuple[JournalEntry, ...]
    generated_at: datetime
    tool_version: str
    warnings: tuple[str, ...] = ()
    reconciliation: pd.DataFrame | None = None  # tables.RECONCILIATION
    account: str = "default"  # the books' name for the provider account
    granularity: str = "monthly"  # of the summary entries
    carry: Carry | None = None  # the rounding state after the journal, for the books database
    adjustments: pd.DataFrame | None = None  # tables.ADJUSTMENTS; None without books
    rollforward: tuple[RollForward, ...] = ()  # one per currency; empty when not computed
    previous_label: str | None = None  # the previous contiguous period by_model compares with
    notes: tuple[str, ...] = ()  # information worth a line (e.g. a model seen for the first time); not warnings
    # (account, currency) the books' earlier periods posted to, and the first day of the books
    ledger_accounts: tuple[tuple[str, str], ...] = ()
    books_start: date | None = None
    recheck: Recheck | None = None  # the closed days re-read for late changes, and why
    # spend by month from the books, oldest first, at most 12: label, currency, usage_micros, refunds_micros
    history: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        for table, frame in ((tables.RECONCILIATION, self.reconciliation), (tables.ADJUSTMENTS, self.adjustments)):
            if frame is not None:
                table.require(frame)

    @property
    def transactions(self) -> pd.DataFrame:
        return self.summaries.transactions

    @property
    def by_model(self) -> pd.DataFrame:
        return self.summaries.by_model

    @property
    def by_key(self) -> pd.DataFrame:
        return self.summaries.by_key

    @property
    def by_day(self) -> pd.DataFrame:
        return self.summaries.by_day

    @property
    def totals(self) -> pd.DataFrame:
        return self.summaries.totals

    @property
    def status_counts(self) -> pd.DataFrame:
        return self.summaries.status_counts


@dataclass(frozen=True)
class AccountPack:
    """One account of a consolidated pack: its profile's name, the Report its export just wrote,
    and that pack's folder and manifest checksum (docs/profiles.md, "The consolidated month")."""

    name: str
    report: Report
    folder: Path
    manifest_sha256: str


@dataclass(frozen=True)
class Consolidated:
    """Several accounts' Reports of one period label, side by side; writers only read it."""

    label: str
    accounts: tuple[AccountPack, ...]

    @property
    def generated_at(self) -> datetime:
        """The latest of the accounts' reports: the consolidated pack is made of them, not of a clock."""
        return max(account.report.generated_at for account in self.accounts)

    @property
    def tool_version(self) -> str:
        return self.accounts[0].report.tool_version
