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
charged leaves no billing record). ``completed`` -> order ``done``, ``pending`` -> ``pre``. A
charge reversed after it completed (an as-of view's reversals) is served as the charge plus a
``refund`` created when the credit was given back (:func:`.items.current_dataset`); the balance
and ``usage_stats`` are those of what is served: the refund adds the credit back, and the charge
stays usage of its day.
Items are formatted per page from the dataset's columns: no second copy of a million records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .data import MODELS
from .items import BILLING_TYPES, View, Window, current_dataset, view_of, warm  # noqa: F401 (warm: for the server)
from .wire import BadParam, Response, Route, envelope, millis

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
    if billing_type is not None and billing_type not in BILLING_TYPES:
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
    """The balance (top-ups included), without a currency field: USD is documented. The legacy
    generation's figure: a reversal's refund gives back exactly what the reversal did."""
    shown = current_dataset(server.dataset)
    return envelope(200, "success", {"balance": shown.balance + Decimal(server.faults.balance_skew)})


def usage_stats(server: SandboxServer, body: dict[str, Any]) -> Response:
    """Completed usage per model and per UTC day, positive spend rounded half up to 3 decimals.

    The days are those of ``start_time`` to ``end_time`` (an ``end_time`` at midnight ends the
    day before), so ``…T00:00:00Z`` to ``…T23:59:59Z`` covers whole days, as the vendor's example.
    ``total_requests`` counts usage tasks of every status, ``success_requests`` the completed ones.
    A charge later given back (a refund served for it) still counts as usage of its day, as the
    ``deduct`` served for it does; the refund is not usage.
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
    shown = current_dataset(server.dataset)
    days = shown.usage_by_day(first, last)
    tried = shown.usage_by_day(first, last, status=None)
    if model is not None:
        days = {d: {m: u for m, u in ms.items() if m == model} for d, ms in days.items()}
        tried = {d: {m: u for m, u in ms.items() if m == model} for d, ms in tried.items()}
    days = {d: ms for d, ms in days.items() if ms}
    spent = sum((u.cost for ms in days.values() for u in ms.values()), Decimal(0))
    skew = {m: Decimal(v) for m, v in server.faults.usage_skew.items() if model is None or m == model}
    data = {
        "per_model_usage": _per_model(days, skew),
        "daily_usage": _daily(days, skew),
        "summary": {
            "total_cost": millis(spent + sum(skew.values(), Decimal(0))),
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


def _page(server: SandboxServer, view: View, window: Window, page: int, size: int, ascending: bool,
          price_sign: str, pagination: str) -> Response:
    """One page of ``window`` with the paging faults applied, as the envelope's bytes."""
    faults = server.faults
    first = 0 if faults.ignore_page else (page - 1) * size
    ranks: Sequence[int] = window.page(first, size, ascending) if first < len(window) else ()
    if faults.duplicate_across_pages and page > 1 and ranks and not faults.ignore_page:
        ranks = [window.at(first - 1, ascending), *ranks]  # as if a new record had shifted the offsets
    items = view.items_json(ranks, price_sign, faults.key_id_field, faults.malformed, faults.absurd_price)
    server.count_served(len(ranks))
    total = len(window) if faults.wrong_total is None else faults.wrong_total
    if pagination not in ("total", "has_more", "both"):
        raise ValueError(f"Faults.pagination must be total, has_more or both, not {pagination!r}")
    head = f'{{"code":200,"message":"success","data":{{"page":{page},'
    if pagination != "has_more":
        head += f'"total":{total},'
    if pagination != "total":
        head += f'"has_more":{"true" if first + size < len(window) else "false"},'
    return Response(200, head.encode("ascii") + b'"items":[' + items + b"]}}")


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


ROUTES: dict[str, Route] = {
    SEARCH: ("POST", search, True),
    SCHEDULER: ("POST", scheduler_query, True),
    BALANCE: ("GET", balance, False),
    USAGE_STATS: ("POST", usage_stats, False),
}
