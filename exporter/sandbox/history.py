"""The sandbox account as it stood at a given instant: a history that moves forward.

Stdlib only, like the rest of the sandbox. :func:`as_of` turns the generated dataset (the static
snapshot :func:`~.data.generate_dataset` returns, which the library serves by default and the
tests' figures are computed from) into the dataset a real account would have shown at one
instant. Every record gets a fixed timeline, drawn from a hash of the dataset's seed and the
record's id, so it never depends on which date is asked or in which order:

- **creation and arrival.** As of an instant, what happened strictly before it counts: a record
  is served once its arrival instant has passed (one created at 00:00 is not served as of that
  day, as the API's ``[start, end)`` periods would have it). Almost every record
  arrives when it is created; about 0.15 % arrive late, 1 hour to 10 days after their
  ``created_at`` (a handful a month with the default data): before arriving they are absent,
  afterwards they are served with their old timestamp.
- **settling.** Every record is ``pending`` from its creation until it settles. A record the
  generator made ``completed`` or ``failed`` settles 1 second to 10 minutes later, to that status;
  one it made ``pending`` is a slow task (or a top-up still clearing): it settles 10 minutes to
  3 days later, most within hours (the delay is skewed towards short), and then completes, or
  fails one time in ten.
- **reversal.** About 0.5 % of the usage records that complete are reversed 1 to 30 days after
  settling: their status becomes ``failed`` (the charge is given back; the sandbox knows no
  ``refunded`` status). The view also records the instant of each reversal
  (:attr:`~.data.Dataset.reversals`): the legacy API generation shows the record ``failed``, the
  current one the charge as it was plus a refund created at that instant (:mod:`.items`).
- **re-pricing.** About 0.2 % of the usage records that complete and are not reversed are
  re-priced 1 to 30 days after settling: the amount moves by 5 to 20 %, up or down, to a
  whole hundredth of a cent.

What the model does not do: a record never disappears once it has arrived (the books' ``missing``
change stays a test-only revision, :mod:`.revisions`), never changes type, model, currency or
timestamp, and never goes back: pending → completed or failed, completed → failed (reversed) or
re-priced, each at most once. Hence, for dates ``D1 <= D2``: a record served as of D1 is served
as of D2; one ``failed`` as of D1 stays ``failed``; one ``completed`` as of D1 is ``completed``
(perhaps re-priced) or ``failed`` (reversed) as of D2; a re-priced amount stays re-priced.

The balance follows, since :class:`~.data.Dataset` computes it from the records served (the
opening balance plus every amount completed as of the instant). After the last event of the
dataset (a month or so after its last record) every later instant gives the same view.

With the default data (5 months, 12,687 records) the account stands, at 00:00 UTC on the first
of a month, with one to four of the previous month's records pending (about 0.1 %; the last one
of the month among them, created a millisecond before, unless it arrives late), and between that month end and the next about a
dozen of the month's charges are reversed or re-priced; see docs/sandbox.md. Views are built in
a tenth of a second or so and cached per (dataset, instant).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from .data import Dataset, Record, dataset_from_records

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_SECOND = 1_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR

# Rates in basis points (1/10,000); delays in milliseconds, [low, high).
FAST_SETTLE = (1 * _SECOND, 10 * _MINUTE)  # completed or failed in the generator
SLOW_SETTLE = (10 * _MINUTE, 3 * _DAY)  # pending in the generator: skewed towards the short end
SLOW_FAILS_BP = 1_000  # a slow task fails one time in ten
REVERSED_BP = 50  # 0.5 % of completed usage
REPRICED_BP = 20  # 0.2 % of completed usage (not reversed)
LATER = (1 * _DAY, 30 * _DAY)  # a reversal or re-pricing, after settling
ARRIVES_LATE_BP = 15  # 0.15 % of records
ARRIVAL_DELAY = (1 * _HOUR, 10 * _DAY)
REPRICE_STEPS = (Decimal("0.05"), Decimal("0.10"), Decimal("0.15"), Decimal("0.20"))
_PRICE_QUANTUM = Decimal("0.0001")  # re-priced amounts are whole hundredths of a cent


@dataclass(frozen=True, slots=True)
class Timeline:
    """What happens to one record, and when (milliseconds since the epoch, UTC)."""

    record: Record  # as generated; its status is only the seed of the timeline
    arrives: int  # served from this instant on (== created, unless it arrives late)
    settles: int  # pending before this instant
    final_status: str  # "completed" or "failed", from ``settles`` on
    reversed_at: int | None = None  # completed -> failed
    repriced_at: int | None = None
    repriced_amount: Decimal | None = None

    def state(self, instant: int) -> Record | None:
        """The record as served at ``instant``: what happened strictly before it counts (a record
        created at the instant is not served yet); ``None`` when it has not arrived."""
        if instant <= self.arrives:
            return None
        record = self.record
        if instant <= self.settles:
            status = "pending"
        elif self.reversed_at is not None and instant > self.reversed_at:
            status = "failed"
        else:
            status = self.final_status
        amount = record.amount
        if self.repriced_at is not None and instant > self.repriced_at and self.repriced_amount is not None:
            amount = self.repriced_amount
        if status == record.status and amount == record.amount:
            return record
        return replace(record, status=status, amount=amount)

    def last_event(self) -> int:
        return max(self.arrives, self.settles, self.reversed_at or 0, self.repriced_at or 0)


def day_start(day: date) -> datetime:
    """00:00 UTC of ``day``: the instant ``--sandbox-as-of DAY`` means."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def history_start(dataset: Dataset) -> date:
    """The first day of the dataset's first generated month (no earlier as-of date makes sense)."""
    first = min(dataset.months) if dataset.months else "1970-01"
    return date(int(first[:4]), int(first[5:7]), 1)


def timelines(dataset: Dataset) -> list[Timeline]:
    """Every record's timeline, newest first like ``dataset.records``; cached per dataset."""
    with _lock:
        cached = _timelines.get(id(dataset))
        if cached is not None and cached[0] is dataset:
            return cached[1]
    built = [_timeline(dataset.seed, record) for record in dataset.records]
    with _lock:
        _timelines[id(dataset)] = (dataset, built)
        while len(_timelines) > _CACHE_LIMIT:
            _timelines.popitem(last=False)
    return built


def as_of(dataset: Dataset, instant: datetime) -> Dataset:
    """``dataset`` as the account stood at ``instant`` (timezone-aware); see the module docstring.

    Deterministic: the same dataset and instant give an identical dataset (the same JSON bytes).
    Cached per (dataset, instant); every instant after the dataset's last event gives one view.
    """
    if instant.tzinfo is None:
        raise ValueError("as_of needs a timezone-aware instant")
    lines = timelines(dataset)
    horizon = max((t.last_event() for t in lines), default=0)
    at = min((instant - _EPOCH) // _MS, horizon + 1)
    key = (id(dataset), at)
    with _lock:
        cached = _views.get(key)
        if cached is not None and cached[0] is dataset:
            _views.move_to_end(key)
            return cached[1]
    served, reversals = [], {}
    for timeline in lines:
        record = timeline.state(at)
        if record is None:
            continue
        served.append(record)
        if timeline.reversed_at is not None and at > timeline.reversed_at:
            reversals[record.id] = timeline.reversed_at  # the current API shows it as a refund
    view = dataset_from_records(served, dataset.months, dataset.seed, dataset.opening_balance, reversals)
    with _lock:
        _views[key] = (dataset, view)
        while len(_views) > _CACHE_LIMIT:
            _views.popitem(last=False)
    return view


# -- drawing a timeline ----------------------------------------------------------------


def _timeline(seed: int | str, record: Record) -> Timeline:
    digest = hashlib.blake2b(f"{seed}/{record.id}".encode("utf-8"), digest_size=40, person=b"ws-asof").digest()
    draws = [int.from_bytes(digest[i : i + 4], "big") for i in range(0, 40, 4)]
    created = (record.created_at - _EPOCH) // _MS

    arrives = created
    if draws[0] % 10_000 < ARRIVES_LATE_BP:
        arrives = created + _between(ARRIVAL_DELAY, draws[8])

    if record.status == "pending":
        skewed = (draws[1] % 65_536) ** 2 // 65_536  # 0..65535, most of them small
        settles = created + SLOW_SETTLE[0] + (SLOW_SETTLE[1] - SLOW_SETTLE[0]) * skewed // 65_536
        final = "failed" if draws[2] % 10_000 < SLOW_FAILS_BP else "completed"
    else:
        settles = created + _between(FAST_SETTLE, draws[1])
        final = record.status

    reversed_at = repriced_at = None
    repriced_amount = None
    if final == "completed" and record.type == "usage":
        if draws[3] % 10_000 < REVERSED_BP:
            reversed_at = settles + _between(LATER, draws[4])
        elif draws[5] % 10_000 < REPRICED_BP:
            repriced_at = settles + _between(LATER, draws[6])
            step = REPRICE_STEPS[draws[7] % len(REPRICE_STEPS)]
            factor = 1 + step if (draws[7] // len(REPRICE_STEPS)) % 2 else 1 - step
            repriced_amount = (record.amount * factor).quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_UP)
            if repriced_amount == record.amount or repriced_amount == 0:
                repriced_at = repriced_amount = None
    return Timeline(record, arrives, settles, final, reversed_at, repriced_at, repriced_amount)


def _between(bounds: tuple[int, int], draw: int) -> int:
    low, high = bounds
    return low + draw % (high - low)


_CACHE_LIMIT = 16
_lock = threading.Lock()
_timelines: OrderedDict[int, tuple[Dataset, list[Timeline]]] = OrderedDict()
_views: OrderedDict[tuple[int, int], tuple[Dataset, Dataset]] = OrderedDict()


__all__ = ["Timeline", "as_of", "day_start", "history_start", "timelines"]
