"""The two generations of the vendor's billing API behind one interface (docs/api.md).

``legacy``: ``GET /api/v3/account/billings``, whole days as ``start_date``/``end_date``, a
``pagination`` object, records already in the shape the exporter books.

``current``: ``POST /api/v3/billings/search``, a JSON body with instants as ``start_time``/
``end_time``, ``data {page, total | has_more, items}``, records (``uuid``, ``billing_type``,
``price``, ``order``, ``prediction``, ``access_key_name``) mapped here, once, onto the canonical
record, so everything after extraction (validation, the archive, the books) sees one shape.

A :class:`Generation` is chosen once per run by :func:`detect` (current first, legacy when the
current path is not there) and passed to every later call of the run, with what it learned
(the time form the server takes).
"""

from __future__ import annotations

import copy

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..config import ApiChoice
from ..errors import ApiError, DataError
from ..period import Window
from .endpoints import ABSENT_STATUSES, BILLINGS_PATH, SEARCH_PATH
from .jsonexact import is_number
from .paginators import MAX_RECORDS, count, page_info, page_items

if TYPE_CHECKING:  # the HTTP client loads requests: only a run that calls the API imports it (pipeline._client)
    from .client import BillingClient


CURRENT_MAX_PAGE_SIZE = 100  # documented range of page_size: 1-100
# One task's price above this is not a plausible USD amount (the priciest video models cost a few
# dollars a task); a doc example shows 24300 where USD is documented. docs/api.md, "Prices".
MAX_TASK_PRICE = Decimal(1000)
_STATES = {"pre": "pending", "done": "completed"}  # order.state -> status (docs/api.md)
_TYPES = {"deduct": "usage", "refund": "refund"}  # billing_type -> type
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Page:
    """One page of canonical records; ``info.total`` is None when the server only says ``has_more``."""

    items: list[Any]
    total: int | None
    page_size: int  # as served, which may be less than asked
    has_more: bool | None = None

    @property
    def page_count(self) -> int | None:
        if self.total is None:
            return None
        return -(-self.total // self.page_size) if self.total > 0 else 0


class Generation(Protocol):
    name: str
    billings_path: str
    max_page_size: int

    def page(self, client: BillingClient, window: Window, number: int, page_size: int) -> Page: ...

    def query(self, window: Window) -> dict[str, Any]: ...

    def filtered(self, record_type: str) -> Generation: ...

    def continuing(self, walked: Window) -> Generation: ...


OTHER_TYPE_FILTERS: dict[str, tuple[str, ...]] = {"legacy": ("topup", "refund"), "current": ("refund",)}
"""The record types other than usage each generation's billing query is asked for by its type
filter (docs/booking.md, "Finding late changes"): legacy ``type`` (``topup`` documented,
``refund`` as served), current ``billing_type`` (``refund``; the current API lists no top-ups)."""


class LegacyApi:
    """``GET /api/v3/account/billings``: records as they are booked, days padded for any zone."""

    name = "legacy"
    billings_path = BILLINGS_PATH
    max_page_size = 1000
    record_type: str | None = None  # the ``type`` filter (docs/api.md), None: every type
    walked: Window | None = None  # a window whose walk asked for the days before (:meth:`continuing`)

    def query(self, window: Window) -> dict[str, Any]:
        params = window.query_params()
        if self.walked is not None:
            after_walked = date.fromisoformat(self.walked.query_params()["end_date"]) + timedelta(days=1)
            params["start_date"] = max(date.fromisoformat(params["start_date"]), after_walked).isoformat()
        return params | ({"type": self.record_type} if self.record_type else {})

    def filtered(self, record_type: str) -> LegacyApi:
        """This generation asking only for records of ``record_type`` (a canonical type)."""
        twin = copy.copy(self)
        twin.record_type = record_type
        return twin

    def continuing(self, walked: Window) -> LegacyApi:
        """This generation asking, for a later window, only the days a walk of ``walked`` did not
        ask for (that walk's records hold the rest: docs/booking.md, "Roll-forward")."""
        twin = copy.copy(self)
        twin.walked = walked
        return twin

    def page(self, client: BillingClient, window: Window, number: int, page_size: int) -> Page:
        data = _data_object(client.get_data(self.billings_path, {**self.query(window), "page": number,
                                                                  "page_size": page_size}), self, number)
        info = page_info(data)
        return Page(page_items(data, number), info.total, info.page_size)


class CurrentApi:
    """``POST /api/v3/billings/search``, oldest first (records arriving while paging land at the end).

    Times are sent as documented (milliseconds since the epoch, as strings); a server that
    refuses them (400) is asked again with RFC 3339 instants, and that form is kept for the run.
    """

    name = "current"
    billings_path = SEARCH_PATH
    max_page_size = CURRENT_MAX_PAGE_SIZE

    def __init__(self, time_form: Literal["ms", "rfc3339"] = "ms") -> None:
        self.time_form = time_form
        self.billing_type: str | None = None  # the ``billing_type`` filter, None: every type
        self.walked: Window | None = None  # a window whose walk asked for the instants before (:meth:`continuing`)

    def query(self, window: Window) -> dict[str, Any]:
        """The instants asked for: the window and the provider's UTC days (reconciliation needs both)."""
        start, end = _span(window)
        if self.walked is not None:
            start = max(start, _span(self.walked)[1])
        return {"start_time": _instant(start, self.time_form), "end_time": _instant(end, self.time_form),
                "sort": "created_at ASC"} | ({"billing_type": self.billing_type} if self.billing_type else {})

    def filtered(self, record_type: str) -> CurrentApi:
        """This generation asking only for records of canonical ``record_type`` (usage: ``deduct``)."""
        twin = copy.copy(self)
        twin.billing_type = "deduct" if record_type == "usage" else record_type
        return twin

    def continuing(self, walked: Window) -> CurrentApi:
        """This generation asking, for a later window, only the instants a walk of ``walked`` did
        not ask for (that walk's records hold the rest: docs/booking.md, "Roll-forward")."""
        twin = copy.copy(self)
        twin.walked = walked
        return twin

    def page(self, client: BillingClient, window: Window, number: int, page_size: int) -> Page:
        asked = min(page_size, self.max_page_size)
        try:
            data = self._post(client, window, number, asked)
        except ApiError as exc:
            if not (_refused(exc) and self.time_form == "ms"):
                raise
            self.time_form = "rfc3339"  # the vendor's own CLI sends these
            try:
                data = self._post(client, window, number, asked)
            except ApiError:
                raise exc from None
        items = page_items(data, number)
        has_more = data.get("has_more")
        if "total" in data:
            total: int | None
            try:
                total = count(data["total"])
            except ValueError:
                raise ApiError(f"the billings answer for page {number} has an invalid 'total'") from None
            if not 0 <= total <= MAX_RECORDS:
                raise ApiError(f"the billings answer claims {total:,} records, outside 0..{MAX_RECORDS:,}")
        elif isinstance(has_more, bool):
            total = None
        else:
            raise ApiError(f"the billings answer for page {number} has neither 'total' nor 'has_more'")
        # A server that serves fewer than asked (and has more) is capping page_size silently:
        # count pages by what it serves, or records would be skipped.
        served = len(items) if number == 1 and 0 < len(items) < asked and (total or 0) > len(items) else asked
        return Page([canonical(item, number, position) for position, item in enumerate(items, 1)], total, served,
                    has_more if isinstance(has_more, bool) else None)

    def _post(self, client: BillingClient, window: Window, number: int, page_size: int) -> dict[str, Any]:
        body = {**self.query(window), "page": number, "page_size": page_size}
        return _data_object(client.post_data(self.billings_path, body), self, number)


def make_generation(name: str) -> Generation:
    return CurrentApi() if name == "current" else LegacyApi()


def detect(client: BillingClient, window: Window, page_size: int, choice: ApiChoice = "auto") -> tuple[Generation, Page]:
    """The generation the server speaks, and its first page of ``window`` (asked only once).

    ``auto`` tries the current API first and falls back to the legacy one when the current path
    answers 404/405/501; if neither is there, the error names both paths.
    """
    candidates: list[Generation] = [make_generation(choice)] if choice != "auto" else [CurrentApi(), LegacyApi()]
    absent: list[ApiError] = []
    for generation in candidates:
        try:
            return generation, generation.page(client, window, 1, page_size)
        except ApiError as exc:
            if choice != "auto" or exc.status not in ABSENT_STATUSES:
                raise
            absent.append(exc)
    raise ApiError(f"neither billing API answers here: {'; '.join(map(str, absent))} (check [[base_url]])",
                   status=absent[-1].status)


def canonical(item: Any, page: int, position: int) -> Any:
    """A current-API record as the canonical record (docs/api.md, "Record mapping").

    Only maps: fields of the wrong kind are passed on for :mod:`.records` to refuse by name.
    The direction of an amount comes from ``billing_type``, whatever the sign on the wire.
    """
    if not isinstance(item, dict):
        return item
    order: dict[str, Any] = item["order"] if isinstance(item.get("order"), dict) else {}
    prediction: dict[str, Any] = item["prediction"] if isinstance(item.get("prediction"), dict) else {}
    kind: Any = item.get("billing_type")
    price: Any = item.get("price")
    amount = price
    if is_number(price):
        if abs(price) > MAX_TASK_PRICE:
            raise DataError(f"record {str(item.get('uuid'))[:60]!r} (page {page}, item {position}): field 'price' "
                            f"{price} is not a plausible USD amount for one task (more than {MAX_TASK_PRICE})")
        if kind == "deduct":
            amount = -abs(price)
        elif kind == "refund":
            amount = abs(price)
    state = order.get("state")
    record: dict[str, Any] = {
        "id": item.get("uuid"),
        "type": _TYPES.get(kind, kind) if isinstance(kind, str) else kind,
        "amount": amount,
        "currency": "USD",
        "status": "completed" if state is None else _STATES.get(state, state) if isinstance(state, str) else state,
        "created_at": _timestamp(item.get("created_at")),
    }
    optional = {
        "model": prediction.get("model_uuid"),
        "api_key_name": item.get("access_key_name"),
        "api_key_id": item.get("access_key_id", item.get("access_key_uuid", order.get("ak_id"))),
        "prediction_id": prediction.get("uuid"),
        "updated_at": _timestamp(item.get("updated_at")),
    }
    record.update((key, value) for key, value in optional.items() if value is not None)
    return record


def _timestamp(value: Any) -> Any:
    """Milliseconds since the epoch (a number or digits) as ISO 8601 UTC; anything else as it is."""
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 15:
        value = int(value)
    if type(value) is int and 0 <= value < 10**15:
        moment = _EPOCH + timedelta(milliseconds=value)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return value


def _span(window: Window) -> tuple[datetime, datetime]:
    """The instants the current API is asked for, for ``window``: it and its provider days."""
    return min(window.start, window.provider_days[0]), max(window.end, window.provider_days[1])


def _instant(moment: datetime, form: str) -> str:
    """An instant as the API takes it: milliseconds since the epoch as text, or RFC 3339 in UTC."""
    if form == "ms":
        return str((moment - _EPOCH) // timedelta(milliseconds=1))
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refused(exc: ApiError) -> bool:
    """The server refused the request's parameters (HTTP 400, or an envelope code 400)."""
    return exc.status == 400 or "answered code 400" in str(exc)


def _data_object(data: Any, generation: Generation, page: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(f"{generation.billings_path} page {page} answered without a data object")
    return data
