"""An export as one page of continuous books: what the books say before it, what it adds after.

:func:`read_view` gathers what the books database knows that matters to period P (the running
totals to carry on from, the previous contiguous period, the closed periods to re-check for late
changes, the history); :func:`book_period` books P against it (pure); :func:`record_export` writes
the result back inside the pipeline's transaction, with what P booked of each record (its snapshot,
which :meth:`.database.Books.close` fixes when P closes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..config import Granularity
from .. import tables
from ..models import COMPLETED, SUMMARY_ROLES, JournalEntry, ProviderBalance, RollForward, Summaries
from ..money import round_to_cents
from ..period import Window
from ..transform import with_ratios
from .adjustments import detect_changes, split_moved
from .carry import Carry, Total
from ..days import day_number, utc_days
from .database import Books, Period
from .journal import Journal, build_journal
from .recheck import Recheck, covered, covered_records
from .mapping import AccountMapping
from .numbering import DEFAULT_CODE
from .rollforward import Previous, roll_forward
from .snapshots import Snapshot
from .sources import SourceCheck


@dataclass(frozen=True)
class BooksView:
    """What the books know before period P is booked."""

    carry: Carry = field(default_factory=Carry)
    previous: Previous | None = None  # the contiguous period just before P
    previous_models: pd.DataFrame | None = None  # its per-model figures (model, currency, count, amount, refunds)
    closed: tuple[Period, ...] = ()  # closed periods ended within the lookback, to re-check
    booked: pd.DataFrame | None = None  # their records as the books hold them (Books.booked)
    history: pd.DataFrame | None = None  # earlier periods' usage (Books.history)
    known_models: frozenset[str] = frozenset()
    ledger_accounts: tuple[tuple[str, str], ...] = ()  # (account, currency) earlier periods posted to
    start: date | None = None  # first day of the earliest period in the books
    source_check: SourceCheck | None = None  # another source than the books': what it must serve
    basis: str | None = None  # the earlier exports P is booked on (Books.basis)
    journal_code: str = DEFAULT_CODE  # the account's letter in its journal numbers (numbering.py)


@dataclass(frozen=True)
class Booked:
    """Period P booked: its journal, late changes, roll-forward, and what people should read."""

    journal: Journal  # the entries, and the rounding state after them (for the books database)
    adjustments: pd.DataFrame | None = None  # tables.ADJUSTMENTS; None without closed periods re-read
    rollforward: tuple[RollForward, ...] = ()  # one per currency; empty when not computed
    warnings: tuple[str, ...] = ()  # the late changes found, the journal's, the roll-forward's checks
    notes: tuple[str, ...] = ()  # information worth a line (e.g. a model seen for the first time); not warnings

    def __post_init__(self) -> None:
        if self.adjustments is not None:
            tables.ADJUSTMENTS.require(self.adjustments)


def read_view(books: Books, window: Window, lookback_days: int) -> BooksView:
    """The books' view for ``window``; closed periods ending within ``lookback_days`` before it start."""
    before = books.before(window.start)
    carry = books.carry(before.label) if before is not None else Carry()
    contiguous = before if before is not None and before.end_utc == window.start else None
    previous = Previous(contiguous.label, books.closings(contiguous.label)) if contiguous else None
    horizon = window.start - timedelta(days=lookback_days)
    closed = tuple(p for p in books.periods() if p.closed and horizon <= p.end_utc <= window.start)
    history = books.history(window.start)
    periods = books.periods()
    known = books.models_seen(excluding=window.label)  # a re-export of this period does not count
    return BooksView(
        carry=carry,
        previous=previous,
        previous_models=books.models(contiguous.label) if contiguous and _same_kind(contiguous, window) else None,
        closed=closed,
        booked=books.booked([p.label for p in closed], before=window.start) if closed else None,
        history=history if len(history) else None,
        known_models=known,
        ledger_accounts=tuple((name, currency) for name, currency, _ in books.ledger_accounts()),
        start=min((p.first_day for p in periods), default=None),
        basis=books.basis(window.start),
        journal_code=books.journal_code(),
    )


def _same_kind(period: Period, window: Window) -> bool:
    """Month after month, quarter after quarter, or range after range of the same length: comparable figures."""
    kind = Window(period.first_day, period.last_day, window.tz_name, period.label).kind
    length = (window.last_day - window.first_day).days
    return kind == window.kind and (kind != "range" or (period.last_day - period.first_day).days == length)


def book_period(
    summaries: Summaries,
    window: Window,
    mapping: AccountMapping,
    granularity: Granularity,
    view: BooksView,
    *,
    closed_records: pd.DataFrame | None = None,
    moved: pd.DataFrame | None = None,
    recheck: Recheck | None = None,
    provider: ProviderBalance | None = None,
    given_opening: int | None = None,
    derive_topups: bool = False,
) -> Booked:
    """Book P: late changes to the closed periods (``closed_records``: what the API returns for
    them now; ``moved``: P's records the books hold there, :func:`split_moved`), the journal
    carrying on the running totals, the roll-forward (month-over-month is :func:`compare_models`)."""
    warnings: list[str] = []
    adjustments = None
    if view.closed and closed_records is not None and view.booked is not None:
        booked, current = view.booked, closed_records
        if recheck is not None:  # only what was re-read is compared (docs/booking.md, "Finding late changes")
            booked = covered(booked, recheck, [] if moved is None else list(moved["id"]))
            current = covered_records(current, recheck)
        adjustments, found = detect_changes(current, booked, list(view.closed), moved)
        warnings += found
    rollforward, checks = roll_forward(summaries, adjustments, previous=view.previous,
                                       given_opening=given_opening, provider=provider, derive_topups=derive_topups)
    journal = build_journal(summaries.transactions, window, mapping, granularity,
                            carry=_seeded(view, rollforward, mapping), adjustments=adjustments,
                            journal_code=view.journal_code)
    new = sorted(set(summaries.by_model["model"]) - view.known_models - {""}) if view.known_models else []
    notes = tuple(f"new model: {model}" for model in new)
    if moved is not None and len(moved):
        notes += (f"{len(moved)} record(s) timestamped in {window.label} were booked in a closed period: "
                  "compared there as moved (adjustments.csv), not booked again",)
    return Booked(journal, adjustments, rollforward, (*warnings, *journal.warnings, *checks), notes)


def _seeded(view: BooksView, rollforward: tuple[RollForward, ...], mapping: AccountMapping) -> Carry:
    """The running totals to start from. A period that follows the previous one in the books
    carries on from it. Any other (the ledger's first period, or one with a gap behind it) starts
    the prepaid account's running total at its opening balance when it is known: the gap's records
    are not in the earlier running total, and whatever books them later carries on from the
    earlier period, so postings keep the prepaid account at the exact balance rounded."""
    if view.previous is not None:
        return view.carry
    carry = view.carry.copy()
    for row in rollforward:
        if row.opening_micros is not None:
            carry.balances[(mapping.prepaid, "", row.currency)] = Total(row.opening_micros, round_to_cents(row.opening_micros))
    return carry


def compare_models(by_model: pd.DataFrame, view: BooksView) -> pd.DataFrame:
    """by_model with previous_amount_micros and change_micros when the books know the previous
    period's figures (:attr:`BooksView.previous_models`); a model that disappeared appears with amount 0."""
    previous = view.previous_models
    if previous is None:
        return by_model
    before = previous.rename(columns={"amount": "previous_amount_micros"})[["model", "currency", "previous_amount_micros"]]
    merged = by_model.merge(before, on=["model", "currency"], how="outer")
    for column in ("count", "amount_micros", "refunds_micros", "net_micros"):
        merged[column] = merged[column].fillna(0).astype("int64")
    merged["previous_amount_micros"] = merged["previous_amount_micros"].fillna(0).astype("int64")
    merged["change_micros"] = merged["amount_micros"] - merged["previous_amount_micros"]
    return with_ratios(merged.drop(columns=["share", "unit_cost"]))  # Decimal ratios for the added rows too


# -- writing -------------------------------------------------------------------------------------


def record_export(books: Books, window: Window, granularity: Granularity, summaries: Summaries, booked: Booked, *,
                  snapshot: Snapshot, in_period: int, recheck: Recheck | None, manifest_sha256: str, pack: str,
                  when: datetime, basis: str) -> None:
    """Replace what the books hold for this (open) period by this export (``in_period`` records,
    booked into ``booked``, kept as ``snapshot``: :func:`period_snapshot`) on ``basis``
    (:attr:`BooksView.basis`). Inside a transaction."""
    label = window.label
    books.forget(label)
    books.add_period(Period(label, window.first_day, window.last_day, window.tz_name, window.start, window.end,
                            granularity, when, pack, manifest_sha256, in_period, "open", None),
                     basis)
    books.add_rows("rollforward", label, [
        (r.currency, r.opening_micros, r.topups_micros, r.usage_micros, r.refunds_micros, r.other_micros,
         r.adjustments_micros, r.closing_micros, r.opening_source, r.provider_balance_micros, r.pending_micros)
        for r in booked.rollforward
    ])
    books.add_rows("period_models", label, [
        (str(r.model), str(r.currency), int(r.count), int(r.amount_micros), int(r.refunds_micros))
        for r in summaries.by_model.itertuples(index=False) if r.count or r.amount_micros or r.refunds_micros
    ])
    entries = booked.journal.entries
    books.add_carry(label, booked.journal.carry)
    books.add_ledger_accounts(label, sorted({(line.account, e.currency) for e in entries for line in e.lines}))
    if booked.adjustments is not None:
        books.add_rows("adjustments", label, [
            (str(r.id), str(r.period), str(r.change), str(r.type), str(r.model), str(r.payment_method),
             str(r.currency), str(r.status_before), str(r.status_after), int(r.amount_before_micros),
             int(r.amount_after_micros), int(r.delta_micros), int(r.day))
            for r in booked.adjustments.itertuples(index=False)
        ])
    if recheck is not None:  # each closed day re-read whole, and when (docs/booking.md, "Finding late changes")
        books.add_full_checks(label, [day_number(d) for d in recheck.days], when)
    books.keep_snapshot(label, snapshot)
    books.log(label, "export", f"{in_period} records, pack {pack}", when)


def period_snapshot(summaries: Summaries, booked: Booked, granularity: Granularity, window: Window) -> Snapshot:
    """What :func:`record_export` keeps of the period's records (pure: made before the books'
    transaction, beside other work)."""
    return Snapshot.of(snapshot_frame(summaries.transactions, booked.journal.entries, granularity, window.last_day))


def snapshot_frame(transactions: pd.DataFrame, journal: tuple[JournalEntry, ...], granularity: Granularity,
                   last_day: date) -> pd.DataFrame:
    """What the ``journal`` booked of each record of ``transactions`` (the period's, which ends on
    ``last_day``; :data:`.snapshots.SNAPSHOT_COLUMNS`): kept in the books at export, it becomes the
    period's booked records when the period closes."""
    frame = transactions.reset_index(drop=True)
    summaries, singles = _entry_numbers(journal)
    days = frame["date"].to_numpy().astype("datetime64[D]")
    if granularity == "monthly":
        month_end = (days.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1
        days = np.minimum(month_end, np.datetime64(last_day.isoformat(), "D"))
    # the entry of each record as a code into the period's entry numbers (a few hundred), never a
    # text per record: the summary entry of its role, currency and day, else its own single entry
    position = {number: n for n, number in enumerate(dict.fromkeys([*(s[3] for s in summaries), *singles.values()]))}
    codes = _summary_codes(frame["role"], frame["currency"], days, [(*s[:3], position[s[3]]) for s in summaries])
    single = codes < 0
    if single.any() and singles:
        code_of = {record_id: position[number] for record_id, number in singles.items()}
        codes[single] = frame.loc[single, "id"].astype("object").map(code_of).fillna(-1).to_numpy("int64")
    codes[(frame["status"] != COMPLETED).to_numpy()] = -1  # only completed ones are booked
    entry = pd.Categorical.from_codes(codes, categories=pd.Index(list(position), dtype="object"))
    return pd.DataFrame({
        "id": frame["id"], "status": frame["status"], "type": frame["type"], "model": frame["model"],
        "payment_method": frame["payment_method"], "currency": frame["currency"], "amount": frame["amount_micros"],
        "entry": entry, "day": utc_days(frame["created_at"]),
    })


def _summary_codes(roles: pd.Series, currencies: pd.Series, days: np.ndarray,
                   summaries: list[tuple[str, str, Any, int]]) -> np.ndarray:
    """Each record's code of the summary entry of its (role, currency, day), -1 where none is.

    A lookup table over every (role, currency, day) the records could have (a few thousand
    slots), filled from the summaries, read with one integer key a record: no join of a million rows."""
    role, currency = pd.Categorical(roles), pd.Categorical(currencies)
    day = days.astype("datetime64[D]").view(np.int64)
    first = int(day.min()) if len(day) else 0
    span = int(day.max()) - first + 1 if len(day) else 1
    role_of = {name: n for n, name in enumerate(role.categories)}
    currency_of = {name: n for n, name in enumerate(currency.categories)}
    width = len(currency_of) * span
    table = np.full(len(role_of) * width + 1, -1, dtype=np.int64)  # + 1: the slot of records without a key
    for name, code, when, entry in summaries:
        offset = int(np.datetime64(when, "D").astype(np.int64)) - first
        if name in role_of and code in currency_of and 0 <= offset < span:
            table[role_of[name] * width + currency_of[code] * span + offset] = entry
    keys = role.codes.astype(np.int64) * width + currency.codes.astype(np.int64) * span + (day - first)
    keys[(role.codes < 0) | (currency.codes < 0)] = len(table) - 1  # no role (amount 0): no summary
    return table[keys]


def _entry_numbers(journal: tuple[JournalEntry, ...]) -> tuple[list[tuple[str, str, object, str]], dict[str, str]]:
    """(role, currency, day, number) of the summary entries, and record id -> number of the singles."""
    summary: list[tuple[str, str, object, str]] = [(e.role, e.currency, np.datetime64(e.date.isoformat(), "D"), e.number)
               for e in journal if e.role in SUMMARY_ROLES and not e.adjusts]
    single = {record_id: e.number for e in journal if e.role not in SUMMARY_ROLES and not e.adjusts
              for record_id in e.source_ids}
    return summary, single


__all__ = ["Booked", "BooksView", "book_period", "compare_models", "period_snapshot", "read_view", "record_export",
           "snapshot_frame", "split_moved"]
