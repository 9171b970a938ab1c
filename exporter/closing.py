"""Month-end operations on the books: close a handed-off period, reopen one, list and check them.

docs/booking.md, "Closed periods and late changes". A period is closed once its pack went to the
accountant: it is never exported again, and what changes in it afterwards is booked in the next
open period. Closing keeps every record as it was booked; reopening (for a deliberate
restatement) keeps the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .books.database import BOOKS_NAME, DEFAULT_ACCOUNT, Books, Period
from .config import Clock, system_clock
from .errors import ConfigError, DataError
from .money import format_micros
from .outdir import period_lock
from .pack import MANIFEST_NAME, pack_problem, sha256_of


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


def _existing(path: Path, account: str = DEFAULT_ACCOUNT, *, write: bool = True) -> Books:
    if not path.exists():
        raise ConfigError(f"{path}: no books database yet (export a period first, or give [[books]])")
    return Books(path, account, write=write)


@dataclass(frozen=True)
class Closed:
    """A period just closed, and the open drafts overlapping it that the books dropped."""

    period: Period
    superseded: tuple[str, ...] = ()


def close(path: Path, label: str, account: str = DEFAULT_ACCOUNT, clock: Clock = system_clock) -> Closed:
    """Close an exported period: refused (exit 2) if never exported, already closed, overlapping a
    closed period, out of order, exported by a version that kept no snapshot, or if its pack no
    longer matches what the books recorded. Holds the period's lock, as an export of it does, and
    checks the pack inside the books' transaction, so a concurrent export of the period cannot slip
    between the check and the close. What the export booked (its snapshot, docs/booking.md "What
    the books keep of each record") becomes the period's booked records: nothing is read or booked
    again. ``account``: the provider account in the books (a profile's name)."""
    with _existing(path, account) as books:
        period = _exported(books, label, path)
        with period_lock(books.pack_folder(period).parent, label), books.transaction():
            period = _exported(books, label, path)  # as it is now that no export of it runs
            if books.snapshot_data(label) is None:
                raise ConfigError(f"{label} was exported by an older wavespeed-export, which kept no snapshot of what "
                                  "it booked: export it again, then close it")
            _check_pack(books, period)
            superseded = books.close(label, clock())  # refuses what it must itself
        closed_period = books.period(label)
        assert closed_period is not None
        return Closed(closed_period, tuple(superseded))


def _exported(books: Books, label: str, path: Path) -> Period:
    period = books.period(label)
    if period is None:
        raise ConfigError(f"{label} was never exported into {path}: export it first")
    books.refuse_closed(label, period.start_utc, period.end_utc)
    return period


def _check_pack(books: Books, period: Period) -> None:
    problem = pack_problem(books.pack_folder(period), period.manifest_sha256)
    if problem:
        raise ConfigError(f"{period.label} cannot be closed: {problem} (by hand, or by an export interrupted between "
                          "writing the pack and recording it); export it again first")


def reopen(path: Path, label: str, reason: str, account: str = DEFAULT_ACCOUNT, clock: Clock = system_clock) -> None:
    """Reopen a closed period for a restatement (the books refuse it while a later one is closed)."""
    if not reason.strip():
        raise ConfigError("[[reason]] may not be empty: say why the period is restated")
    with _existing(path, account) as books, books.transaction():
        books.reopen(label, reason.strip(), clock())


def acknowledge(path: Path, ids: tuple[str, ...], reason: str, account: str = DEFAULT_ACCOUNT,
                clock: Clock = system_clock) -> list[tuple[str, str]]:
    """Accept records booked in closed periods as dropped by the provider (docs/booking.md,
    "Closed periods and late changes"): later exports stop reporting them missing. Returns
    (id, closed period) of each; ConfigError, with nothing recorded, if one was never booked."""
    if not reason.strip():
        raise ConfigError("[[reason]] may not be empty: say why the records are accepted as gone")
    now = clock()
    with _existing(path, account) as books, books.transaction():
        periods = books.acknowledge(ids, reason.strip(), now)
        unknown = next((record_id for record_id in ids if record_id not in periods), None)
        if unknown is not None:  # raised inside the transaction: nothing is recorded
            raise ConfigError(f"{unknown!r} is not booked in a closed period of {path}: nothing acknowledged")
        for record_id in ids:
            books.log(periods[record_id], "acknowledge", f"{record_id}: {reason.strip()}", now)
    return [(record_id, periods[record_id]) for record_id in ids]


def list_periods(path: Path, account: str = DEFAULT_ACCOUNT) -> list[PeriodLine]:
    """Every period of ``account`` in the books with its figures (exact, per currency); opens them read-only."""
    with _existing(path, account, write=False) as books:
        lines = []
        for period in books.periods():
            figures = books.figures(period.label)

            def column(name: str, figures: pd.DataFrame = figures) -> str:
                return ", ".join(f"{format_micros(v)} {c}" for c, v in zip(figures["currency"], figures[name])) or "-"

            lines.append(PeriodLine(period, column("usage"), column("topups"), column("adjustments"), column("pending")))
        return lines


@dataclass(frozen=True)
class Checked:
    """What ``books check`` found: the closed periods that match, and notes on open ones."""

    closed: list[str]
    warnings: list[str]


def check(path: Path, account: str = DEFAULT_ACCOUNT) -> Checked:
    """Every closed pack of ``account`` still matches what the books recorded; DataError (exit 5)
    naming the file otherwise. An open period whose pack on disk is not the one recorded is a
    warning (an export interrupted between writing its pack and recording it). Opens the books
    read-only."""
    with _existing(path, account, write=False) as books:
        checked, warnings = [], []
        for period in books.periods():
            folder = books.pack_folder(period)
            if not period.closed:
                manifest = folder / MANIFEST_NAME
                if manifest.is_file() and sha256_of(manifest) != period.manifest_sha256:
                    warnings.append(f"{period.label} (open): the pack in {folder} is not the one the books recorded "
                                    "(an export interrupted between writing the pack and recording it?); export it again")
                continue
            problem = pack_problem(folder, period.manifest_sha256) or books.seal_problem(period.label)
            if problem:
                raise DataError(f"closed period {period.label}: {problem}")
            if not books.sealed(period.label):
                warnings.append(f"{period.label} was closed before the books kept seals: its pack is checked, "
                                "its rows in the books are not")
            checked.append(period.label)
        return Checked(checked, warnings)


__all__ = ["Checked", "Closed", "PeriodLine", "acknowledge", "books_path", "check", "close", "list_periods", "reopen"]
