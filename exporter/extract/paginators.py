"""Page arithmetic for ``page``/``page_size`` paging, on plain dicts (no network).

Legacy answer shape: ``{"items": [...], "pagination": {"page": 1, "page_size": 20, "total": 150}}``
(the current API's ``{page, total, items}`` is read in :mod:`.generations`).
The page count comes from what the server says, not from what was asked: a server may cap
``page_size`` (ask 100, get 50).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import ApiError

# Most records one walk takes. A server claiming more is refused before any page is queued, so
# neither memory nor the number of requests follows a number the server made up.
MAX_RECORDS = 10**8


@dataclass(frozen=True)
class PageInfo:
    page: int
    page_size: int
    total: int

    @property
    def page_count(self) -> int:
        return -(-self.total // self.page_size) if self.total > 0 else 0


def remaining_pages(page_count: int, asked_page_size: int) -> range:
    """Page numbers 2..N of a walk whose first page said N pages.

    ApiError at once when N exceeds the pages :data:`MAX_RECORDS` take at the requested size, so
    a server that shrinks its pages cannot make the walk take more requests than that.
    """
    most = -(-MAX_RECORDS // asked_page_size)
    if page_count > most:
        raise ApiError(f"the billings answer claims {page_count:,} pages: more than the "
                       f"{most:,} pages of {asked_page_size} that {MAX_RECORDS:,} records take")
    return range(2, page_count + 1)


def page_info(data: dict[str, Any]) -> PageInfo:
    """Read ``pagination``; a missing or nonsensical one is the API's fault (ApiError)."""
    try:
        raw = data["pagination"]
        info = PageInfo(count(raw["page"]), count(raw["page_size"]), count(raw["total"]))
    except (KeyError, TypeError, ValueError, InvalidOperation):
        raise ApiError("the billings answer has no valid 'pagination' object") from None
    if info.page_size < 1 or info.total < 0:
        raise ApiError(f"the billings answer has an impossible pagination: {info}")
    if info.total > MAX_RECORDS:
        raise ApiError(f"the billings answer claims {info.total:,} records, more than the {MAX_RECORDS:,} one export takes")
    return info


def count(value: Any) -> int:
    """An integer of at most 18 digits, given as a JSON number or decimal text (ValueError otherwise).

    Bounded before conversion: ``int()`` of a number such as ``1e999999999`` would not finish.
    """
    if type(value) is int and abs(value) < 10**18:
        return value
    if type(value) is str and len(value) <= 20:
        value = Decimal(value)
    if type(value) is Decimal and value.is_finite() and value.adjusted() < 18 and value == value.to_integral_value():
        return int(value)
    raise ValueError("not a count")


def page_items(data: dict[str, Any], page: int) -> list[Any]:
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ApiError(f"the billings answer for page {page} has no 'items' list")
    return items
