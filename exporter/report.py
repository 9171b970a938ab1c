"""The Report: what the stages produced for one period, side by side; the writers only read it.

It sits above the stages (:mod:`exporter.transform`, :mod:`exporter.books`) and below the writers
and the pipeline: each part is one stage's output, kept as that stage made it, so a writer can be
given a Report built by hand from small parts (``tests/test_report_parts.py``).

- :class:`ReportContext`: the period, how its records were obtained, and when and by what;
- :class:`~exporter.models.Summaries`: the transactions frame and its sums (transform), by_model
  with the previous period's comparison columns when the books know that period;
- :class:`~exporter.books.ledger.Booked`: the journal, late changes, roll-forward (the books);
- :class:`BooksBefore`: what the books knew before this period;
- :class:`Reconciliation`: the export against the provider's usage summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from . import tables
from .books.ledger import Booked
from .books.mapping import AccountMapping
from .books.recheck import Recheck
from .config import Granularity
from .models import ExtractionStats, JournalEntry, Summaries
from .period import Window


@dataclass(frozen=True)
class ReportContext:
    """The period, its records' provenance, and the run that made the Report."""

    window: Window
    stats: ExtractionStats
    generated_at: datetime
    tool_version: str
    account: str = "default"  # the books' name for the provider account
    granularity: Granularity = "monthly"  # of the summary entries
    warnings: tuple[str, ...] = ()  # about the records as fetched or read (pages retried, period not over, ...)
    notes: tuple[str, ...] = ()  # the run's information worth a line (another source checked, a pack replaced)


@dataclass(frozen=True)
class BooksBefore:
    """What the books knew before this period (all empty without books)."""

    previous_label: str | None = None  # the previous contiguous period by_model compares with
    # spend by month from the books, oldest first, at most 12: label, currency, usage_micros, refunds_micros
    history: pd.DataFrame | None = None
    ledger_accounts: tuple[tuple[str, str], ...] = ()  # (account, currency) earlier periods posted to
    start: date | None = None  # the first day of the books
    recheck: Recheck | None = None  # the closed days re-read for late changes, and why


@dataclass(frozen=True)
class Reconciliation:
    """The export against the provider's usage summary: the frame (None when not reconciled) and
    what it found worth a warning (or why it was skipped)."""

    frame: pd.DataFrame | None = None  # tables.RECONCILIATION
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.frame is not None:
            tables.RECONCILIATION.require(self.frame)


@dataclass(frozen=True)
class Report:
    """Everything the writers need, complete when it leaves the pipeline; writers only read it."""

    context: ReportContext
    summaries: Summaries
    booked: Booked
    mapping: AccountMapping  # the mapping the journal was booked with
    books: BooksBefore = BooksBefore()
    reconciliation: Reconciliation = Reconciliation()

    @property
    def journal(self) -> tuple[JournalEntry, ...]:
        return self.booked.journal.entries

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every part's warnings, in the order the stages ran."""
        return (*self.context.warnings, *self.summaries.warnings, *self.booked.warnings, *self.reconciliation.warnings)

    @property
    def notes(self) -> tuple[str, ...]:
        return (*self.context.notes, *self.booked.notes)


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
        return max(account.report.context.generated_at for account in self.accounts)

    @property
    def tool_version(self) -> str:
        return self.accounts[0].report.context.tool_version


__all__ = ["AccountPack", "BooksBefore", "Consolidated", "Reconciliation", "Report", "ReportContext"]
