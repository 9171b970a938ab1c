"""Extraction: every billing record of a window, from all pages, validated and deduplicated.

Page 1 tells how many pages there are (from the server's own ``pagination``); the rest are
fetched concurrently with a bounded pool and then processed in page order, so the result does
not depend on completion order. The API is asked for a few extra days on each side and the
records are cut to the exact instants ``[window.start, window.end)`` here.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from .api.client import BillingClient
from .api.paginators import PageNumberPaginator, page_info, page_items
from .errors import ApiError
from .models import ExtractionStats
from .period import Window
from .records import Row, parse_record

BILLINGS_PATH = "/api/v3/account/billings"
USAGE_PATH = "/api/v3/account/usage"

# (pages done, pages in all, records received so far)
ProgressCallback = Callable[[int, int, int], None]


@dataclass
class Extraction:
    """The period's records in the API's order (newest first), each once."""

    rows: list[Row]
    raw: list[dict[str, Any]]  # the same records exactly as received, for the source archive
    stats: ExtractionStats
    warnings: list[str] = field(default_factory=list)


def extract(
    client: BillingClient,
    window: Window,
    *,
    page_size: int = 100,
    concurrency: int = 4,
    progress: ProgressCallback | None = None,
) -> Extraction:
    """Fetch, validate, deduplicate and cut every record of ``window``."""
    paginator = PageNumberPaginator(page_size)
    params = window.query_params()
    first = client.get_data(BILLINGS_PATH, {**params, **paginator.first_params()})
    if not isinstance(first, dict):
        raise ApiError(f"{BILLINGS_PATH} answered without a data object")
    info = page_info(first)
    pages: dict[int, list[Any]] = {1: page_items(first, 1)}
    remaining = paginator.remaining_params(first)
    total_pages = len(remaining) + 1
    received = len(pages[1])
    if progress:
        progress(1, total_pages, received)

    def fetch(query: dict[str, int]) -> tuple[int, list[Any]]:
        data = client.get_data(BILLINGS_PATH, {**params, **query})
        if not isinstance(data, dict):
            raise ApiError(f"{BILLINGS_PATH} page {query['page']} answered without a data object")
        return query["page"], page_items(data, query["page"])

    if remaining:
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="page") as pool:
            futures = [pool.submit(fetch, query) for query in remaining]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    if future.exception() is not None:
                        for other in pending:
                            other.cancel()
                        raise future.exception()  # type: ignore[misc]
                    number, items = future.result()
                    pages[number] = items
                    received += len(items)
                    if progress:
                        progress(len(pages), total_pages, received)

    return _assemble(pages, window, info.total, client.base_url)


def _assemble(pages: dict[int, list[Any]], window: Window, server_total: int, source: str) -> Extraction:
    """Validate in page order, drop repeated ids, keep the window's records."""
    _reject_ignored_page(pages)
    seen: dict[str, Row] = {}
    rows: list[Row] = []
    raw: list[dict[str, Any]] = []
    duplicates = 0
    conflicting: list[str] = []
    for number in sorted(pages):
        for position, item in enumerate(pages[number], start=1):
            row = parse_record(item, f"page {number}, item {position}")
            earlier = seen.get(row.id)
            if earlier is not None:
                duplicates += 1
                if earlier != row:
                    conflicting.append(row.id)
                continue
            seen[row.id] = row
            if window.contains(row.created_at):
                rows.append(row)
                raw.append(item)
    warnings = []
    if duplicates:
        warnings.append(f"{duplicates} duplicate record(s) dropped (same id on more than one page)")
    if conflicting:
        warnings.append(f"{len(conflicting)} duplicate id(s) differed in content; the first copy was kept: {', '.join(conflicting[:5])}")
    if len(seen) != server_total:
        warnings.append(f"the API reported {server_total} records for the queried range but {len(seen)} distinct ones were received")
    stats = ExtractionStats(
        source=source, server_total=server_total, unique_fetched=len(seen),
        duplicates_dropped=duplicates, pages=len(pages), in_period=len(rows),
    )
    return Extraction(rows, raw, stats, warnings)


def _reject_ignored_page(pages: dict[int, list[Any]]) -> None:
    """A server that serves page 1 for every page number would make every page a duplicate."""
    if len(pages) < 2 or not pages[1]:
        return
    first_ids = [item.get("id") if isinstance(item, dict) else None for item in pages[1]]
    for number in sorted(pages)[1:]:
        ids = [item.get("id") if isinstance(item, dict) else None for item in pages[number]]
        if ids == first_ids:
            raise ApiError(f"the API ignores the 'page' parameter: page {number} repeats page 1")
