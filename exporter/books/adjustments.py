"""Late changes: what the provider says today about closed periods, against what the books booked.

docs/booking.md, "Closed periods and late changes":

=================  ==========================================================  ==================
change             when                                                        posted (delta)
=================  ==========================================================  ==================
completed_late     pending/failed/unknown when booked, completed now           the amount
arrived_late       not in the books, timestamped in the closed period, completed  the amount
reversed           booked as completed, now not completed                      minus the booked amount
amount_changed     completed both times, the amount differs                    the difference
moved              now timestamped in the open period, nothing else changed    nothing
missing            booked as completed, no longer returned by the API          nothing (a warning)
=================  ==========================================================  ==================

A record whose currency or type changed is rebooked: a reversal of what was booked and a late
completion of what it is now, each to its own accounts. A record now timestamped in the open
period stays booked in its closed period (a move, compared like any other record there). A
change of model alone moves no money and is not posted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..models import ADJUSTMENT_COLUMNS, COMPLETED, SUMMARY_ROLES
from ..transform import record_roles
from ..days import utc_days
from .database import Period


def detect_changes(current: pd.DataFrame, booked: pd.DataFrame, closed: list[Period],
                   moved: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Adjustments (:data:`~exporter.models.ADJUSTMENT_COLUMNS`) and warnings.

    ``current``: validated records (``exporter.extract.records.RECORD_COLUMNS``) fetched now over
    the closed periods; ``booked``: :meth:`Books.booked` of those periods; ``moved``: records of
    the open period that the books hold in a closed one (:func:`split_moved`).
    """
    now = _in_periods(current, closed)
    if moved is not None and len(moved):
        period_of = booked.set_index("id")["period"]
        now = pd.concat([now, _columns(moved.assign(period=moved["id"].map(period_of)))], ignore_index=True)
    now = now.assign(moved=now["id"].isin(moved["id"]) if moved is not None else False)
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
        if was_done and is_done and (r.currency_before != r.currency_after or r.type_before != r.type_after):
            rows.append(_row(r, "reversed", "before", -old))  # rebooked: to its old accounts, then its new ones
            rows.append(_row(r, "completed_late", "after", new))
        elif was_done and is_done and old != new:
            rows.append(_row(r, "amount_changed", "before", new - old))
        elif was_done and not is_done:
            rows.append(_row(r, "reversed", "before", -old))
        elif is_done and not was_done:
            rows.append(_row(r, "completed_late", "after", new))
        elif r.moved:
            rows.append(_row(r, "moved", "before", 0))
    frame = pd.DataFrame(rows, columns=ADJUSTMENT_COLUMNS)
    bounds = {period.label: (period.start_utc, period.end_utc) for period in closed}
    frame["period_start"] = pd.to_datetime([bounds[label][0] for label in frame["period"]], utc=True)
    frame["period_end"] = pd.to_datetime([bounds[label][1] for label in frame["period"]], utc=True)
    frame = frame.astype({"amount_before_micros": "int64", "amount_after_micros": "int64", "delta_micros": "int64",
                          "day": "int64"})
    frame["role"] = adjustment_roles(frame)
    # reversed before completed_late: a rebooked record's last row is what it is now (Books.booked)
    order = frame["change"].map(CHANGE_ORDER)
    frame = frame.assign(_order=order).sort_values(["period", "id", "_order"], ignore_index=True).drop(columns="_order")
    warnings = []
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        warnings.append(
            f"{len(missing)} record(s) booked in closed periods are no longer returned by the API "
            f"(nothing posted; the provider may have pruned its history): {shown}"
        )
    return frame, warnings


CHANGE_ORDER = {"reversed": 0, "missing": 1, "moved": 1, "amount_changed": 1, "arrived_late": 1, "completed_late": 2}
"""Within one record's late changes, the order they apply in (a rebooking reverses first)."""


def split_moved(records: pd.DataFrame, booked: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The open period's records without those the books hold in a closed period, and those.

    A record whose timestamp moved out of a closed period into this one was booked there; it is
    compared there (a move, docs/booking.md "Closed periods and late changes"), never booked twice.
    """
    if booked is None or booked.empty:
        return records, None
    # by Arrow's hash set: pandas' isin against a million Arrow-backed ids takes seconds
    held = pc.is_in(pa.array(records["id"], pa.string()), value_set=pa.array(booked["id"], pa.string()))
    held = held.to_numpy(zero_copy_only=False)
    if not held.any():
        return records, None
    return records[~held].reset_index(drop=True), records[held]


def adjustment_roles(frame: pd.DataFrame) -> pd.Series:
    """How each late change is booked, decided once for the journal and FOCUS alike: the role of
    what is being changed, i.e. of the booked amount (a reversal, a re-price, even one that flips
    the sign), or of the new amount for a first booking (completed_late, arrived_late)."""
    late = frame["change"].isin(["completed_late", "arrived_late"])
    reference = frame["amount_after_micros"].where(late, frame["amount_before_micros"]).astype("int64")
    return record_roles(pd.DataFrame({
        "amount_micros": reference, "type": frame["type"].astype("str"), "model": frame["model"].fillna("").astype("str"),
    }, index=frame.index))


def _in_periods(current: pd.DataFrame, closed: list[Period]) -> pd.DataFrame:
    """The current records that fall in a closed period, with that period's label."""
    label = pd.Series(pd.NA, index=current.index, dtype="object")
    for period in closed:
        inside = (current["created_at"] >= period.start_utc) & (current["created_at"] < period.end_utc)
        label[inside] = period.label
    return _columns(current.assign(period=label)[label.notna()])


def _columns(frame: pd.DataFrame) -> pd.DataFrame:
    """What late changes compare of a record, with its closed period's label."""
    columns = frame[["id", "period", "status", "type", "model", "payment_method", "currency", "amount_micros"]].astype(
        {"status": "str", "type": "str", "model": "str", "payment_method": "str", "currency": "str"}
    )
    return columns.assign(day=utc_days(frame["created_at"]))


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
        "day": _int(r.day_after) if r.side != "left_only" else _int(r.day_before),
    }


def _int(value: object) -> int:
    return 0 if pd.isna(value) else int(value)  # type: ignore[call-overload]


@dataclass(frozen=True)
class LateChanges:
    """The late changes to one closed period (and currency) booked in this one: the records that
    moved money (as many as the journal's memos count; a missing record posts nothing and is a
    warning instead), their net effect on the credit, and the part that is AI spend."""

    period: str
    currency: str
    count: int
    delta_micros: int  # effect on the credit balance (as the API signs it)
    spend_micros: int = 0  # of which usage and refunded tasks, as spend: positive = more spend

    @property
    def other_micros(self) -> int:
        """The rest (top-ups, payouts, credits, suspense): effect on the credit balance."""
        return self.delta_micros + self.spend_micros


def late_changes(frame: pd.DataFrame | None) -> tuple[LateChanges, ...]:
    """``Booked.adjustments`` per closed period and currency, as the manifest, terminal and report show it."""
    if frame is None or frame.empty:
        return ()
    posted = frame[frame["delta_micros"] != 0]
    spend = posted["role"].isin(SUMMARY_ROLES)
    return tuple(
        LateChanges(str(period), str(currency), len(part), int(part["delta_micros"].sum()),
                    -int(part["delta_micros"][spend[part.index]].sum()))
        for (period, currency), part in posted.groupby(["period", "currency"], sort=True)
    )


__all__ = ["CHANGE_ORDER", "LateChanges", "adjustment_roles", "detect_changes", "late_changes", "split_moved"]
