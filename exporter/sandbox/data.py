"""Deterministic fake billing history for the sandbox.

Stdlib only: the sandbox plays the remote side, so it shares nothing with the exporter.

Records are kept column-wise (``array`` columns) next to one blob holding the compact JSON text
of every record, newest first. A million-record month then costs about 200 MB instead of the
gigabyte a list of dicts would, and the server builds a page by joining slices of the blob.

One record's JSON text (key order fixed; ``model`` only on usage/refunds, ``payment_method``
only on top-ups; ``amount`` is the exact decimal text, never a float)::

    {"id":"txn_2024010000123","type":"usage","amount":-0.0025,"currency":"USD",
     "status":"completed","model":"wavespeed-ai/sdxl","created_at":"2024-01-15T10:30:00.123Z"}
"""

from __future__ import annotations

import random
import re
import threading
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property
from types import MappingProxyType
from typing import Any, NamedTuple

DEMO_KEY = "ws-sandbox-demo-key"
DEFAULT_MONTHS = ("2023-11", "2023-12", "2024-01", "2024-02", "2024-03")
DEFAULT_SEED = 2024
DEFAULT_OPENING_BALANCE = Decimal("100.00")  # credit the account held before its first generated record
CURRENCY = "USD"

TYPES = ("usage", "topup", "refund")
STATUSES = ("completed", "pending", "failed")
PAYMENT_METHODS = ("stripe", "paypal", "card")
_USAGE, _TOPUP, _REFUND = 0, 1, 2
_COMPLETED = 0
_NONE = -1

# (model, price per task in USD, relative frequency): cheap image models dominate, as on a
# real account; video models cost dollars per task and are rare.
MODELS: tuple[tuple[str, str, int], ...] = (
    ("wavespeed-ai/flux-schnell", "0.003", 300),
    ("wavespeed-ai/sdxl", "0.0025", 250),
    ("wavespeed-ai/flux-dev", "0.0125", 200),
    ("wavespeed-ai/sdxl-lora", "0.0045", 120),
    ("wavespeed-ai/real-esrgan", "0.0025", 100),
    ("wavespeed-ai/flux-dev-lora", "0.015", 60),
    ("wavespeed-ai/flux-pro-v1.1", "0.04", 30),
    ("google/nano-banana", "0.038", 30),
    ("wavespeed-ai/flux-kontext-pro", "0.04", 25),
    ("wavespeed-ai/qwen-image", "0.02", 25),
    ("bytedance/seedream-v3", "0.027", 25),
    ("wavespeed-ai/hunyuan-image-2.1", "0.02", 20),
    ("google/imagen4", "0.04", 20),
    ("google/imagen4-fast", "0.02", 20),
    ("wavespeed-ai/flux-kontext-max", "0.08", 10),
    ("openai/gpt-image-1", "0.042", 10),
    ("minimax/speech-02-hd", "0.05", 10),
    ("kwaivgi/kling-v2.1", "0.25", 10),
    ("bytedance/seedance-v1-lite", "0.18", 10),
    ("alibaba/wan-2.1", "0.20", 10),
    ("alibaba/wan-2.2", "0.15", 10),
    ("ideogram-ai/ideogram-v3", "0.06", 8),
    ("bytedance/seedance-v1-pro", "0.30", 8),
    ("minimax/hailuo-02", "0.28", 8),
    ("recraft-ai/recraft-v3", "0.04", 6),
    ("google/veo3-fast", "1.20", 5),
    ("pixverse/pixverse-v4.5", "0.30", 5),
    ("luma/ray-2", "0.50", 4),
    ("vidu/vidu-q1", "0.40", 4),
    ("google/veo3", "3.20", 3),
    ("kwaivgi/kling-v2.1-master", "1.40", 3),
)
MODEL_NAMES = tuple(name for name, _, _ in MODELS)

# A usage record is one task at the model's price, sometimes two or three (longer videos,
# batches of images).
_MULTIPLIERS = (1, 2, 3)
_MULTIPLIER_WEIGHTS = (90, 7, 3)
_TOPUP_AMOUNTS = ("10.00", "25.00", "50.00", "100.00", "500.00")
_TOPUP_WEIGHTS = (2, 3, 3, 3, 1)
_PAYMENT_WEIGHTS = (5, 2, 3)
_STATUS_WEIGHTS = (97, 2, 1)  # completed, pending ~2 %, failed ~1 %
_MAX_PER_MONTH = 9_999_999  # the id has seven digits for the sequence number

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_DAY_MS = 86_400_000
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Record:
    """One billing record as the API describes it; ``amount`` is exact and signed."""

    id: str
    type: str
    amount: Decimal
    currency: str
    status: str
    created_at: datetime  # UTC, millisecond precision
    model: str | None = None  # usage and refunds only
    payment_method: str | None = None  # top-ups only

    def __getitem__(self, key: str) -> Any:
        """Dict-style access (``record["amount"]``), for tests that think in JSON."""
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """Like ``dict.get``: ``None`` fields count as absent."""
        value = getattr(self, key, None)
        return default if value is None else value


class ModelUsage(NamedTuple):
    """Completed usage of one model: task records and exact positive cost."""

    requests: int
    cost: Decimal


def format_timestamp(ts: datetime) -> str:
    """``2024-01-15T10:30:00.123Z``: UTC, always milliseconds and ``Z``."""
    utc = ts.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def record_json(record: Record, broken: str | None = None) -> str:
    """The compact JSON text of ``record``, the same text the dataset serves.

    ``broken`` names a field to damage (the server's ``malformed`` fault): ``amount`` becomes
    the string ``"abc"``, ``created_at`` becomes ``"not-a-date"``, any other field is dropped.
    """
    fields: dict[str, str] = {
        "id": _quote(record.id),
        "type": _quote(record.type),
        "amount": _decimal_text(record.amount),
        "currency": _quote(record.currency),
        "status": _quote(record.status),
    }
    if record.payment_method is not None:
        fields["payment_method"] = _quote(record.payment_method)
    if record.model is not None:
        fields["model"] = _quote(record.model)
    fields["created_at"] = _quote(format_timestamp(record.created_at))
    if broken == "amount":
        fields["amount"] = '"abc"'
    elif broken == "created_at":
        fields["created_at"] = '"not-a-date"'
    elif broken is not None:
        fields.pop(broken, None)
    return "{" + ",".join(f'"{key}":{value}' for key, value in fields.items()) + "}"


class Dataset:
    """Generated records, newest first (``created_at`` desc, then ``id`` desc).

    Build one with :func:`generate_dataset`. Thread-safe for readers: the server's handler
    threads share one instance; the query caches are guarded by a lock.
    """

    _CACHE_LIMIT = 64  # distinct queries kept; a benchmark must not grow memory without bound

    def __init__(
        self,
        months: tuple[str, ...],
        seed: int | str,
        columns: _Columns,
        amounts: _AmountTable,
        opening_balance: Decimal = DEFAULT_OPENING_BALANCE,
        reversals: Mapping[str, int] | None = None,
        currencies: Mapping[str, str] | None = None,
    ) -> None:
        self.months = months
        self.seed = seed
        self.opening_balance = opening_balance
        # record id -> instant (ms since the epoch) a completed charge was given back, for the
        # records served ``failed`` because they were reversed (:func:`.history.as_of`); the
        # current API generation serves those as the charge plus a refund (:mod:`.items`).
        # Empty for generated data: its failed records failed before they were charged.
        self.reversals: Mapping[str, int] = MappingProxyType(dict(reversals or {}))
        # record id -> currency, for the few records not in USD (a test's revision: generated data
        # is all USD); the JSON text served carries it, the balance and usage summaries (USD) leave them out
        self.currencies: Mapping[str, str] = MappingProxyType(dict(currencies or {}))
        self._ts = columns.ts
        self._type = columns.type
        self._status = columns.status
        self._model = columns.model
        self._payment = columns.payment
        self._amount = columns.amount
        self._blob = columns.blob  # each record's JSON text followed by a comma
        self._offsets = columns.offsets  # record i is blob[offsets[i]:offsets[i + 1] - 1]
        self._amounts = amounts
        self._lock = threading.Lock()
        self._index_cache: dict[tuple[str | None, int | None, int | None], Sequence[int]] = {}
        self._usage_cache: dict[tuple[int | None, int | None], dict[str, ModelUsage]] = {}
        self._daily_cache: dict[tuple[str | None, int | None, int | None], dict[date, dict[str, ModelUsage]]] = {}

    def __len__(self) -> int:
        return len(self._ts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dataset):
            return NotImplemented
        return self._blob == other._blob  # the blob holds every field of every record

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Dataset(months={self.months!r}, seed={self.seed!r}, records={len(self)})"

    # -- what tests and benchmarks read -------------------------------------------------

    def lines(self) -> Iterator[str]:
        """The JSON text of every record, newest first (one JSON object per line, no newline)."""
        blob, offsets = self._blob, self._offsets
        for i in range(len(self._ts)):
            yield blob[offsets[i] : offsets[i + 1] - 1].decode("ascii")

    @cached_property
    def records(self) -> list[Record]:
        """Every record as a :class:`Record`, newest first. Built on first use: costly for big sets."""
        return [self.record(i) for i in range(len(self._ts))]

    def record(self, i: int) -> Record:
        """The ``i``-th record, newest first."""
        model, payment = self._model[i], self._payment[i]
        return Record(
            id=self.record_id(i),
            type=TYPES[self._type[i]],
            amount=self._amounts.values[self._amount[i]],
            currency=self.currencies.get(self.record_id(i), CURRENCY) if self.currencies else CURRENCY,
            status=STATUSES[self._status[i]],
            created_at=_EPOCH + self._ts[i] * _MS,
            model=None if model == _NONE else MODEL_NAMES[model],
            payment_method=None if payment == _NONE else PAYMENT_METHODS[payment],
        )

    def record_id(self, i: int) -> str:
        """The id of the ``i``-th record, read from its JSON text (``{"id":"…",``)."""
        start = self._offsets[i] + 7
        return self._blob[start : self._blob.index(b'"', start)].decode("ascii")

    def usage_by_model(self, start: date | None = None, end: date | None = None) -> dict[str, ModelUsage]:
        """Completed usage per model between two UTC days, both inclusive (like the API's
        ``start_date``/``end_date``); ``cost`` is the exact, positive sum of the amounts."""
        key = (_day_start_ms(start), _day_end_ms(end))
        with self._lock:
            cached = self._usage_cache.get(key)
        if cached is None:
            cached = self._compute_usage(*key)
            with self._lock:
                if len(self._usage_cache) >= self._CACHE_LIMIT:
                    self._usage_cache.clear()
                self._usage_cache[key] = cached
        return dict(cached)

    @cached_property
    def balance(self) -> Decimal:
        """The account's credit balance now (USD): the opening balance plus every completed amount in
        USD, exactly (every generated record lies in the past)."""
        counts = Counter(a for i, (a, s) in enumerate(zip(self._amount, self._status))
                         if s == _COMPLETED and i not in self._foreign)
        return self.opening_balance + sum((self._amounts.values[a] * n for a, n in counts.items()), Decimal(0))

    @cached_property
    def _foreign(self) -> frozenset[int]:
        """Positions of the records not in USD: the balance and the usage summaries (USD) leave them out."""
        if not self.currencies:
            return frozenset()
        return frozenset(i for i in range(len(self._ts)) if self.record_id(i) in self.currencies)

    def usage_by_day(
        self, start: date | None = None, end: date | None = None, status: str | None = "completed"
    ) -> dict[date, dict[str, ModelUsage]]:
        """Usage records per UTC day and model between two inclusive UTC days, days ascending,
        models by name; ``status`` ``None`` counts every status (a task asked for, whatever its
        fate). ``cost`` is the exact, positive sum of the amounts. One pass over the span, cached."""
        key = (status, _day_start_ms(start), _day_end_ms(end))
        with self._lock:
            cached = self._daily_cache.get(key)
        if cached is None:
            cached = self._compute_daily(key[1], key[2], None if status is None else STATUSES.index(status))
            with self._lock:
                if len(self._daily_cache) >= self._CACHE_LIMIT:
                    self._daily_cache.clear()
                self._daily_cache[key] = cached
        return {day: dict(models) for day, models in cached.items()}

    def columns(self) -> Columns:
        """The raw columns, newest first, for the server's other API generation (read only)."""
        return Columns(
            self._ts, self._type, self._status, self._model, self._amount, self._amounts.texts,
            self._blob, self._offsets,
        )

    # -- what the server uses ----------------------------------------------------------

    def select(self, type_: str | None = None, start: date | None = None, end: date | None = None) -> Sequence[int]:
        """Positions (newest first) of the records of ``type_`` between two inclusive UTC days.

        Cached per query: a client walking a million-record month asks the same question for
        every page.
        """
        key = (type_, _day_start_ms(start), _day_end_ms(end))
        with self._lock:
            index = self._index_cache.get(key)
            if index is not None:
                return index
        lo, hi = self._span(key[1], key[2])
        if type_ is None:
            index = range(lo, hi)
        else:
            code = TYPES.index(type_)
            types = self._type
            index = array("l", [i for i in range(lo, hi) if types[i] == code])
        with self._lock:
            if len(self._index_cache) >= self._CACHE_LIMIT:
                self._index_cache.clear()
            self._index_cache[key] = index
        return index

    def json_bytes(self, positions: Iterable[int]) -> bytes:
        """The records at ``positions`` as the inside of a JSON array: ``{…},{…}``."""
        if isinstance(positions, range) and positions.step == 1:
            if not positions:
                return b""
            # contiguous records are contiguous in the blob: one slice, commas included
            return bytes(self._blob[self._offsets[positions.start] : self._offsets[positions.stop] - 1])
        blob, offsets = self._blob, self._offsets
        return b",".join([blob[offsets[i] : offsets[i + 1] - 1] for i in positions])

    def day_span(self) -> tuple[date, date] | None:
        """First and last UTC day holding a record, or ``None`` when empty."""
        if not self._ts:
            return None
        return (_EPOCH + self._ts[-1] * _MS).date(), (_EPOCH + self._ts[0] * _MS).date()

    def _span(self, start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
        """Positions ``[lo, hi)`` of the records with ``start_ms <= ts < end_ms``."""
        ts = self._ts
        lo = 0 if end_ms is None else bisect_right(ts, -end_ms, key=_negate)
        hi = len(ts) if start_ms is None else bisect_right(ts, -start_ms, key=_negate)
        return lo, max(lo, hi)

    def _compute_usage(self, start_ms: int | None, end_ms: int | None) -> dict[str, ModelUsage]:
        lo, hi = self._span(start_ms, end_ms)
        counts: Counter[tuple[int, int]] = Counter(
            (m, a)
            for i, t, s, m, a in zip(
                range(lo, hi), self._type[lo:hi], self._status[lo:hi], self._model[lo:hi], self._amount[lo:hi]
            )
            if t == _USAGE and s == _COMPLETED and i not in self._foreign
        )
        totals: dict[str, tuple[int, Decimal]] = {}
        for (model, amount), n in counts.items():
            name = MODEL_NAMES[model]
            requests, cost = totals.get(name, (0, Decimal(0)))
            totals[name] = (requests + n, cost - self._amounts.values[amount] * n)
        return {name: ModelUsage(*totals[name]) for name in sorted(totals)}


    def _compute_daily(
        self, start_ms: int | None, end_ms: int | None, status: int | None
    ) -> dict[date, dict[str, ModelUsage]]:
        lo, hi = self._span(start_ms, end_ms)
        counts: Counter[tuple[int, int, int]] = Counter(
            (t // _DAY_MS, m, a)
            for i, ty, s, t, m, a in zip(
                range(lo, hi), self._type[lo:hi], self._status[lo:hi], self._ts[lo:hi], self._model[lo:hi],
                self._amount[lo:hi],
            )
            if ty == _USAGE and (status is None or s == status) and i not in self._foreign
        )
        days: dict[int, dict[str, list[Any]]] = {}
        for (day, model, amount), n in counts.items():
            row = days.setdefault(day, {}).setdefault(MODEL_NAMES[model], [0, Decimal(0)])
            row[0] += n
            row[1] -= self._amounts.values[amount] * n
        return {
            (_EPOCH + timedelta(days=day)).date(): {m: ModelUsage(*days[day][m]) for m in sorted(days[day])}
            for day in sorted(days)
        }


class Columns(NamedTuple):
    """A dataset's columns, newest first; ``amount`` indexes ``amount_texts`` (exact, signed)."""

    ts: Sequence[int]  # ms since the epoch, UTC
    type: Sequence[int]  # index into TYPES
    status: Sequence[int]  # index into STATUSES
    model: Sequence[int]  # index into MODEL_NAMES, -1 for none
    amount: Sequence[int]
    amount_texts: Sequence[str]
    blob: bytes | bytearray  # each record's legacy JSON text and a comma
    offsets: Sequence[int]  # record i is blob[offsets[i]:offsets[i + 1] - 1]


def generate_dataset(
    months: Iterable[str] = DEFAULT_MONTHS,
    records_per_month: int | Mapping[str, int] | None = None,
    seed: int | str = DEFAULT_SEED,
) -> Dataset:
    """Generate a deterministic billing history.

    ``records_per_month``: one count for every month, a mapping month -> count, or ``None``
    for the default mix (2024-01: 4,000; other months 1,500-2,500). Each count includes the
    two boundary records of the month: one at its first instant and one at its last
    millisecond. When a neighbouring month is not generated, one record is added just outside
    (last millisecond before, first instant after), so clients can test their [start, end) cut.

    Each month draws from its own ``random.Random(f"{seed}/{month}")``: a month's records do
    not depend on which other months are generated.
    """
    listed = sorted({_parse_month(m) for m in months})
    edges: dict[tuple[int, int], list[int]] = {}
    for ym in listed:
        before, after = _shift(ym, -1), _shift(ym, 1)
        if before not in listed:
            edges.setdefault(before, []).append(_month_start_ms(ym) - 1)
        if after not in listed:
            edges.setdefault(after, []).append(_month_start_ms(after))
    amounts = _AmountTable()
    columns = _Columns()
    # newest month first: the blob is written in the order it will be served
    for ym in sorted(set(listed) | set(edges), reverse=True):
        label = f"{ym[0]:04d}-{ym[1]:02d}"
        rng = random.Random(f"{seed}/{label}")
        if ym in listed:
            count = _month_count(records_per_month, label, rng)
            _generate_month(rng, ym, count, amounts, columns)
        else:
            _generate_edges(rng, ym, sorted(edges[ym]), amounts, columns)
    return Dataset(tuple(f"{y:04d}-{m:02d}" for y, m in listed), seed, columns, amounts)


# -- generation ------------------------------------------------------------------------


class _AmountTable:
    """The few distinct amounts (model prices and multiples, top-up sums), interned."""

    def __init__(self) -> None:
        self.values: list[Decimal] = []
        self.texts: list[str] = []
        self._index: dict[str, int] = {}

    def add(self, text: str) -> int:
        index = self._index.get(text)
        if index is None:
            index = self._index[text] = len(self.values)
            self.values.append(Decimal(text))
            self.texts.append(text)
        return index


class _Columns:
    """Column storage filled newest first while generating."""

    def __init__(self) -> None:
        self.ts = array("q")
        self.type = array("b")
        self.status = array("b")
        self.model = array("b")
        self.payment = array("b")
        self.amount = array("H")
        self.blob = bytearray()
        self.offsets = array("q", [0])


@dataclass
class _Month:
    """One month's records in chronological order, before serialisation."""

    ts: list[int]
    type: list[int]
    status: list[int]
    model: list[int]
    payment: list[int]
    amount: list[int]


def _month_count(spec: int | Mapping[str, int] | None, label: str, rng: random.Random) -> int:
    if spec is None:
        count = 4_000 if label == "2024-01" else rng.randint(1_500, 2_500)
    elif isinstance(spec, int):
        count = spec
    else:
        count = spec[label]
    if not 2 <= count <= _MAX_PER_MONTH:
        raise ValueError(f"records per month must be between 2 and {_MAX_PER_MONTH}, got {count}")
    return count


def _generate_month(
    rng: random.Random, ym: tuple[int, int], count: int, amounts: _AmountTable, columns: _Columns
) -> None:
    start, end = _month_start_ms(ym), _month_start_ms(_shift(ym, 1))
    inner = count - 2
    span = end - start - 2
    rand = rng.random
    # strictly inside the month, so the boundary instants hold exactly one record each
    ts = sorted([start + 1 + int(rand() * span) for _ in range(inner)])
    ts = [start, *ts, end - 1]

    models = rng.choices(range(len(MODELS)), weights=[w for _, _, w in MODELS], k=count)
    multipliers = rng.choices(_MULTIPLIERS, weights=_MULTIPLIER_WEIGHTS, k=count)
    statuses = rng.choices(range(len(STATUSES)), weights=_STATUS_WEIGHTS, k=count)
    month = _Month(
        ts=ts,
        type=[_USAGE] * count,
        status=statuses,
        model=models,
        payment=[_NONE] * count,
        amount=[_usage_amount(amounts, m, k) for m, k in zip(models, multipliers)],
    )
    month.status[0] = month.status[-1] = _COMPLETED  # boundary records always count

    # top-ups: enough to cover the month's expected spend, at least two
    budget = Decimal(inner) * _EXPECTED_TASK_COST * Decimal("1.1")
    topups: list[tuple[str, int]] = []  # (amount, status); only completed ones buy credit
    credit = Decimal(0)
    while len(topups) < 2 or credit < budget:
        amount = rng.choices(_TOPUP_AMOUNTS, weights=_TOPUP_WEIGHTS)[0]
        status = rng.choices(range(len(STATUSES)), weights=_STATUS_WEIGHTS)[0]
        topups.append((amount, status))
        credit += Decimal(amount) if status == _COMPLETED else 0
    refunds = rng.randint(2, 6) + inner // 20_000
    special = min(inner, len(topups) + refunds)
    positions = rng.sample(range(1, count - 1), special)
    for n, pos in enumerate(positions):
        if n < len(topups):
            month.type[pos] = _TOPUP
            month.model[pos] = _NONE
            month.payment[pos] = rng.choices(range(len(PAYMENT_METHODS)), weights=_PAYMENT_WEIGHTS)[0]
            month.amount[pos] = amounts.add(topups[n][0])
            month.status[pos] = topups[n][1]
        else:
            month.type[pos] = _REFUND
            month.amount[pos] = amounts.add(MODELS[month.model[pos]][1])  # one task's price back
    _append_month(ym, month, amounts, columns)


def _generate_edges(
    rng: random.Random, ym: tuple[int, int], instants: list[int], amounts: _AmountTable, columns: _Columns
) -> None:
    """Completed usage records at the given instants of a month that is not generated."""
    models = rng.choices(range(len(MODELS)), weights=[w for _, _, w in MODELS], k=len(instants))
    month = _Month(
        ts=instants,
        type=[_USAGE] * len(instants),
        status=[_COMPLETED] * len(instants),
        model=models,
        payment=[_NONE] * len(instants),
        amount=[_usage_amount(amounts, m, 1) for m in models],
    )
    _append_month(ym, month, amounts, columns)


def _usage_amount(amounts: _AmountTable, model: int, multiplier: int) -> int:
    price = Decimal(MODELS[model][1])
    return amounts.add("-" + _decimal_text(price * multiplier))


def dataset_from_records(
    records: Iterable[Record], months: tuple[str, ...], seed: int | str, opening_balance: Decimal,
    reversals: Mapping[str, int] | None = None,
) -> Dataset:
    """A dataset holding exactly ``records`` (any order; served newest first); ``reversals`` as
    :attr:`Dataset.reversals`; records in another currency than USD are kept in :attr:`Dataset.currencies`."""
    amounts, columns = _AmountTable(), _Columns()
    ordered = sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)
    for record in ordered:
        columns.ts.append((record.created_at - _EPOCH) // _MS)
        columns.type.append(TYPES.index(record.type))
        columns.status.append(STATUSES.index(record.status))
        columns.model.append(_NONE if record.model is None else MODEL_NAMES.index(record.model))
        columns.payment.append(_NONE if record.payment_method is None else PAYMENT_METHODS.index(record.payment_method))
        columns.amount.append(amounts.add(_decimal_text(record.amount)))
        columns.blob += (record_json(record) + ",").encode("ascii")
        columns.offsets.append(len(columns.blob))
    currencies = {record.id: record.currency for record in ordered if record.currency != CURRENCY}
    return Dataset(months, seed, columns, amounts, opening_balance, reversals, currencies)


def _append_month(ym: tuple[int, int], month: _Month, amounts: _AmountTable, columns: _Columns) -> None:
    """Serialise a month newest first; ids number the month's records in chronological order."""
    prefix = f'{{"id":"txn_{ym[0]:04d}{ym[1]:02d}'
    middles: dict[tuple[int, int, int, int, int], str] = {}
    days: dict[int, str] = {}
    blob, offsets = columns.blob, columns.offsets
    for i in range(len(month.ts) - 1, -1, -1):
        key = (month.type[i], month.amount[i], month.status[i], month.model[i], month.payment[i])
        middle = middles.get(key)
        if middle is None:
            middle = middles[key] = _middle(key, amounts)
        day, ms = divmod(month.ts[i], _DAY_MS)
        day_text = days.get(day)
        if day_text is None:
            day_text = days[day] = (_EPOCH + timedelta(days=day)).strftime('"%Y-%m-%dT')
        hours, ms = divmod(ms, 3_600_000)
        minutes, ms = divmod(ms, 60_000)
        seconds, ms = divmod(ms, 1000)
        blob += (
            f'{prefix}{i + 1:07d}",{middle}{day_text}{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}Z"}},'
        ).encode("ascii")
        offsets.append(len(blob))
    columns.ts.extend(reversed(month.ts))
    columns.type.extend(reversed(month.type))
    columns.status.extend(reversed(month.status))
    columns.model.extend(reversed(month.model))
    columns.payment.extend(reversed(month.payment))
    columns.amount.extend(reversed(month.amount))


def _middle(key: tuple[int, int, int, int, int], amounts: _AmountTable) -> str:
    """The fields between ``id`` and ``created_at``'s value, shared by many records."""
    type_, amount, status, model, payment = key
    text = (
        f'"type":"{TYPES[type_]}","amount":{amounts.texts[amount]},'
        f'"currency":"{CURRENCY}","status":"{STATUSES[status]}",'
    )
    if payment != _NONE:
        text += f'"payment_method":"{PAYMENT_METHODS[payment]}",'
    if model != _NONE:
        text += f'"model":"{MODEL_NAMES[model]}",'
    return text + '"created_at":'


def _expected_task_cost() -> Decimal:
    total_weight = sum(w for _, _, w in MODELS)
    mean_price = sum((Decimal(p) * w for _, p, w in MODELS), Decimal(0)) / total_weight
    mean_multiplier = Decimal(sum(m * w for m, w in zip(_MULTIPLIERS, _MULTIPLIER_WEIGHTS))) / sum(
        _MULTIPLIER_WEIGHTS
    )
    return mean_price * mean_multiplier


_EXPECTED_TASK_COST = _expected_task_cost()


# -- small helpers ---------------------------------------------------------------------


def _parse_month(text: str) -> tuple[int, int]:
    match = _MONTH_RE.match(text)
    if not match or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"month must look like 2024-01, got {text!r}")
    return int(match[1]), int(match[2])


def _shift(ym: tuple[int, int], months: int) -> tuple[int, int]:
    index = ym[0] * 12 + ym[1] - 1 + months
    return index // 12, index % 12 + 1


def _month_start_ms(ym: tuple[int, int]) -> int:
    return (datetime(ym[0], ym[1], 1, tzinfo=timezone.utc) - _EPOCH) // _MS


def _day_start_ms(day: date | None) -> int | None:
    if day is None:
        return None
    return (datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - _EPOCH) // _MS


def _day_end_ms(day: date | None) -> int | None:
    """First instant after the inclusive last ``day``."""
    start = _day_start_ms(day)
    return None if start is None else start + _DAY_MS


def _negate(value: int) -> int:
    return -value


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _decimal_text(value: Decimal) -> str:
    """Plain decimal text (no exponent), the exact value."""
    return format(value, "f")
