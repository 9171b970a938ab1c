"""Extraction: every billing record of a window, from all pages, validated and deduplicated.

Page 1 tells how many pages there are (from the server's own ``pagination``, refused beyond
:data:`~.paginators.MAX_RECORDS`); the rest are fetched concurrently with a bounded pool, a few
requests queued at a time, so memory never follows the number of pages the server claims. Pages go to a :class:`PageStore` as they arrive (so a
killed fetch resumes) and are then read back in page order, so the result depends neither on
completion order nor on page size. The API is asked for a few extra days on each side and the
records are cut here to the exact instants ``[window.start, window.end)``.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import tempfile
from collections.abc import Callable
import queue
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..config import DEFAULT_CONCURRENCY, ApiChoice, ProgressCallback
from ..errors import ApiError, DataError, ExportError
from ..models import ExtractionStats
from ..period import Window
from . import jsonexact
from .endpoints import usage_in_provider_days
from .generations import Generation, Page, detect
from .pagestore import PageStore
from .paginators import MAX_RECORDS, remaining_pages
from .columnar import block_columns, to_frame
from .records import RECORD_COLUMNS, parse_records, zoneless

if TYPE_CHECKING:  # the HTTP client loads requests: only a run that calls the API imports it (pipeline._client)
    from .client import BillingClient

log = logging.getLogger("exporter.extract")
VALIDATE_BATCH = 5_000  # records validated at once while other pages are still on the wire
# Pages queued per worker: enough that the workers stay busy while this thread validates a batch
# (a few tens of milliseconds), few enough that memory never follows the server's page count.
QUEUED_PER_WORKER = 8

PageFuture = Future[tuple[int, list[Any], int | None]]  # (page, items, total)
# receives each kept record's JSON text, exactly as received, in page order
LineSink = Callable[[str], None]


class TooManyRecords(Exception):
    """The first page says the range holds more records than the caller is willing to fetch."""

    def __init__(self, total: int) -> None:
        super().__init__(f"{total} records")
        self.total = total


@dataclass
class Extraction:
    """The period's records in the API's order (newest first), each once, as validated columns."""

    records: pd.DataFrame  # records.RECORD_COLUMNS
    stats: ExtractionStats
    warnings: list[str] = field(default_factory=list)
    # completed usage of the provider's UTC days (endpoints.usage_in_provider_days), for reconciliation
    provider_days_usage: pd.DataFrame | None = None
    api: Generation | None = None  # the API generation that answered, for the run's later calls
    # the records received created at or after the window's end (the query asks wider), each once
    after: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RECORD_COLUMNS))


def extract(
    client: BillingClient,
    window: Window,
    *,
    api: Generation | ApiChoice = "auto",
    page_size: int = 100,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressCallback | None = None,
    store_folder: Path | None = None,
    sink: LineSink | None = None,
    max_total: int | None = None,
) -> Extraction:
    """Fetch, validate, deduplicate and cut every record of ``window``.

    ``api`` is the API generation to use, or how to choose it (:func:`.generations.detect`);
    the one used is returned in :attr:`Extraction.api`, for the run's later calls.
    With ``store_folder`` the pages stay there if the fetch fails on the network (or is
    interrupted), and the next call with the same folder fetches only the missing pages; the
    folder is removed once the records are read. ``sink`` receives the kept records' JSON text.
    With ``max_total``, a first page reporting more records raises TooManyRecords before any
    other page is asked for.
    """
    if store_folder is None:
        with tempfile.TemporaryDirectory(prefix="wavespeed-pages-") as temporary:
            return extract(client, window, api=api, page_size=page_size, concurrency=concurrency,
                           progress=progress, store_folder=Path(temporary), sink=sink, max_total=max_total)
    store = PageStore(store_folder)
    try:
        for _walk in range(2):
            batches = _Batches()
            generation, first_total, last_total = _fetch_pages(client, window, api, store, batches, page_size,
                                                               concurrency, progress, max_total)
            api = generation  # a second walk asks the same generation
            if first_total == last_total:
                break
            # Records arrived while paging: offsets shifted, so a record may have slipped past us
            # between two pages. A second walk sees the new state whole (unless more arrive).
            log.warning("the API's total went from %d to %d while paging; fetching again", first_total, last_total)
        result = _assemble(batches.frame(), store, window, last_total, client.base_url, sink)
    except (DataError, TooManyRecords):
        store.remove()  # refetching would only bring the same answer back
        raise
    finally:
        store.close()  # kept on disk for a resume unless removed
    store.remove()
    result.api = generation
    result.stats = replace(result.stats, api=generation.name)
    if batches.zoneless:
        ids = ", ".join(map(repr, batches.zoneless[:5])) + (f" and {len(batches.zoneless) - 5} more" if len(batches.zoneless) > 5 else "")
        result.warnings.append(f"{len(batches.zoneless)} record(s) have a created_at without a time zone, read as UTC: {ids}")
    if first_total != last_total:
        result.warnings.append(
            f"records kept arriving while paging (the total went from {first_total} to {last_total} on the "
            "second walk too): some may be missing; export again once the period is closed"
        )
    return result


def _fetch_pages(
    client: BillingClient,
    window: Window,
    api: Generation | ApiChoice,
    store: PageStore,
    batches: _Batches,
    page_size: int,
    concurrency: int,
    progress: ProgressCallback | None,
    max_total: int | None = None,
) -> tuple[Generation, int | None, int | None]:
    """Every page of the query into ``store`` and ``batches``.

    Returns the generation used, the total the first page reported and the largest any later
    page reported: they differ when records arrived during the walk (both None when the server
    only says whether more pages follow). Finished pages are validated on this thread while the
    pool waits on the network.
    """
    if isinstance(api, str):
        api, first = detect(client, window, page_size, api)
    else:
        first = api.page(client, window, 1, page_size)
    if max_total is not None and first.total is not None and first.total > max_total:
        raise TooManyRecords(first.total)
    if first.total is None:  # has_more only: nothing to fetch concurrently
        _walk_in_order(client, window, api, store, batches, first, page_size, progress, max_total)
        return api, None, None
    asked = min(page_size, api.max_page_size)
    page_count = first.page_count or 0
    pages = remaining_pages(page_count, asked)  # refuses an impossible page count before anything is queued
    what = {"base_url": client.base_url, "api": api.name, "query": api.query(window),
            "first_day": window.first_day.isoformat(), "last_day": window.last_day.isoformat(),
            "time_zone": window.tz_name, "asked_page_size": asked, "page_size": first.page_size, "total": first.total}
    have = store.open(what, client.key_fingerprint)
    remaining = (number for number in pages if number not in have)
    batches.add(1, first.items, store.save(1, first.items))
    for number in sorted(have - {1}):  # resuming: pages a previous run already stored
        try:
            lines = store.lines(number)
        except UnicodeDecodeError:
            raise DataError(f"stored page {number} is not UTF-8 text (the resume folder is damaged)") from None
        batches.add(number, _decode_stored(lines, number), lines)
    total_pages = max(page_count, 1)
    done = len(have | {1})
    if progress:
        progress(done, total_pages, done * first.page_size)

    first_ids = _ids(first.items)
    generation = api

    def fetch(number: int) -> tuple[int, list[Any], int | None]:
        page = generation.page(client, window, number, first.page_size)
        if first_ids and _ids(page.items) == first_ids:  # never walk a broken server to the end
            raise ApiError(f"the API ignores the 'page' parameter: page {number} repeats page 1")
        return number, page.items, page.total

    last_total = first.total
    workers = max(1, concurrency)
    finished: queue.SimpleQueue[PageFuture] = queue.SimpleQueue()  # each future once, as it completes
    pending: set[PageFuture] = set()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="page") as pool:
        while True:
            for number in itertools.islice(remaining, QUEUED_PER_WORKER * workers - len(pending)):  # a few, never all
                future = pool.submit(fetch, number)
                pending.add(future)
                future.add_done_callback(finished.put)
            if not pending:
                break
            future = finished.get()
            pending.discard(future)
            error = future.exception()
            if error is not None:
                _store_finished(pending, store)
                raise error
            number, items, total = future.result()
            # Stored here, not on the worker: a worker goes back to the network at once, and one
            # thread creating the page files contends less for the GIL than eight.
            batches.add(number, items, store.save(number, items))
            last_total = max(last_total, total if total is not None else last_total)
            done += 1
            if progress:
                progress(done, total_pages, min(done * first.page_size, first.total))
    return api, first.total, last_total


def _store_finished(pending: set[PageFuture], store: PageStore) -> None:
    """A walk stopping: the queued pages are cancelled, and those already on the wire are stored
    once they arrive (a resume then asks for none of them again)."""
    for future in pending:
        future.cancel()
    for future in pending:
        if future.cancelled() or future.exception() is not None:
            continue
        number, items, _total = future.result()
        try:
            store.save(number, items)
        except DataError:
            pass  # the error being raised is the one to report


def _walk_in_order(
    client: BillingClient,
    window: Window,
    api: Generation,
    store: PageStore,
    batches: _Batches,
    first: Page,
    page_size: int,
    progress: ProgressCallback | None,
    max_total: int | None,
) -> None:
    """A walk whose server says only ``has_more``: one page after another, bounded like any walk.

    The page store starts afresh (a resume needs the page count the first page did not give).
    """
    asked = min(page_size, api.max_page_size)
    most = -(-(max_total if max_total is not None else MAX_RECORDS) // asked)
    what = {"base_url": client.base_url, "api": api.name, "query": api.query(window), "has_more": True}
    store.open({**what, "fresh": secrets.token_hex(8)}, client.key_fingerprint)
    page, number, first_ids = first, 1, _ids(first.items)
    while True:
        batches.add(number, page.items, store.save(number, page.items))
        if progress:
            progress(number, number + (1 if page.has_more else 0), batches.count)
        if not page.has_more or not page.items:
            return
        if number >= most:
            if max_total is not None:
                raise TooManyRecords(number * asked)
            raise ApiError(f"the billings answer still says has_more after {number:,} pages ({MAX_RECORDS:,} records)")
        number += 1
        page = api.page(client, window, number, page_size)
        if first_ids and _ids(page.items) == first_ids:
            raise ApiError(f"the API ignores the 'page' parameter: page {number} repeats page 1")


class _Batches:
    """Pages validated a few thousand records at a time, in whatever order they arrive.

    A batch is read by the columnar reader (:func:`.columnar.block_columns`) from the records'
    JSON lines, as an archive is: its parsing runs in Arrow without the GIL, so the workers keep
    the network busy meanwhile. When the reader cannot vouch for a batch, the records go through
    :func:`.records.parse_records`, which names the first bad record (docs/api.md, "Client").
    """

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.items: list[Any] = []
        self.lines: list[str] = []  # each item's JSON text, as stored
        self.places: list[tuple[int, int]] = []  # (page, position) of each item
        self.zoneless: list[str] = []  # ids of records whose created_at has no zone
        self.count = 0  # records added so far

    def add(self, number: int, items: list[Any], lines: list[str]) -> None:
        self.count += len(items)
        self.items.extend(items)
        self.lines.extend(lines)
        self.places.extend((number, position) for position in range(1, len(items) + 1))
        if len(self.items) >= VALIDATE_BATCH:
            self._flush()

    def frame(self) -> pd.DataFrame:
        """Every record validated, in page order, with ``_hash``."""
        if self.items or not self.frames:
            self._flush()
        frame = pd.concat(self.frames, ignore_index=True)
        return frame.sort_values(["_page", "_position"], kind="stable", ignore_index=True)

    def _flush(self) -> None:
        places, items, lines = self.places, self.items, self.lines
        # the bytes a page file holds (pagestore.py): one line per record, a lone surrogate escaped
        table = block_columns("".join(line + "\n" for line in lines).encode("utf-8", "backslashreplace"))
        if table is None:
            frame = parse_records(items, lambda i: f"page {places[i][0]}, item {places[i][1]}",
                                  lambda positions: self.zoneless.extend(items[i]["id"] for i in positions))
        else:
            frame = to_frame([table])
            self.zoneless.extend(items[i]["id"] for i in zoneless([item["created_at"] for item in items]))
        frame["_page"] = np.array([page for page, _ in places], dtype=np.int64)
        frame["_position"] = np.array([position for _, position in places], dtype=np.int64)
        frame["_hash"] = np.fromiter(map(hash, lines), dtype=np.int64, count=len(lines))  # tells repeated copies that differ
        self.frames.append(frame)
        self.items, self.lines, self.places = [], [], []


def _decode_stored(lines: list[str], number: int) -> list[Any]:
    try:
        return jsonexact.loads_lines(lines)
    except jsonexact.LineError as exc:  # a stored page is written whole or not at all
        raise DataError(f"stored page {number}, item {exc.index + 1}: {exc.reason}") from None


def _assemble(
    fetched: pd.DataFrame, store: PageStore, window: Window, server_total: int | None, source: str,
    sink: LineSink | None
) -> Extraction:
    """Drop repeated ids (the first copy wins), keep the window's records, report what happened."""
    repeated = fetched["id"].duplicated(keep="first")
    duplicates = int(repeated.sum())
    conflicting: Any = []
    if duplicates:
        first_hash = fetched.groupby("id")["_hash"].transform("first")
        conflicting = fetched.loc[repeated & (fetched["_hash"] != first_hash), "id"].unique()
    instants = fetched["created_at"]
    keep = (~repeated & (instants >= window.start) & (instants < window.end)).to_numpy()
    if sink is not None:  # a second pass over the pages on disk: the lines never all sit in memory
        _replay(store, keep, sink)
    records = fetched.loc[keep, RECORD_COLUMNS].reset_index(drop=True)
    after = fetched.loc[(~repeated & (instants >= window.end)).to_numpy(), RECORD_COLUMNS].reset_index(drop=True)
    unique = len(fetched) - duplicates
    warnings = []
    if duplicates:
        warnings.append(f"{duplicates} duplicate record(s) dropped (same id on more than one page)")
    if len(conflicting):
        warnings.append(f"{len(conflicting)} duplicate id(s) differed in content; the first copy was kept: {', '.join(conflicting[:5])}")
    if server_total is not None and unique != server_total:
        warnings.append(f"the API reported {server_total} records for the queried range but {unique} distinct ones were received")
    stats = ExtractionStats(
        source=source, server_total=server_total, unique_fetched=unique,
        duplicates_dropped=duplicates, pages=len(store.pages()), in_period=len(records),
    )
    provider_days_usage = usage_in_provider_days(fetched[~repeated] if duplicates else fetched, window)
    return Extraction(records, stats, warnings, provider_days_usage, after=after)


def _replay(store: PageStore, keep: np.ndarray, sink: LineSink) -> None:
    """Send the kept records' stored lines to ``sink``; the store must hold exactly the records read."""
    read = 0
    try:
        for number in store.pages():
            lines = store.lines(number)
            kept = keep[read:read + len(lines)]
            if len(kept) < len(lines):  # more records than were read
                read = -1
                break
            for line in (lines if kept.all() else itertools.compress(lines, kept)):
                sink(line)
            read += len(lines)
    except FileNotFoundError:
        read = -1
    if read != len(keep):
        raise ExportError(f"the stored pages in {store.folder} changed while being archived (another run of the same "
                          "period?): nothing written")


def _ids(items: list[Any]) -> list[Any]:
    return [item.get("id") if isinstance(item, dict) else None for item in items]
