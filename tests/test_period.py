from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from exporter.errors import ConfigError
from exporter.period import month_window, range_window, resolve_window


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
     ("2024-01", "2024-01-01", "2024-01-02", "UTC"), (None, None, None, "UTC"), ("2024-01", None, None, "Mars/Base")],
)
def test_bad_periods_are_config_errors(period, start, end, tz):
    with pytest.raises(ConfigError):
        resolve_window(period, start, end, tz)
