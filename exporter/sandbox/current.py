"""The current generation of the WaveSpeedAI account API, served from the same dataset as the legacy one.

Stdlib only. :mod:`.server` routes to these handlers (``api="current"`` or ``"both"``):

- ``POST /api/v3/billings/search``: body ``page``, ``page_size`` (1-100), ``billing_type``
  (``deduct``/``refund``), ``start_time`` (inclusive), ``end_time`` (exclusive), ``sort``
  (``created_at DESC``/``ASC``), ``prediction_uuids``; data ``{page, total, items}``
- ``POST /api/v3/scheduler/billings/query``: body ``year_month``, ``page``, ``page_size``
  (1-1000); a month oldest first, deducts priced negative, at most its first 100,000 records
- ``GET /api/v3/balance``: data ``{balance}`` (USD, no currency field)
- ``POST /api/v3/user/usage_stats``: body ``start_time``, ``end_time`` (ISO 8601, at most 31
  days), ``model_uuid``; data ``{per_model_usage, daily_usage, summary}``, 3 decimals

One item, derived from a legacy record of the dataset (same id; key order fixed)::

    {"uuid":"txn_2024010000123","billing_type":"deduct","price":0.0025,
     "created_at":"2024-01-15T10:30:00.123Z","updated_at":"2024-01-15T10:30:04.123Z",
     "order":{"uuid":"ord_2024010000123","state":"done","price":0.0025,"origin_price":0.0025,
              "status":1,"ak_id":"ak_…"},
     "prediction":{"uuid":"pred_2024010000123","model_uuid":"wavespeed-ai/sdxl","status":"completed"},
     "access_key_name":"prod-app","access_key_id":"ak_…"}

Legacy ``usage`` -> ``deduct``, ``refund`` -> ``refund``; top-ups are not served (the current API
lists none: they only move the balance), nor failed records (a task that fails before it is
charged leaves no billing record). ``completed`` -> order ``done``, ``pending`` -> ``pre``.
Items are formatted per page from the dataset's columns: no second copy of a million records.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .data import MODEL_NAMES, MODELS, STATUSES, TYPES, Dataset
from .wire import BadParam, Response, envelope, json_text, millis

if TYPE_CHECKING:
    from .server import SandboxServer

SEARCH = "/api/v3/billings/search"
SCHEDULER = "/api/v3/scheduler/billings/query"
BALANCE = "/api/v3/balance"
USAGE_STATS = "/api/v3/user/usage_stats"
DEFAULT_PAGE_SIZE = 20
SEARCH_MAX_PAGE_SIZE = 100
SCHEDULER_MAX_PAGE_SIZE = 1000
SCHEDULER_CAP = 100_000  # records of one month the scheduler query ever serves
USAGE_MAX_RANGE = timedelta(days=31)
ABSURD_PRICE = "24300"  # a documentation example's number where USD is documented

# (name, share out of 10, id): every record gets one, from a stable hash of its id
API_KEYS = (
    ("prod-app", 7, "ak_7f3c2a91d04e4b6f8a1c5e2d"),
    ("staging", 2, "ak_b81e06c3f5a2479d9e0c4a17"),
    ("client-acme", 1, "ak_0d9a4e7c21b3485f96ea3c08"),
)
_KEY_OF_BUCKET = tuple(k for k, (_, share, _) in enumerate(API_KEYS) for _ in range(share))

_USAGE, _REFUND = TYPES.index("usage"), TYPES.index("refund")
_COMPLETED, _PENDING = STATUSES.index("completed"), STATUSES.index("pending")
_BILLING_TYPES = {"deduct": _USAGE, "refund": _REFUND}
_SORTS = ("created_at DESC", "created_at ASC")
_DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_VIDEO = ("kling", "seedance", "wan-", "hailuo", "veo", "pixverse", "ray-", "vidu")


# -- endpoints ---------------------------------------------------------------------------


def search(server: SandboxServer, body: dict[str, Any]) -> Response:
    """A page of billing records, filtered and sorted as asked; see the module docstring."""
    faults = server.faults
    page = _int_field(body, "page", 1)
    asked = _int_field(body, "page_size", DEFAULT_PAGE_SIZE)
    if asked > SEARCH_MAX_PAGE_SIZE:
        raise BadParam(f"invalid page_size {asked}: expected 1 to {SEARCH_MAX_PAGE_SIZE}")
    billing_type = body.get("billing_type") or None
    if billing_type is not None and billing_type not in _BILLING_TYPES:
        raise BadParam(f"invalid billing_type {billing_type!r}: expected deduct or refund")
    sort = body.get("sort") or _SORTS[0]
    if sort not in _SORTS:
        raise BadParam(f"invalid sort {sort!r}: expected one of {', '.join(_SORTS)}")
    start = _instant(body, "start_time", faults.time_form)
    end = _instant(body, "end_time", faults.time_form)
    view = view_of(server.dataset)
    window = view.window(billing_type, start, end)
    uuids = body.get("prediction_uuids")
    if uuids is not None:
        window = window.only(view, _prediction_ids(uuids))
    if faults.arrivals and server.billings_answered() <= faults.arrive_after:
        window = window.without_newest(faults.arrivals)
    return _page(server, view, window, page, max(1, min(asked, faults.page_cap)), sort == "created_at ASC",
                 faults.price_sign, faults.pagination)


def scheduler_query(server: SandboxServer, body: dict[str, Any]) -> Response:
    """One UTC month, oldest first, at most its first :data:`SCHEDULER_CAP` records."""
    faults = server.faults
    text = body.get("year_month")
    match = _YEAR_MONTH.match(text) if isinstance(text, str) else None
    if match is None or not 1 <= int(match[2]) <= 12:
        raise BadParam(f"invalid year_month {text!r}: expected YYYY-MM")
    page = _int_field(body, "page", 1)
    size = _int_field(body, "page_size", DEFAULT_PAGE_SIZE)
    if size > SCHEDULER_MAX_PAGE_SIZE:
        raise BadParam(f"invalid page_size {size}: expected 1 to {SCHEDULER_MAX_PAGE_SIZE}")
    year, month = int(match[1]), int(match[2])
    first = datetime(year, month, 1, tzinfo=timezone.utc)
    after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    view = view_of(server.dataset)
    window = view.window(None, _ms(first), _ms(after))
    if faults.arrivals and server.billings_answered() <= faults.arrive_after:
        window = window.without_newest(faults.arrivals)
    return _page(server, view, window.oldest(SCHEDULER_CAP), page, size, True, "signed", "total")


def balance(server: SandboxServer, body: dict[str, Any]) -> Response:
    """The legacy balance (top-ups included), without a currency field: USD is documented."""
    return envelope(200, "success", {"balance": server.dataset.balance + Decimal(server.faults.balance_skew)})


def usage_stats(server: SandboxServer, body: dict[str, Any]) -> Response:
    """Completed usage per model and per UTC day, positive spend rounded half up to 3 decimals.

    The days are those of ``start_time`` to ``end_time`` (an ``end_time`` at midnight ends the
    day before), so ``…T00:00:00Z`` to ``…T23:59:59Z`` covers whole days, as the vendor's example.
    ``total_requests`` counts usage tasks of every status, ``success_requests`` the completed ones.
    """
    start, end = _instant(body, "start_time", "rfc3339", True), _instant(body, "end_time", "rfc3339", True)
    assert start is not None and end is not None
    if end < start:
        raise BadParam("end_time is before start_time")
    if end - start > USAGE_MAX_RANGE // timedelta(milliseconds=1):
        raise BadParam("time range exceeds 31 days")
    first = (_EPOCH + timedelta(milliseconds=start)).date()
    last = (_EPOCH + timedelta(milliseconds=end - (1 if end % _DAY_MS == 0 and end > start else 0))).date()
    model = body.get("model_uuid") or None
    days = server.dataset.usage_by_day(first, last)
    tried = server.dataset.usage_by_day(first, last, status=None)
    if model is not None:
        days = {d: {m: u for m, u in ms.items() if m == model} for d, ms in days.items()}
        tried = {d: {m: u for m, u in ms.items() if m == model} for d, ms in tried.items()}
    days = {d: ms for d, ms in days.items() if ms}
    skew = {m: Decimal(v) for m, v in server.faults.usage_skew.items() if model is None or m == model}
    data = {
        "per_model_usage": _per_model(days, skew),
        "daily_usage": _daily(days, skew),
        "summary": {
            "total_cost": millis(sum((u.cost for ms in days.values() for u in ms.values()), sum(skew.values(), Decimal(0)))),
            "total_requests": sum(u.requests for ms in tried.values() for u in ms.values()),
            "success_requests": sum(u.requests for ms in days.values() for u in ms.values()),
        },
    }
    return envelope(200, "success", data)


# -- usage_stats rows ----------------------------------------------------------------------


def _per_model(days: dict[date, dict[str, Any]], skew: dict[str, Decimal]) -> list[dict[str, Any]]:
    rows: dict[str, list[Any]] = {}  # model -> [count, cost, last day]
    for day, models in days.items():
        for name, usage in models.items():
            row = rows.setdefault(name, [0, Decimal(0), None])
            row[0], row[1], row[2] = row[0] + usage.requests, row[1] + usage.cost, day
    for name, amount in skew.items():
        rows.setdefault(name, [0, Decimal(0), None])[1] += amount
    return [
        {"model_uuid": name, "model_type": model_type(name), "unit_price": _unit_price(name),
         "total_cost": millis(cost), "total_count": count, "last_used_date": last and last.isoformat()}
        for name, (count, cost, last) in sorted(rows.items(), key=lambda kv: (-kv[1][1], kv[0]))
    ]


def _daily(days: dict[date, dict[str, Any]], skew: dict[str, Decimal]) -> list[dict[str, Any]]:
    """One row per UTC day with usage, ascending; the skew lands on the first day listed."""
    rows = []
    for n, (day, models) in enumerate(days.items()):
        costs = {name: [u.requests, u.cost] for name, u in models.items()}
        for name, amount in skew.items() if n == 0 else ():
            costs.setdefault(name, [0, Decimal(0)])[1] += amount
        ordered = sorted(costs.items(), key=lambda kv: (-kv[1][1], kv[0]))
        rows.append({
            "date": day.isoformat(),
            "amount": millis(sum((c for _, c in costs.values()), Decimal(0))),
            "count": sum(k for k, _ in costs.values()),
            "models": [{"model_uuid": m, "amount": millis(c), "count": k} for m, (k, c) in ordered],
        })
    return rows


def model_type(name: str) -> str:
    """A plausible ``model_type`` from the model's name (the sandbox knows no catalogue)."""
    if any(part in name for part in _VIDEO):
        return "text-to-video"
    if "speech" in name:
        return "text-to-audio"
    if "esrgan" in name:
        return "image-upscaler"
    return "image-to-image" if "kontext" in name else "text-to-image"


def _unit_price(name: str) -> Decimal | None:
    return next((Decimal(price) for model, price, _ in MODELS if model == name), None)


# -- pages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """Served records ``seq[lo:hi]`` (ranks into :attr:`View.served`), newest first; a page
    reads it in either direction."""

    seq: Sequence[int]
    lo: int
    hi: int

    def __len__(self) -> int:
        return self.hi - self.lo

    def at(self, k: int, ascending: bool) -> int:
        return self.seq[self.hi - 1 - k] if ascending else self.seq[self.lo + k]

    def page(self, first: int, size: int, ascending: bool) -> Sequence[int]:
        if not ascending:
            return self.seq[self.lo + first : min(self.hi, self.lo + first + size)]
        stop = self.hi - first
        if stop <= self.lo:
            return ()
        return self.seq[max(self.lo, stop - size) : stop][::-1]

    def without_newest(self, n: int) -> Window:
        return Window(self.seq, min(self.hi, self.lo + n), self.hi)

    def oldest(self, n: int) -> Window:
        return Window(self.seq, max(self.lo, self.hi - n), self.hi)

    def only(self, view: View, ids: set[str]) -> Window:
        record_id, served = view.dataset.record_id, view.served
        kept = array("l", [k for k in self.seq[self.lo : self.hi] if record_id(served[k]) in ids])
        return Window(kept, 0, len(kept))


def _page(server: SandboxServer, view: View, window: Window, page: int, size: int, ascending: bool,
          price_sign: str, pagination: str) -> Response:
    """One page of ``window`` with the paging faults applied, as the envelope's bytes."""
    faults = server.faults
    first = 0 if faults.ignore_page else (page - 1) * size
    ranks: Sequence[int] = window.page(first, size, ascending) if first < len(window) else ()
    if faults.duplicate_across_pages and page > 1 and ranks and not faults.ignore_page:
        ranks = [window.at(first - 1, ascending), *ranks]  # as if a new record had shifted the offsets
    items = view.items_json(ranks, price_sign, faults.key_id_field, faults.malformed, faults.absurd_price)
    total = len(window) if faults.wrong_total is None else faults.wrong_total
    if pagination not in ("total", "has_more", "both"):
        raise ValueError(f"Faults.pagination must be total, has_more or both, not {pagination!r}")
    head = f'{{"code":200,"message":"success","data":{{"page":{page},'
    if pagination != "has_more":
        head += f'"total":{total},'
    if pagination != "total":
        head += f'"has_more":{"true" if first + size < len(window) else "false"},'
    return Response(200, head.encode("ascii") + b'"items":[' + items + b"]}}")


# -- items ---------------------------------------------------------------------------------


class View:
    """What the current API serves of one dataset: the dataset positions of its served records
    (newest first; a record's rank in :attr:`served` indexes everything else), their times
    negated for bisecting, the ranks of each billing type, and the items' JSON text.

    The items' text is built once per dataset and fault variant (price sign, key field), as one
    blob like the legacy one: a page is then a slice of it, and a walk of a million records
    costs about what the legacy walk costs. Building it is the price of the first request
    (about 5 us a record)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.columns = columns = dataset.columns()
        self._lock = threading.Lock()
        self.served = array("l", [
            i for i, (t, s) in enumerate(zip(columns.type, columns.status))
            if (t == _USAGE or t == _REFUND) and (s == _COMPLETED or s == _PENDING)
        ])
        negated = array("q", [-columns.ts[i] for i in self.served])
        self._ranks: dict[str | None, tuple[Sequence[int], array]] = {None: (range(len(self.served)), negated)}
        self._blobs: dict[tuple[str, str], tuple[bytes, array]] = {}
        self._parts: dict[tuple[str, str], dict[tuple[int, ...], tuple[str, str, str]]] = {}
        self._days: dict[int, str] = {}

    def window(self, billing_type: str | None, start_ms: int | None, end_ms: int | None) -> Window:
        """Served records with ``start_ms <= created_at < end_ms``, newest first."""
        ranks, negated = self._ranks_of(billing_type)
        lo = 0 if end_ms is None else bisect_right(negated, -end_ms)
        hi = len(ranks) if start_ms is None else bisect_right(negated, -start_ms)
        return Window(ranks, lo, max(lo, hi))

    def _ranks_of(self, billing_type: str | None) -> tuple[Sequence[int], array]:
        with self._lock:
            found = self._ranks.get(billing_type)
            if found is None:
                code, (_, negated) = _BILLING_TYPES[billing_type or ""], self._ranks[None]
                types, served = self.columns.type, self.served
                keep = array("l", [k for k, i in enumerate(served) if types[i] == code])
                found = self._ranks[billing_type] = keep, array("q", [negated[k] for k in keep])
            return found

    def items_json(self, ranks: Sequence[int], price_sign: str, key_field: str,
                   malformed: dict[str, str] | None, absurd: str | None) -> bytes:
        """The items of the served records ``ranks`` as the inside of a JSON array."""
        blob, offsets = self._blob(price_sign, key_field)
        if malformed or absurd:
            return ",".join(self._damaged_item(k, price_sign, key_field, malformed or {}, absurd)
                            for k in ranks).encode("utf-8")
        if isinstance(ranks, range) and ranks.step == 1:
            # neighbours are neighbours in the blob: one slice, commas included
            return blob[offsets[ranks.start] : offsets[ranks.stop] - 1] if ranks else b""
        return b",".join([blob[offsets[k] : offsets[k + 1] - 1] for k in ranks])

    def _damaged_item(self, k: int, price_sign: str, key_field: str, malformed: dict[str, str],
                      absurd: str | None) -> str:
        record_id, text = self.item(self.served[k], price_sign, key_field)
        if record_id in malformed or record_id == absurd:
            return _damaged(text, malformed.get(record_id), record_id == absurd, price_sign)
        return text

    def _blob(self, price_sign: str, key_field: str) -> tuple[bytes, array]:
        """Every served item's text followed by a comma, and where each starts (built once)."""
        with self._lock:
            found = self._blobs.get((price_sign, key_field))
            if found is None:
                c = self.columns
                texts = self._texts(self.served, price_sign, key_field, c.blob.decode("utf-8"), 0)
                blob = "".join(texts).encode("utf-8")
                lengths = (len(t) for t in texts) if blob.isascii() else (len(t.encode("utf-8")) for t in texts)
                offsets = array("q", [0])
                offsets.extend(accumulate(lengths))
                found = self._blobs[(price_sign, key_field)] = blob, offsets
            return found

    def item(self, i: int, price_sign: str, key_field: str) -> tuple[str, str]:
        """(record id, item JSON text) of dataset position ``i``."""
        c = self.columns
        line = c.blob[c.offsets[i] : c.offsets[i + 1]].decode("utf-8")
        return self.dataset.record_id(i), self._texts([i], price_sign, key_field, line, c.offsets[i])[0][:-1]

    def _texts(self, positions: Sequence[int], price_sign: str, key_field: str, legacy: str, base: int) -> list[str]:
        """The item texts (each followed by a comma) of the records at ``positions``, whose legacy
        JSON text ``legacy`` holds from blob offset ``base`` on.

        The id and ``created_at`` are read from the legacy text (its first and last fields), and
        ``updated_at`` is ``created_at`` plus 2 to 4 seconds, computed on the text: this loop
        runs once per record of a million-record dataset, so no datetime and no dict per item."""
        c = self.columns
        offsets, types, statuses, models, amounts, stamps = c.offsets, c.type, c.status, c.model, c.amount, c.ts
        parts_of = self._parts.setdefault((price_sign, key_field), {})
        crc, buckets = zlib.crc32, _KEY_OF_BUCKET
        out: list[str] = []
        append = out.append
        for i in positions:
            line = legacy[offsets[i] - base : offsets[i + 1] - base - 1]
            rid = line[7 : line.index('"', 7)]
            created = line[-26:-2]
            shape = (types[i], statuses[i], models[i], amounts[i], buckets[crc(rid.encode()) % 10])
            parts = parts_of.get(shape) or self._make_parts(shape, price_sign, key_field)
            seconds = int(created[17:19]) + 2 + stamps[i] % 3
            updated = (created[:17] + f"{seconds:02d}" + created[19:] if seconds < 60
                       else self._stamp(stamps[i] + (seconds - int(created[17:19])) * 1000))
            tail = rid[4:] if rid.startswith("txn_") else rid
            append(
                f'{{"uuid":"{rid}",{parts[0]}"created_at":"{created}","updated_at":"{updated}",'
                f'"order":{{"uuid":"ord_{tail}",{parts[1]}"prediction":{{"uuid":"pred_{tail}",{parts[2]},'
            )
        return out

    def _stamp(self, ms: int) -> str:
        """``2024-01-15T10:30:00.123Z`` without strftime (once a minute or so it is needed)."""
        day, ms = divmod(ms, _DAY_MS)
        text = self._days.get(day)
        if text is None:
            text = self._days[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        hours, ms = divmod(ms, 3_600_000)
        minutes, ms = divmod(ms, 60_000)
        seconds, ms = divmod(ms, 1000)
        return f"{text}{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}Z"

    def _make_parts(self, shape: tuple[int, int, int, int, int], price_sign: str, key_field: str) -> tuple[str, str, str]:
        """The texts shared by every item of one shape (type, status, model, amount, key),
        between the per-record fields."""
        type_, status, model, amount, key = shape
        deduct = type_ == _USAGE
        price = _price_text(self.columns.amount_texts[amount], deduct, price_sign)
        name, _, key_id = API_KEYS[key]
        done = status == _COMPLETED
        outcome = "processing" if not done else ("completed" if deduct else "failed")
        model_text = "null" if model < 0 else f'"{MODEL_NAMES[model]}"'
        parts = (
            f'"billing_type":"{"deduct" if deduct else "refund"}","price":{price},',
            f'"state":"{"done" if done else "pre"}","price":{price},"origin_price":{price},'
            f'"status":{1 if done else 0},"ak_id":"{key_id}"}},',
            f'"model_uuid":{model_text},"status":"{outcome}"}},'
            f'"access_key_name":"{name}","{key_field}":"{key_id}"}}',
        )
        self._parts[(price_sign, key_field)][shape] = parts
        return parts


def _price_text(signed: str, deduct: bool, price_sign: str) -> str:
    """The item's price from the legacy signed amount text, per :attr:`Faults.price_sign`."""
    positive = signed.lstrip("-")
    if price_sign == "positive":
        return positive
    if price_sign == "negative" or (price_sign == "signed" and deduct):
        return "-" + positive
    if price_sign == "signed":
        return positive
    raise ValueError(f"Faults.price_sign must be positive, negative or signed, not {price_sign!r}")


def _damaged(text: str, broken: str | None, absurd: bool, price_sign: str) -> str:
    """An item with the ``malformed`` fault (``price`` -> "abc", ``created_at`` -> "not-a-date",
    any other top-level field dropped) or the ``absurd_price`` fault applied."""
    item = json.loads(text, parse_float=Decimal)
    if absurd:
        price = _price_text(ABSURD_PRICE, item["billing_type"] == "deduct", price_sign)
        item["price"] = item["order"]["price"] = item["order"]["origin_price"] = Decimal(price)
    if broken in ("price", "amount"):
        item["price"] = "abc"
    elif broken == "created_at":
        item["created_at"] = "not-a-date"
    elif broken is not None:
        item.pop(broken, None)
    return json_text(item)


def warm(dataset: Dataset) -> None:
    """Build the dataset's view and the default items' blob now: a server serving the current
    API does it when it starts, so no client's first request waits seconds for a big dataset
    (nor do its concurrent requests queue behind that one)."""
    view_of(dataset)._blob("positive", "access_key_id")


_VIEWS: dict[int, tuple[weakref.ref[Dataset], View]] = {}
_VIEWS_LOCK = threading.Lock()


def view_of(dataset: Dataset) -> View:
    """The dataset's :class:`View`, built once (a benchmark walks a million records through it)."""
    with _VIEWS_LOCK:
        found = _VIEWS.get(id(dataset))
        if found is not None and found[0]() is dataset:
            return found[1]
        if len(_VIEWS) >= 8:
            _VIEWS.clear()
        view = View(dataset)
        _VIEWS[id(dataset)] = weakref.ref(dataset), view
        return view


# -- fields --------------------------------------------------------------------------------


def _int_field(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadParam(f"invalid {name} {value!r}: expected a whole number >= 1")
    return value


def _instant(body: dict[str, Any], name: str, form: str, required: bool = False) -> int | None:
    """Milliseconds since the epoch from ms (a digit string or a JSON integer) or an RFC 3339
    instant, as ``form`` (:attr:`Faults.time_form`: both, ms, rfc3339) allows."""
    if form not in ("both", "ms", "rfc3339"):
        raise ValueError(f"Faults.time_form must be both, ms or rfc3339, not {form!r}")
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise BadParam(f"missing {name}")
        return None
    digits = (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, str) and value.isascii() and value.isdigit())
    if digits and form != "rfc3339":
        return int(value)
    if isinstance(value, str) and not digits and form != "ms" and _RFC3339.match(value):
        try:
            return _ms(datetime.fromisoformat(value))
        except ValueError:
            pass
    raise BadParam(f"invalid {name}")


def _ms(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(milliseconds=1)


def _prediction_ids(uuids: Any) -> set[str]:
    """Record ids of the predictions asked (``pred_X`` is the prediction of record ``txn_X``)."""
    if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
        raise BadParam("invalid prediction_uuids: expected a list of strings")
    return {name for u in uuids if u.startswith("pred_") for name in ("txn_" + u[5:], u[5:])}


ROUTES = {
    SEARCH: ("POST", search, True),
    SCHEDULER: ("POST", scheduler_query, True),
    BALANCE: ("GET", balance, False),
    USAGE_STATS: ("POST", usage_stats, False),
}
"""Path -> (method, handler, counted with the billings requests for the "every Nth" faults)."""
