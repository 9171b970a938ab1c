"""UTC days as the books keep them: whole days since 1970-01-01 (docs/booking.md, "Finding late changes")."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

EPOCH = date(1970, 1, 1)


def utc_days(instants: pd.Series) -> np.ndarray:
    """The UTC day number of each aware instant (int64)."""
    values = pd.to_datetime(instants, utc=True).dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    return values.astype("int64")


def day_number(day: date) -> int:
    return (day - EPOCH).days


def day_date(number: int) -> date:
    return EPOCH + timedelta(days=int(number))


def days_between(start: datetime, end: datetime) -> list[date]:
    """The UTC days that ``[start, end)`` touches."""
    first, last = _utc_date(start), _utc_date(end - timedelta(microseconds=1))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _utc_date(instant: datetime) -> date:
    return pd.Timestamp(instant).tz_convert("UTC").date()


__all__ = ["EPOCH", "day_date", "day_number", "days_between", "utc_days"]
