"""Validated records and their context -> the complete, frozen Report (no I/O): the transform,
the books and the reconciliation run, and their outputs become the Report's parts (:mod:`exporter.report`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pandas as pd
import pyarrow as pa

from . import __version__
from .archive import SourceContext
from .books.ledger import BooksView, book_period, compare_models, split_moved
from .books.mapping import AccountMapping
from .books.reconcile import reconcile
from .config import Granularity
from .extract import parse_provider_usage
from .models import CATEGORY_COLUMNS, ProviderBalance
from .period import Window
from .report import BooksBefore, Reconciliation, Report, ReportContext
from .transform import summarize as summarize_records


def assemble_report(
    records: pd.DataFrame,
    context: SourceContext,
    mapping: AccountMapping,
    granularity: Granularity,
    generated_at: datetime,
    view: BooksView | None = None,
    closed_records: pd.DataFrame | None = None,
    given_opening: int | None = None,
    topups: pd.DataFrame | None = None,
) -> Report:
    """Validated records and their context -> the complete, frozen Report (no I/O).

    ``view`` is what the books knew before (none: a fresh start); ``closed_records`` what the API
    returns now for the closed periods the view lists; ``topups`` the receipts of ``--topups``
    (docs/booking.md, "Top-ups with the current API").
    """
    window = context.window
    view = view or BooksView()
    provider = context.provider_balance
    if topups is not None:
        records, provider = _with_topups(records, topups, window, provider)
    records, moved = split_moved(records, view.booked)
    if moved is not None:  # compared with the books' records: text, as the books hold it
        moved = moved.astype(dict.fromkeys(CATEGORY_COLUMNS, "str"))
    summaries = summarize_records(records, window)
    del records  # the frame is the summaries' now: a sorted copy, when the records were not in time order
    pa.default_memory_pool().release_unused()  # what the records held goes back before the books and writers
    booked = book_period(summaries, window, mapping, granularity, view, closed_records=closed_records, moved=moved,
                         recheck=context.recheck, provider=provider, given_opening=given_opening,
                         derive_topups=context.stats.api == "current" and topups is None)
    reconciliation = Reconciliation()
    if context.provider_usage is not None:
        exported = _provider_days_usage(context, summaries.by_model)
        if exported is None:
            reconciliation = Reconciliation(warnings=(
                "reconciliation skipped: this archive predates the record of usage in the provider's UTC days, "
                f"which a {window.tz_name} period cannot stand in for (export from the API again to reconcile)",
            ))
        else:
            frame, found = reconcile(exported, parse_provider_usage(context.provider_usage))
            reconciliation = Reconciliation(frame, tuple(found))
    return Report(
        context=ReportContext(window, context.stats, generated_at, __version__, granularity=granularity,
                              warnings=tuple(context.warnings)),
        summaries=replace(summaries, by_model=compare_models(summaries.by_model, view)),
        booked=booked,
        mapping=mapping,
        books=BooksBefore(
            previous_label=view.previous.label if view.previous_models is not None and view.previous else None,
            history=view.history,
            ledger_accounts=view.ledger_accounts,
            start=view.start,
            recheck=context.recheck,
        ),
        reconciliation=reconciliation,
    )


def _with_topups(
    records: pd.DataFrame, topups: pd.DataFrame, window: Window, provider: ProviderBalance | None
) -> tuple[pd.DataFrame, ProviderBalance | None]:
    """The period's records with the receipts' top-ups of the period added; the provider's
    balance with those made after the period counted among what happened since (no record
    the API returned has their ids: they are ``topup:<reference>``)."""
    instants = topups["created_at"]
    within = topups[(instants >= window.start) & (instants < window.end)]
    if provider is not None and provider.after_net_micros is not None:
        after = topups[(instants >= window.end) & (instants < provider.read_at) & (topups["currency"] == provider.currency)]
        provider = replace(provider, after_net_micros=provider.after_net_micros + int(after["amount_micros"].sum()),
                           after_records=provider.after_records + len(after))
    return pd.concat([records, within], ignore_index=True), provider


def _provider_days_usage(context: SourceContext, by_model: pd.DataFrame) -> pd.DataFrame | None:
    """What the provider's usage summary is compared with: usage of the provider's own (UTC) days.

    An older archive lacks it; then the period's own usage stands in if the period is the
    provider's days (a UTC period), else there is nothing like-for-like (None).
    """
    if context.provider_days_usage is not None:
        return context.provider_days_usage
    window = context.window
    return by_model if (window.start, window.end) == window.provider_days else None


__all__ = ["assemble_report"]
