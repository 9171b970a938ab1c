"""The data the pipeline hands from step to step. Money is always exact (int micros or int cents).

Transactions frame (``Report.transactions``), one row per record of the period, sorted by
``created_at`` then ``id``:

=============== ============================ ==============================================
column          dtype                        meaning
=============== ============================ ==============================================
id              str                          transaction id (unique)
created_at      datetime64, tz UTC           instant of the record
date            datetime64, naive            local calendar day in the export's time zone
type            str                          topup, usage, refund, or anything the API adds
status          str                          completed, pending, failed, ...
model           str                          "" when absent
payment_method  str                          "" when absent
currency        str                          e.g. USD
amount          str                          exact signed decimal text, source precision
amount_micros   int64                        the same amount in micro-units (exact)
=============== ============================ ==============================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

import pandas as pd

from .period import Window

COMPLETED = "completed"
TRANSACTION_COLUMNS = [
    "id", "created_at", "date", "type", "status", "model",
    "payment_method", "currency", "amount", "amount_micros",
]

EntryKind = Literal["topup", "usage", "credit", "suspense"]


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
    kind: EntryKind
    lines: tuple[JournalLine, ...]
    source_ids: tuple[str, ...] = ()  # the record ids behind a top-up/credit entry

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


@dataclass
class Report:
    """Everything the writers need; writers read it and never change it."""

    window: Window
    transactions: pd.DataFrame
    by_model: pd.DataFrame  # model, currency, count, amount_micros, share (Decimal), average (Decimal)
    by_day: pd.DataFrame  # date, currency, topups_micros, usage_micros, net_micros, count
    totals: pd.DataFrame  # currency, type, count, amount_micros  (completed records only)
    status_counts: pd.DataFrame  # type, status, count  (every record)
    stats: ExtractionStats
    generated_at: datetime
    tool_version: str
    warnings: list[str] = field(default_factory=list)
    journal: list[JournalEntry] = field(default_factory=list)
    # model, currency, exported_micros, provider_micros, difference_micros, status  (or None)
    reconciliation: pd.DataFrame | None = None
