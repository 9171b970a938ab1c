"""The data the pipeline hands from step to step. Money is always exact (int micros or int cents).

The frames' columns and the kinds of value they hold are declared in :mod:`exporter.tables`
(``TRANSACTIONS``, ``BY_MODEL``, ...); :class:`Summaries` refuses others. The Report the writers
read is composed of what the stages produce, above them (:mod:`exporter.report`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import pandas as pd

from . import tables

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
