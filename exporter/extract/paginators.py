"""Page arithmetic for ``page``/``page_size`` paging, on plain dicts (no network).

Answer shape: ``{"items": [...], "pagination": {"page": 1, "page_size": 20, "total": 150}}``.
The page count comes from what the server says, not from what was asked: a server may cap
``page_size`` (ask 100, get 50).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..errors import ApiError

MAX_PAGES = 10_000_000  # more is a broken answer (a total of 1e400), not a billing history


@dataclass(frozen=True)
class PageInfo:
    page: int
    page_size: int
    total: int

    @property
    def page_count(self) -> int:
        return -(-self.total // self.page_size) if self.total > 0 else 0


class PageNumberPaginator:
    """Knows the first request, and, from the first answer, every remaining page."""

    def __init__(self, page_size: int = 100) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size

    def first_params(self) -> dict[str, int]:
        return {"page": 1, "page_size": self.page_size}

    def remaining_params(self, first: dict[str, Any]) -> list[dict[str, int]]:
        """Params of pages 2..N, using the page size the server actually served."""
        info = page_info(first)
        return [{"page": n, "page_size": info.page_size} for n in range(2, info.page_count + 1)]


def page_info(data: dict[str, Any]) -> PageInfo:
    """Read ``pagination``; a missing or nonsensical one is the API's fault (ApiError)."""
    try:
        raw = data["pagination"]
        info = PageInfo(_whole(raw["page"]), _whole(raw["page_size"]), _whole(raw["total"]))
    except (KeyError, TypeError, ValueError):
        raise ApiError("the billings answer has no valid 'pagination' object") from None
    if info.page_size < 1 or info.total < 0 or info.page_count > MAX_PAGES:
        raise ApiError(f"the billings answer has an impossible pagination: {str(info)[:200]}")
    return info


def _whole(value: Any) -> int:
    """int() of a JSON number or text, refusing what would take ages to expand (1e999999999)."""
    if isinstance(value, Decimal) and (not value.is_finite() or value.adjusted() > 18):
        raise ValueError("not a count")
    return int(value)


def page_items(data: dict[str, Any], page: int) -> list[Any]:
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ApiError(f"the billings answer for page {page} has no 'items' list")
    return items
