from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from exporter.errors import ConfigError
from exporter.period import (
    check_started,
    month_window,
    period_not_over,
    quarter_window,
    range_window,
    resolve_window,
    Window,
    window_from_label,
)


def test_month_in_utc():
    w = month_window("2024-02")
    assert (w.first_day, w.last_day, w.label) == (date(2024, 2, 1), date(2024, 2, 29), "2024-02")
    assert w.start == datetime(2024, 2, 1, tzinfo=timezone.utc)
    assert w.end == datetime(2024, 3, 1, tzinfo=timezone.utc)


def test_december_rolls_into_the_next_year():
    assert month_window("2023-12").end == datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_local_midnights_follow_daylight_saving():
    w = month_window("2024-03", "Europe/Berlin")  # CET -> CEST on 31 March
    assert w.start == datetime(2024, 2, 29, 23, tzinfo=timezone.utc)
    assert w.end == datetime(2024, 3, 31, 22, tzinfo=timezone.utc)


def test_boundary_instants():
    w = month_window("2024-01")
    assert w.contains(datetime(2024, 1, 31, 23, 59, 59, 999000, tzinfo=timezone.utc))
    assert not w.contains(datetime(2024, 2, 1, tzinfo=timezone.utc))
    assert w.contains(datetime(2024, 1, 1, tzinfo=timezone.utc))


def test_query_is_wider_than_the_period_on_both_sides():
    assert month_window("2024-01").query_params() == {"start_date": "2023-12-30", "end_date": "2024-02-02"}


def test_range_label_and_inclusive_end():
    w = range_window("2024-01-01", "2024-01-31")
    assert w.label == "2024-01-01_2024-01-31"
    assert w.end == datetime(2024, 2, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "period, start, end, tz",
    [("2024-13", None, None, "UTC"), ("24-01", None, None, "UTC"), (None, "2024-02-01", "2024-01-01", "UTC"),
     ("2024-01", "2024-01-01", "2024-01-02", "UTC"), (None, None, None, "UTC"), ("2024-01", None, None, "Mars/Base"),
     ("2024-Q5", None, None, "UTC"), ("2024-Q0", None, None, "UTC"), ("next-month", None, None, "UTC"),
     ("last-month", None, None, "Mars/Base")],
)
def test_bad_periods_are_config_errors(period, start, end, tz):
    with pytest.raises(ConfigError):
        resolve_window(period, start, end, tz)


@pytest.mark.parametrize(
    "period, first, last",
    [("2024-Q1", date(2024, 1, 1), date(2024, 3, 31)), ("2024-q2", date(2024, 4, 1), date(2024, 6, 30)),
     ("2023-Q3", date(2023, 7, 1), date(2023, 9, 30)), ("2023-Q4", date(2023, 10, 1), date(2023, 12, 31))],
)
def test_quarters(period, first, last):
    w = resolve_window(period, None, None, "UTC")
    assert (w.first_day, w.last_day, w.label) == (first, last, period.upper())
    assert w.kind == "quarter" and month_window("2024-01").kind == "month"
    assert range_window("2024-01-01", "2024-03-31").kind == "range"  # the days of a quarter, named as a range
    assert Window(date(2024, 1, 1), date(2024, 2, 29), "UTC", "2024-Q1").kind == "range"  # a label that does not fit
    assert window_from_label("2024-Q1", "Europe/Berlin") == quarter_window("2024-Q1", "Europe/Berlin")
    assert window_from_label("2024-01-05_2024-02-04", "UTC") == range_window("2024-01-05", "2024-02-04")
    assert quarter_window("2024-Q1", "Europe/Berlin").start == datetime(2023, 12, 31, 23, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "now, tz, last, this",
    [
        (datetime(2024, 2, 10, 12, tzinfo=timezone.utc), "UTC", "2024-01", "2024-02"),
        (datetime(2024, 1, 1, 0, tzinfo=timezone.utc), "UTC", "2023-12", "2024-01"),
        # 02:00 on 1 March in UTC is still 29 February in Los Angeles
        (datetime(2024, 3, 1, 2, tzinfo=timezone.utc), "America/Los_Angeles", "2024-01", "2024-02"),
        (datetime(2024, 2, 29, 23, tzinfo=timezone.utc), "Asia/Tokyo", "2024-02", "2024-03"),
    ],
)
def test_last_and_this_month_count_from_today_in_the_time_zone(now, tz, last, this):
    assert resolve_window("last-month", None, None, tz, now) == month_window(last, tz)
    assert resolve_window("this-month", None, None, tz, now) == month_window(this, tz)


def test_a_period_is_over_at_its_end_instant_and_future_before_its_start():
    w = month_window("2024-01", "America/New_York")  # 05:00Z to 05:00Z
    assert period_not_over(w, datetime(2024, 2, 1, 5, tzinfo=timezone.utc)) is None
    warning = period_not_over(w, datetime(2024, 2, 1, 4, 59, tzinfo=timezone.utc))
    assert warning == "period not over: ends 2024-02-01 00:00 America/New_York; export again once it has ended"
    check_started(w, datetime(2024, 1, 1, 5, tzinfo=timezone.utc))  # the first instant: started
    with pytest.raises(ConfigError, match="2024-01 is in the future: it starts 2024-01-01 00:00 America/New_York"):
        check_started(w, datetime(2024, 1, 1, 4, 59, tzinfo=timezone.utc))
