"""The export window: a month or a range of whole days in a time zone, as exact UTC instants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

# The API's start_date/end_date are whole days in an undocumented zone: ask for this many
# extra days on each side (covers every offset from UTC-12 to UTC+14) and cut client-side.
QUERY_MARGIN_DAYS = 2


@dataclass(frozen=True)
class Window:
    """Records with ``start <= created_at < end`` belong to the export.

    ``start``/``end`` are UTC instants: local midnight of ``first_day`` and local midnight after
    ``last_day`` in ``tz``.
    """

    first_day: date
    last_day: date
    tz_name: str
    label: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)

    @property
    def start(self) -> datetime:
        return _local_midnight_utc(self.first_day, self.tz)

    @property
    def end(self) -> datetime:
        return _local_midnight_utc(self.last_day + timedelta(days=1), self.tz)

    def query_params(self) -> dict[str, str]:
        """start_date/end_date for the API, wide enough for any server time zone."""
        margin = timedelta(days=QUERY_MARGIN_DAYS)
        return {
            "start_date": (self.first_day - margin).isoformat(),
            "end_date": (self.last_day + margin).isoformat(),
        }

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def _local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(timezone.utc)


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# every label a window can carry: a month, a day range, a quarter; nothing that names another folder
_LABEL = re.compile(r"\d{4}-\d{2}|\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}|\d{4}-Q[1-4]", re.ASCII)


def parse_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name such as UTC or Europe/Berlin)") from None
    return name


def month_window(period: str, tz_name: str = "UTC") -> Window:
    """``2024-01`` -> the calendar month in ``tz_name``; label ``2024-01``."""
    match = _MONTH.match(period)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ConfigError(f"--period must be YYYY-MM, got {period!r}")
    year, month = int(match.group(1)), int(match.group(2))
    first = date(year, month, 1)
    last = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
    return Window(first, last, parse_timezone(tz_name), period)


def range_window(start: str, end: str, tz_name: str = "UTC") -> Window:
    """Inclusive whole days ``start``..``end``; label ``2024-01-01_2024-01-31``."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise ConfigError(f"--start/--end must be YYYY-MM-DD, got {start!r} and {end!r}") from None
    if last < first:
        raise ConfigError(f"--end {end} is before --start {start}")
    return Window(first, last, parse_timezone(tz_name), f"{first.isoformat()}_{last.isoformat()}")


def resolve_window(period: str | None, start: str | None, end: str | None, tz_name: str) -> Window:
    """Exactly one of --period or --start/--end."""
    if period and (start or end):
        raise ConfigError("give either --period or --start/--end, not both")
    if period:
        return month_window(period, tz_name)
    if start and end:
        return range_window(start, end, tz_name)
    raise ConfigError("give --period YYYY-MM, or both --start and --end")


def label_fits(label: object, first_day: date, last_day: date) -> bool:
    """True when ``label`` is one of the forms a window is named by and names exactly these days.

    ``YYYY-MM`` (that calendar month), ``YYYY-MM-DD_YYYY-MM-DD`` (that range) or ``YYYY-Qn`` (that
    quarter). A label read from an archive becomes a folder name, so anything else is refused.
    """
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        return False
    if "_" in label:
        return label == f"{first_day.isoformat()}_{last_day.isoformat()}"
    year = int(label[:4])
    if "Q" in label:
        first_month = 3 * int(label[-1]) - 2
        months = 3
    else:
        first_month, months = int(label[5:]), 1
        if not 1 <= first_month <= 12:
            return False
    end_month = first_month + months  # the month after the period, possibly 13
    after = date(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1)
    return first_day == date(year, first_month, 1) and last_day == after - timedelta(days=1)
