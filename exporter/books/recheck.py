"""Which closed days an export re-reads for late changes, and why (docs/booking.md, "Finding late changes").

The provider's usage per UTC day and model (count and spend, as it rounds it) is compared with
the completed usage the books hold for the same day and model; only the days that differ are
re-read from the billing endpoint, with the days that held records still pending (the usual late
completions) and those holding records of a type the type filter cannot ask for. Records the
usage summary does not show (top-ups, refunds) are re-read over the whole span by type instead.
A change the day totals cannot show (a re-price under the provider's rounding with the same
count, two changes that cancel exactly) is only found by a full re-check (``--recheck full``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from ..models import COMPLETED
from ..days import day_date, day_number, utc_days

DAY_USAGE_COLUMNS = ["day", "model", "count", "spend_micros"]
"""The provider's day totals: UTC day number, model, completed tasks, positive spend (as rounded)."""


@dataclass(frozen=True)
class Recheck:
    """The closed days an export re-read, and why."""

    days: tuple[date, ...]  # UTC days re-read whole from the billing endpoint
    closed_days: int  # UTC days of the closed periods checked
    differed: int = 0  # days whose provider totals differ from the books'
    pending: int = 0  # days that held records still pending
    other: int = 0  # days that held records of a type not asked for by type
    types: tuple[str, ...] = ()  # record types re-read over the whole span by the type filter
    full: bool = False  # every day re-read
    reason: str = ""  # why every day was re-read

    @property
    def text(self) -> str:
        """One line for the terminal, the manifest and the workbook."""
        if self.full:
            return f"re-read all {self.closed_days} closed days: {self.reason}"
        parts = [f"{self.differed} differed from the provider's day totals", f"{self.pending} held pending records"]
        if self.other:
            parts.append(f"{self.other} held records of other types")
        kinds = f"; {', '.join(self.types)} re-read by type" if self.types else ""
        return f"re-read {len(self.days)} of {self.closed_days} closed days ({', '.join(parts)}){kinds}"

    def runs(self) -> list[tuple[date, date]]:
        """The re-read days as runs of adjacent days (one ranged walk each)."""
        runs: list[tuple[date, date]] = []
        for day in sorted(self.days):
            if runs and runs[-1][1] + timedelta(days=1) == day:
                runs[-1] = (runs[-1][0], day)
            else:
                runs.append((day, day))
        return runs

    def to_json(self) -> dict[str, Any]:
        return {"days": [d.isoformat() for d in self.days], "closed_days": self.closed_days, "differed": self.differed,
                "pending": self.pending, "other": self.other, "types": list(self.types), "full": self.full,
                "reason": self.reason}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recheck:
        return cls(tuple(date.fromisoformat(str(d)) for d in data["days"]), int(data["closed_days"]),
                   int(data["differed"]), int(data["pending"]), int(data["other"]), tuple(map(str, data["types"])),
                   bool(data["full"]), str(data["reason"]))


def full_recheck(days: Sequence[date], reason: str) -> Recheck:
    return Recheck(tuple(days), len(days), full=True, reason=reason)


def plan_recheck(booked: pd.DataFrame, provider: pd.DataFrame, days: Sequence[date], unit_micros: int,
                 types: Sequence[str]) -> Recheck:
    """The days to re-read among the closed ``days``.

    ``booked``: :meth:`Books.booked` of the closed periods (with ``day``); ``provider``: the
    provider's day totals (:data:`DAY_USAGE_COLUMNS`) over ``days``, rounded to ``unit_micros``.
    A day-model agrees when the counts are equal and the books' exact spend rounded half up to
    that unit is the provider's figure: a provider that rounds otherwise costs re-reads, never a
    missed change. ``types``: the record types re-read by type over the whole span.
    """
    if booked["day"].isna().any():
        return full_recheck(days, "the books hold records closed before they kept each record's day")
    numbers = {day_number(d) for d in days}
    ours = _books_day_usage(booked)
    merged = ours.merge(provider, on=["day", "model"], how="outer", suffixes=("_books", "_provider")).fillna(0)
    spend = merged["spend_micros_books"].astype("int64")  # positive: usage is negative, only that is summed
    rounded = (spend + unit_micros // 2) // unit_micros * unit_micros
    apart = (merged["count_books"] != merged["count_provider"]) | (rounded != merged["spend_micros_provider"])
    differed = set(merged.loc[apart, "day"].astype("int64")) & numbers
    status = booked["status"].astype("str")
    pending = set(booked.loc[(status != COMPLETED) & (status != "failed"), "day"].astype("int64")) & numbers
    kind = booked["type"].astype("str")
    other = set(booked.loc[(kind != "usage") & ~kind.isin(list(types)), "day"].astype("int64")) & numbers
    chosen = differed | pending | other
    return Recheck(tuple(day_date(n) for n in sorted(chosen)), len(days), len(differed), len(pending - differed),
                   len(other - differed - pending), tuple(types))


def covered(booked: pd.DataFrame, recheck: Recheck, also: Sequence[str] = ()) -> pd.DataFrame:
    """The booked records a re-read covers: those of the re-read days, those of the types re-read
    by type, and the ids in ``also`` (records of the open period the books hold in a closed one)."""
    if recheck.full:
        return booked
    numbers = [day_number(d) for d in recheck.days]
    keep = booked["day"].isin(numbers) | booked["type"].astype("str").isin(list(recheck.types)) | booked["id"].isin(list(also))
    return booked[keep.fillna(False).astype(bool)].reset_index(drop=True)


def covered_records(records: pd.DataFrame, recheck: Recheck) -> pd.DataFrame:
    """The re-read records a re-check compares: those of its days and of the types it re-read by type."""
    if recheck.full:
        return records
    keep = pd.Series(utc_days(records["created_at"]), index=records.index).isin([day_number(d) for d in recheck.days])
    return records[keep | records["type"].astype("str").isin(list(recheck.types))].reset_index(drop=True)


def _books_day_usage(booked: pd.DataFrame) -> pd.DataFrame:
    """Completed usage the books hold per UTC day and model: count and positive spend (exact)."""
    usage = booked[(booked["status"].astype("str") == COMPLETED) & (booked["type"].astype("str") == "usage")
                   & (booked["amount"] < 0)]
    frame = pd.DataFrame({"day": usage["day"].astype("int64"), "model": usage["model"].astype("str"),
                          "spend_micros": -usage["amount"].astype("int64")})
    grouped = frame.groupby(["day", "model"]).agg(count=("spend_micros", "size"), spend_micros=("spend_micros", "sum"))
    return grouped.reset_index()[DAY_USAGE_COLUMNS]


__all__ = ["DAY_USAGE_COLUMNS", "Recheck", "covered", "covered_records", "full_recheck", "plan_recheck"]
