"""The rules of a books' periods, as pure functions of the periods the books hold (docs/booking.md,
"What the books refuse"). :class:`~.database.Books` applies them on every write, so no caller can
forget one; the pipeline asks them early too, to refuse before fetching anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from ..errors import ConfigError


@dataclass(frozen=True)
class Period:
    """One exported period as the books know it."""

    label: str
    first_day: date
    last_day: date
    time_zone: str
    start_utc: datetime
    end_utc: datetime
    granularity: str
    exported_at: datetime
    pack: str
    manifest_sha256: str
    records: int
    status: str
    closed_at: datetime | None

    @property
    def closed(self) -> bool:
        return self.status == "closed"


def _when(period: Period) -> str:
    return f"{period.closed_at:%Y-%m-%d %H:%M} UTC" if period.closed_at else "an earlier date"


def _overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _gap_message(label: str, tz_name: str, neighbour: Period, gap_start: datetime, gap_end: datetime) -> str:
    side = "after" if neighbour.end_utc == gap_start else "before"
    way = ("export the periods in between first" if neighbour.time_zone == tz_name
           else f"export it in the books' time zone ([[timezone]] {neighbour.time_zone})")
    return (f"{label} ({tz_name}) would leave a gap in the books {side} {neighbour.label} ({neighbour.time_zone}): "
            f"no period would cover {gap_start:%Y-%m-%d %H:%M} to {gap_end:%Y-%m-%d %H:%M} UTC; {way}")


def overlapping(periods: Sequence[Period], start: datetime, end: datetime, excluding: str) -> list[Period]:
    """The periods other than ``excluding`` that share an instant with ``[start, end)``."""
    return [p for p in periods if p.label != excluding and _overlap((p.start_utc, p.end_utc), (start, end))]


def refuse_closed(periods: Sequence[Period], label: str, start: datetime, end: datetime) -> None:
    """ConfigError (exit 2) if period ``label`` over ``[start, end)`` may not be exported: it is
    closed, or it overlaps a closed period."""
    period = next((p for p in periods if p.label == label), None)
    if period is not None and period.closed:
        raise ConfigError(
            f"{label} was closed on {_when(period)}; late changes to it are booked in the next open period. "
            f"To restate it: wavespeed-export reopen [[period]] {label} [[reason]] \"...\""
        )
    closed = [p for p in overlapping(periods, start, end, label) if p.closed]
    if closed:
        names = ", ".join(f"{p.label} (closed on {_when(p)})" for p in closed)
        raise ConfigError(
            f"{label} overlaps {names}: a closed period is never booked again, not even inside another "
            f"period; export the periods around it (its late changes go to the next open period), or reopen it"
        )


def refuse_gap(periods: Sequence[Period], label: str, start: datetime, end: datetime, tz_name: str) -> None:
    """ConfigError (exit 2) if period ``label`` over ``[start, end)`` (a new period, or an export
    of it again, maybe in another time zone) would leave instants no period of the books covers
    that were covered before, or would come before a closed period."""
    others = [p for p in periods if p.label != label]
    if not others:
        return  # the books' first period
    before = _gaps([(p.start_utc, p.end_utc) for p in periods])
    after = _gaps([(p.start_utc, p.end_utc) for p in others] + [(start, end)])
    for gap in after:
        if not any(old[0] <= gap[0] and gap[1] <= old[1] for old in before):
            neighbour = next(p for p in others if p.end_utc == gap[0] or p.start_utc == gap[1])
            raise ConfigError(_gap_message(label, tz_name, neighbour, *gap))
    closed_after = [p.label for p in others if p.start_utc >= end and p.closed]
    if closed_after:
        raise ConfigError(
            f"{label} comes before {', '.join(closed_after)}, which {'is' if len(closed_after) == 1 else 'are'} "
            f"closed: periods are booked in order; reopen {closed_after[-1]} (and those before it) first, "
            "or keep the earlier periods in other books ([[books]])"
        )


def _gaps(spans: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The instants between the first start and the last end that no span covers."""
    gaps: list[tuple[datetime, datetime]] = []
    covered_to: datetime | None = None
    for first, last in sorted(spans):
        if covered_to is not None and first > covered_to:
            gaps.append((covered_to, first))
        covered_to = last if covered_to is None else max(covered_to, last)
    return gaps


def refuse_out_of_order(periods: Sequence[Period], period: Period, recorded_basis: str | None, basis_now: str) -> None:
    """Periods close in order, each on the exports before it as they are now: an earlier period
    still open, or one exported again since this one was (its closing, running totals or late
    changes may differ), would close a period booked on a draft's figures."""
    earlier = [p.label for p in periods if not p.closed and p.end_utc <= period.start_utc and p.label != period.label]
    if earlier:
        raise ConfigError(f"{', '.join(earlier)} {'is' if len(earlier) == 1 else 'are'} earlier than {period.label} "
                          f"and still open: close {'it' if len(earlier) == 1 else 'them'} first (periods close in order)")
    closed_before = max((p for p in periods if p.closed and p.end_utc <= period.start_utc), key=lambda p: p.end_utc,
                        default=None)
    if closed_before is not None and closed_before.end_utc != period.start_utc:
        raise ConfigError(f"{period.label} ({period.time_zone}) does not meet {closed_before.label} "
                          f"({closed_before.time_zone}), the closed period before it: no period covers "
                          f"{closed_before.end_utc:%Y-%m-%d %H:%M} to {period.start_utc:%Y-%m-%d %H:%M} UTC; export "
                          f"the period in between in the books' time zone first")
    if recorded_basis != basis_now:
        cause = ("was exported by an earlier version of the tool" if recorded_basis is None
                 else "was exported before the periods ahead of it were exported again or added")
        raise ConfigError(f"{period.label} {cause}: export {period.label} again, then close it")


def refuse_reopen(periods: Sequence[Period], label: str, where: object) -> None:
    """Periods reopen in reverse order: refused while a later period is closed (its closing chained
    from this one's), or if ``label`` is not a closed period of the books at ``where``."""
    period = next((p for p in periods if p.label == label), None)
    if period is None or not period.closed:
        raise ConfigError(f"{label} is not a closed period in {where}")
    later = [p.label for p in periods if p.closed and p.start_utc >= period.end_utc]
    if later:
        raise ConfigError(f"{', '.join(later)} {'is' if len(later) == 1 else 'are'} closed after {label} and "
                          f"chained from it: reopen {later[-1]} first (periods reopen in reverse order)")


__all__ = ["Period", "overlapping", "refuse_closed", "refuse_gap", "refuse_out_of_order", "refuse_reopen"]
