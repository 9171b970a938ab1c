"""Late changes: what the provider says today about closed periods, against what the books booked.

docs/booking.md, "Closed periods and late changes":

=================  ==========================================================  ==================
change             when                                                        posted (delta)
=================  ==========================================================  ==================
completed_late     pending/failed/unknown when booked, completed now           the amount
arrived_late       not in the books, timestamped in the closed period, completed  the amount
reversed           booked as completed, now not completed                      minus the booked amount
amount_changed     completed both times, the amount differs                    the difference
missing            booked as completed, no longer returned by the API          nothing (a warning)
=================  ==========================================================  ==================

A record whose currency changed is a reversal in the old currency and a late completion in the
new one. Changes of model or type alone move no money and are not posted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..models import ADJUSTMENT_COLUMNS, COMPLETED
from .database import Period


def detect_changes(current: pd.DataFrame, booked: pd.DataFrame, closed: list[Period]) -> tuple[pd.DataFrame, list[str]]:
    """Adjustments (:data:`~exporter.models.ADJUSTMENT_COLUMNS`) and warnings.

    ``current``: validated records (``exporter.extract.records.RECORD_COLUMNS``) fetched now over
    the closed periods; ``booked``: :meth:`Books.booked` of those periods.
    """
    now = _in_periods(current, closed)
    before = booked.rename(columns={"amount": "amount_micros"})
    merged = before.merge(now, on="id", how="outer", suffixes=("_before", "_after"), indicator="side")
    rows: list[dict[str, object]] = []
    missing: list[str] = []
    for r in merged.itertuples(index=False):
        was_done = r.side != "right_only" and r.status_before == COMPLETED
        is_done = r.side != "left_only" and r.status_after == COMPLETED
        if r.side == "left_only":
            if was_done and not r.reported_missing:  # reported once, by a period now closed: not again
                missing.append(str(r.id))
                rows.append(_row(r, "missing", "before", 0, status_after="(not returned)", amount_after=0))
            continue
        if r.side == "right_only":
            if is_done:
                rows.append(_row(r, "arrived_late", "after", int(r.amount_micros_after), status_before="(not seen)"))
            continue
        old, new = int(r.amount_micros_before), int(r.amount_micros_after)
        if was_done and is_done and r.currency_before != r.currency_after:
            rows.append(_row(r, "reversed", "before", -old))
            rows.append(_row(r, "completed_late", "after", new))
        elif was_done and is_done and old != new:
            rows.append(_row(r, "amount_changed", "before", new - old))
        elif was_done and not is_done:
            rows.append(_row(r, "reversed", "before", -old))
        elif is_done and not was_done:
            rows.append(_row(r, "completed_late", "after", new))
    frame = pd.DataFrame(rows, columns=ADJUSTMENT_COLUMNS)
    bounds = {period.label: (period.start_utc, period.end_utc) for period in closed}
    frame["period_start"] = pd.to_datetime([bounds[label][0] for label in frame["period"]], utc=True)
    frame["period_end"] = pd.to_datetime([bounds[label][1] for label in frame["period"]], utc=True)
    frame = frame.astype({"amount_before_micros": "int64", "amount_after_micros": "int64", "delta_micros": "int64"})
    frame = frame.sort_values(["period", "id", "change"], ignore_index=True)
    warnings = []
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        warnings.append(
            f"{len(missing)} record(s) booked in closed periods are no longer returned by the API "
            f"(nothing posted; the provider may have pruned its history): {shown}"
        )
    return frame, warnings


def _in_periods(current: pd.DataFrame, closed: list[Period]) -> pd.DataFrame:
    """The current records that fall in a closed period, with that period's label."""
    label = pd.Series(pd.NA, index=current.index, dtype="object")
    for period in closed:
        inside = (current["created_at"] >= period.start_utc) & (current["created_at"] < period.end_utc)
        label[inside] = period.label
    now = current.assign(period=label)[label.notna()]
    return now[["id", "period", "status", "type", "model", "payment_method", "currency", "amount_micros"]].astype(
        {"status": "str", "type": "str", "model": "str", "payment_method": "str", "currency": "str"}
    )


def _row(r: Any, change: str, side: str, delta: int, *, status_before: str | None = None,
         status_after: str | None = None, amount_after: int | None = None) -> dict[str, object]:
    """An adjustment row; descriptive fields come from the ``side`` ("before"/"after") that exists."""
    def get(name: str) -> object:
        return getattr(r, f"{name}_{side}")

    return {
        "id": r.id, "period": get("period"), "change": change, "type": get("type"), "model": get("model"),
        "currency": get("currency"), "payment_method": get("payment_method"),
        "status_before": str(r.status_before) if status_before is None else status_before,
        "status_after": str(r.status_after) if status_after is None else status_after,
        "amount_before_micros": _int(r.amount_micros_before),
        "amount_after_micros": _int(r.amount_micros_after) if amount_after is None else amount_after,
        "delta_micros": delta,
    }


def _int(value: object) -> int:
    return 0 if pd.isna(value) else int(value)  # type: ignore[call-overload]


@dataclass(frozen=True)
class LateChanges:
    """The late changes to one closed period (and currency) booked in this one: count and net effect."""

    period: str
    currency: str
    count: int
    delta_micros: int


def late_changes(frame: pd.DataFrame | None) -> tuple[LateChanges, ...]:
    """``Report.adjustments`` per closed period and currency, as the manifest, terminal and report show it."""
    if frame is None or frame.empty:
        return ()
    return tuple(
        LateChanges(str(period), str(currency), len(part), int(part["delta_micros"].sum()))
        for (period, currency), part in frame.groupby(["period", "currency"], sort=True)
    )


__all__ = ["LateChanges", "detect_changes", "late_changes"]
