"""The export window: a month, a quarter or a range of whole days in a time zone, as exact UTC instants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal
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

    @property
    def kind(self) -> PeriodKind:
        """``month``, ``quarter`` or ``range``: what the label says, when it names exactly these
        days (internal windows such as the closed periods' span are ranges)."""
        kind = label_kind(self.label)
        return kind if kind is not None and label_fits(self.label, self.first_day, self.last_day) else "range"

    @property
    def provider_days(self) -> tuple[datetime, datetime]:
        """``[first_day 00:00Z, last_day + 1 00:00Z)``: the whole days the provider's usage summary
        covers when asked for ``first_day``..``last_day``; its days are taken to be UTC days."""
        return _local_midnight_utc(self.first_day, _UTC), _local_midnight_utc(self.last_day + timedelta(days=1), _UTC)


_UTC = ZoneInfo("UTC")


def _local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(timezone.utc)


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
RELATIVE_PERIODS = ("last-month", "this-month")
PERIOD_FORMS = "YYYY-MM, YYYY-Qn, last-month or this-month"
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
        raise ConfigError(f"[[period]] must be {PERIOD_FORMS}, got {period!r}")
    year, month = int(match.group(1)), int(match.group(2))
    tz = parse_timezone(tz_name)
    try:
        first = date(year, month, 1)
        last = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
    except (ValueError, OverflowError):
        raise ConfigError(f"[[period]] {period} is outside the calendar this tool handles") from None
    return _checked(Window(first, last, tz, period))


def quarter_window(period: str, tz_name: str = "UTC") -> Window:
    """``2024-Q1`` -> January to March 2024 in ``tz_name``; label ``2024-Q1``."""
    match = _QUARTER.match(period)
    if not match:
        raise ConfigError(f"[[period]] must be {PERIOD_FORMS}, got {period!r}")
    year, quarter = int(match.group(1)), int(match.group(2))
    first = date(year, 3 * quarter - 2, 1)
    last = (date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)) - timedelta(days=1)
    return Window(first, last, parse_timezone(tz_name), f"{year}-Q{quarter}")


def relative_month(period: str, today: date) -> str:
    """``last-month``/``this-month`` -> ``YYYY-MM`` of the month before ``today``'s, or of ``today``'s."""
    if period == "this-month":
        return f"{today:%Y-%m}"
    previous = today.replace(day=1) - timedelta(days=1)
    return f"{previous:%Y-%m}"


def period_window(period: str, tz_name: str = "UTC", now: datetime | None = None) -> Window:
    """Any --period form (:data:`PERIOD_FORMS`); the relative ones count from ``now`` (default: the
    system clock) as a day in ``tz_name``."""
    if period in RELATIVE_PERIODS:
        instant = now if now is not None else datetime.now(timezone.utc)
        return month_window(relative_month(period, instant.astimezone(ZoneInfo(parse_timezone(tz_name))).date()), tz_name)
    if _QUARTER.match(period):
        return quarter_window(period, tz_name)
    return month_window(period, tz_name)


def range_window(start: str, end: str, tz_name: str = "UTC") -> Window:
    """Inclusive whole days ``start``..``end``; label ``2024-01-01_2024-01-31``."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise ConfigError(f"[[start]]/[[end]] must be YYYY-MM-DD, got {start!r} and {end!r}") from None
    if last < first:
        raise ConfigError(f"[[end]] {end} is before [[start]] {start}")
    return _checked(Window(first, last, parse_timezone(tz_name), f"{first.isoformat()}_{last.isoformat()}"))


def _checked(window: Window) -> Window:
    """ConfigError for a window at the ends of the calendar (year 1 or 9999): its instants or the
    API's extra days would fall outside what ``datetime`` can hold."""
    try:
        window.start, window.end, window.query_params()  # noqa: B018
    except (OverflowError, ValueError):
        raise ConfigError(f"the period {window.label} is outside the calendar this tool handles") from None
    return window


def resolve_window(
    period: str | None, start: str | None, end: str | None, tz_name: str, now: datetime | None = None
) -> Window:
    """Exactly one of --period or --start/--end; ``now`` anchors last-month/this-month."""
    if period and (start or end):
        raise ConfigError("give either [[period]] or [[start]]/[[end]], not both")
    if period:
        return period_window(period, tz_name, now)
    if start and end:
        return range_window(start, end, tz_name)
    raise ConfigError(f"give [[period]] ({PERIOD_FORMS}), or both [[start]] and [[end]]")


def period_not_over(window: Window, now: datetime) -> str | None:
    """The warning for a window that has not ended at ``now`` (its records may still change)."""
    if now < window.end:
        end = window.end.astimezone(window.tz)
        return f"period not over: ends {end:%Y-%m-%d %H:%M} {window.tz_name}; export again once it has ended"
    return None


def check_started(window: Window, now: datetime) -> None:
    """ConfigError for a window entirely in the future: there is nothing to export yet."""
    if now < window.start:
        start = window.start.astimezone(window.tz)
        raise ConfigError(f"the period {window.label} is in the future: it starts {start:%Y-%m-%d %H:%M} {window.tz_name}")


PeriodKind = Literal["month", "quarter", "range"]


def label_kind(label: str) -> PeriodKind | None:
    """The kind of period a label names (the one reading of labels), or None for another text."""
    if not _LABEL.fullmatch(label):
        return None
    return "range" if "_" in label else "quarter" if "Q" in label else "month"


def window_from_label(label: str, tz_name: str) -> Window:
    """The window a label names, in ``tz_name``; ConfigError for a label that names none."""
    kind = label_kind(label)
    if kind == "range":
        first, _, last = label.partition("_")
        return range_window(first, last, tz_name)
    if kind == "quarter":
        return quarter_window(label, tz_name)
    return month_window(label, tz_name)


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
