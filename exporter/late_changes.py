"""The closed periods' records for late changes: which days to re-read, and the re-read itself.

docs/booking.md, "Finding late changes": the provider's day totals say which closed days changed
(:func:`plan`); those days are walked again, and the types the usage totals do not show are
walked by type over the whole span (:func:`reread`). The pipeline calls these; the comparison
with the books is :mod:`exporter.books.recheck` and :mod:`exporter.books.adjustments`.
"""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from .archive import ArchiveWriter
from .books.ledger import BooksView
from .books.recheck import Recheck, full_recheck, plan_recheck
from .config import ApiChoice, ExportConfig
from .days import days_between
from .errors import ApiError, AuthError, DataError
from .extract import OTHER_TYPE_FILTERS, Generation, detect, extract, fetch_provider_days
from .period import Window

if TYPE_CHECKING:
    from .extract.client import BillingClient


def closed_span(view: BooksView) -> Window:
    """The UTC days of the closed periods to re-check, as one window."""
    return Window(min(p.start_utc for p in view.closed).date(), max(p.end_utc for p in view.closed).date(), "UTC", "closed")


def closed_days(view: BooksView) -> list[date]:
    return sorted({day for p in view.closed for day in days_between(p.start_utc, p.end_utc)})


def generation_for(client: BillingClient, config: ExportConfig, view: BooksView, api: Generation | ApiChoice) -> Generation:
    """The API generation the run uses, found with one small page when not yet known."""
    if not isinstance(api, str):
        return api
    found, _ = detect(client, closed_span(view), 1, api)
    return found


def plan(client: BillingClient, config: ExportConfig, view: BooksView, api: Generation) -> tuple[Recheck, str | None]:
    """Which closed days to re-read, from the provider's day totals; every day when a full re-check
    is asked for or the totals cannot be read (said once: a change is never missed silently)."""
    days = closed_days(view)
    if config.books.recheck == "full":
        return full_recheck(days, "a full re-check was asked for"), None
    assert view.booked is not None
    try:
        provider, unit = fetch_provider_days(client, days, api.name)
    except AuthError:
        raise
    except (ApiError, DataError) as exc:
        return (full_recheck(days, "the provider's day totals could not be read"),
                f"late changes: the provider's day totals could not be read ({exc}); every closed day was re-read")
    return plan_recheck(view.booked, provider, days, unit, OTHER_TYPE_FILTERS[api.name]), None


def reread(client: BillingClient, config: ExportConfig, view: BooksView, recheck: Recheck, api: Generation,
            archive: ArchiveWriter | None, warnings: list[str]) -> pd.DataFrame:
    """The closed days' records as the API returns them now: one ranged walk per run of re-read
    days, and one walk per type re-read by type over the whole span (kept to that type)."""
    seen: set[str] = set()

    def sink(line: str) -> None:  # a record two walks return is archived once
        record_id = json.loads(line)["id"]
        if archive is not None and record_id not in seen:
            seen.add(record_id)
            archive.write(line)

    walks: list[tuple[Window, Generation, str | None]] = (
        [(closed_span(view), api, None)] if recheck.full
        else [(Window(a, b, "UTC", "recheck"), api, None) for a, b in recheck.runs()]
        + [(closed_span(view), api.filtered(kind), kind) for kind in recheck.types])
    frames = []
    for window, generation, kind in walks:
        extraction = extract(client, window, api=generation, page_size=config.api.page_size,
                             concurrency=config.api.concurrency, sink=sink)
        # its warnings (duplicate ids that differ, zoneless times) count as the main walk's do
        warnings += [f"closed periods re-read: {warning}" for warning in extraction.warnings]
        frames.append(extraction.records if kind is None else extraction.records[extraction.records["type"] == kind])
    return pd.concat(frames, ignore_index=True).drop_duplicates("id", keep="first").reset_index(drop=True)


__all__ = ["closed_days", "closed_span", "generation_for", "plan", "reread"]
