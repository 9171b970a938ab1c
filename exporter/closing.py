"""Month-end operations on the books: close a handed-off period, reopen one, list and check them.

docs/booking.md, "Closed periods and late changes". A period is closed once its pack went to the
accountant: it is never exported again, and what changes in it afterwards is booked in the next
open period. Closing keeps every record as it was booked; reopening (for a deliberate
restatement) keeps the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .books.database import BOOKS_NAME, DEFAULT_ACCOUNT, Books, Period
from .books.ledger import close_period, read_view
from .books.mapping_toml import load_mapping
from .config import Granularity
from .errors import ConfigError, DataError
from .money import format_micros
from .pipeline import assemble_report, read_source
from .writers.manifest import pack_problem


@dataclass(frozen=True)
class PeriodLine:
    """One line of ``wavespeed-export books``."""

    period: Period
    usage: str
    topups: str
    adjustments: str
    pending: str


def books_path(out: Path, books: Path | None) -> Path:
    return books or out / BOOKS_NAME


def _existing(path: Path, account: str = DEFAULT_ACCOUNT) -> Books:
    if not path.exists():
        raise ConfigError(f"{path}: no books database yet (export a period first, or give --books)")
    return Books(path, account)


@dataclass(frozen=True)
class Closed:
    """A period just closed, and the open drafts overlapping it that the books dropped."""

    period: Period
    superseded: tuple[str, ...] = ()


def close(path: Path, label: str, accounts: Path | None = None, account: str = DEFAULT_ACCOUNT) -> Closed:
    """Close an exported period: refused (exit 2) if never exported, already closed, overlapping a
    closed period, or if its pack no longer matches what the books recorded. The period's records
    are kept as booked. ``account``: the provider account in the books (a profile's name)."""
    with _existing(path, account) as books:
        period = books.period(label)
        if period is None:
            raise ConfigError(f"{label} was never exported into {path}: export it first")
        books.refuse_closed(label, period.start_utc, period.end_utc)
        problem = pack_problem(Path(period.pack), period.manifest_sha256)
        if problem:
            raise ConfigError(f"{label} cannot be closed: {problem}; export it again first")
        records, context, closed = read_source(Path(period.pack), None)
        view = read_view(books, context.window, lookback_days=_lookback(books, period))
        granularity: Granularity = "daily" if period.granularity == "daily" else "monthly"
        report = assemble_report(records, context, load_mapping(accounts), granularity,
                                 datetime.now(timezone.utc), view, closed)
        with books.transaction():
            superseded = close_period(books, report, datetime.now(timezone.utc))  # refuses what it must itself
        closed_period = books.period(label)
        assert closed_period is not None
        return Closed(closed_period, tuple(superseded))


def _lookback(books: Books, period: Period) -> int:
    """Re-check the same closed periods the export did: those whose changes it archived."""
    earlier = [p for p in books.periods() if p.closed and p.end_utc <= period.start_utc]
    return max([(period.start_utc - p.end_utc).days + 1 for p in earlier], default=0)


def reopen(path: Path, label: str, reason: str, account: str = DEFAULT_ACCOUNT) -> list[str]:
    """Reopen a closed period for a restatement; returns warnings about what that implies."""
    if not reason.strip():
        raise ConfigError("--reason may not be empty: say why the period is restated")
    with _existing(path, account) as books:
        period = books.period(label)
        if period is None or not period.closed:
            raise ConfigError(f"{label} is not a closed period in {path}")
        later = [p.label for p in books.periods() if p.closed and p.label != label
                 and (books.adjustments(p.label)["period"] == label).any()]
        now = datetime.now(timezone.utc)
        with books.transaction():
            books.set_status(label, "open", None)
            books.log(label, "reopen", reason.strip(), now)
    if later:
        return [f"{', '.join(later)} already booked late changes to {label}: a restated {label} includes "
                "them again, so reverse them there or restate those periods too"]
    return []


def acknowledge(path: Path, ids: tuple[str, ...], reason: str, account: str = DEFAULT_ACCOUNT) -> list[tuple[str, str]]:
    """Accept records booked in closed periods as dropped by the provider (docs/booking.md,
    "Closed periods and late changes"): later exports stop reporting them missing. Returns
    (id, closed period) of each; ConfigError, with nothing recorded, if one was never booked."""
    if not reason.strip():
        raise ConfigError("--reason may not be empty: say why the records are accepted as gone")
    now = datetime.now(timezone.utc)
    with _existing(path, account) as books, books.transaction():
        done = []
        for record_id in ids:
            period = books.acknowledge(record_id, reason.strip(), now)
            if period is None:
                raise ConfigError(f"{record_id!r} is not booked in a closed period of {path}: nothing acknowledged")
            books.log(period, "acknowledge", f"{record_id}: {reason.strip()}", now)
            done.append((record_id, period))
    return done


def list_periods(path: Path, account: str = DEFAULT_ACCOUNT) -> list[PeriodLine]:
    """Every period of ``account`` in the books with its figures (exact, per currency)."""
    with _existing(path, account) as books:
        lines = []
        for period in books.periods():
            figures = books.figures(period.label)

            def column(name: str, figures: pd.DataFrame = figures) -> str:
                return ", ".join(f"{format_micros(v)} {c}" for c, v in zip(figures["currency"], figures[name])) or "-"

            lines.append(PeriodLine(period, column("usage"), column("topups"), column("adjustments"), column("pending")))
        return lines


def check(path: Path, account: str = DEFAULT_ACCOUNT) -> list[str]:
    """Every closed pack of ``account`` still matches what the books recorded; DataError (exit 5)
    naming the file otherwise."""
    with _existing(path, account) as books:
        checked = []
        for period in books.periods():
            if not period.closed:
                continue
            problem = pack_problem(Path(period.pack), period.manifest_sha256)
            if problem:
                raise DataError(f"closed period {period.label}: {problem}")
            checked.append(period.label)
        return checked


__all__ = ["Closed", "PeriodLine", "books_path", "check", "close", "list_periods", "reopen"]
