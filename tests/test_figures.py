"""The monthly report's figures (writers.figures): spend positive and exact, from the summary frames only."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.money import round_to_cents
from exporter.period import month_window
from exporter.writers import figures
from exporter.writers.figures import CurrencyFigures, LeftOut, ModelLine, compute

from factories import make_report, record, topup_record, usage_record, with_books


@pytest.fixture(scope="module")
def report():
    return make_report([
        topup_record("100.00", created_at="2024-01-02T08:00:00Z"),
        topup_record("50.00", created_at="2024-01-20T08:00:00Z"),
        usage_record("flux", "-0.0025", created_at="2024-01-02T09:00:00Z"),
        usage_record("flux", "-0.0025", created_at="2024-01-03T09:00:00Z"),
        usage_record("flux", "-0.0025", created_at="2024-01-03T10:00:00Z"),
        usage_record("veo", "-3.20", created_at="2024-01-03T11:00:00Z"),
        usage_record("veo", "-3.20", created_at="2024-01-10T11:00:00Z"),
        usage_record("wan", "-1.20", created_at="2024-01-10T12:00:00Z"),
        record("refund", "0.0025", model="flux", created_at="2024-01-11T00:00:00Z"),  # a refunded task
        record("refund", "-5.00", model=None, created_at="2024-01-12T00:00:00Z"),  # paid out: not spend
        usage_record("wan", "-0.30", status="pending", created_at="2024-01-30T00:00:00Z"),
        usage_record("wan", "-0.45", status="failed", created_at="2024-01-30T01:00:00Z"),
        topup_record("20.00", status="failed", created_at="2024-01-30T02:00:00Z"),
    ])


def test_headline_is_positive_spend_net_of_refunded_tasks(report):
    result = compute(report)
    assert (result.label, result.tz_name, result.account, result.records) == ("2024-01", "UTC", "default", 13)
    (usd,) = result.currencies
    assert usd.currency == "USD"
    assert (usd.usage_micros, usd.refunded_micros, usd.spend_micros) == (7_607_500, 2_500, 7_605_000)
    assert usd.tasks == 6 and (usd.topups_micros, usd.topups_count) == (150_000_000, 2)
    assert usd.days == 31 and usd.average_daily_micros == 245_323  # 7.605 / 31, to the micro
    assert [(m.label, m.usage_micros, m.tasks) for m in usd.models] == [
        ("veo", 6_400_000, 2), ("wan", 1_200_000, 1), ("flux", 7_500, 3),
    ]
    assert usd.models[0].share == Decimal("0.8413") and usd.models[0].unit_cost == Decimal("3.2")
    assert usd.models[2].unit_cost == Decimal("0.0025")
    daily = dict(usd.daily)
    assert len(usd.daily) == 31 and usd.daily[0] == (date(2024, 1, 1), 0)  # every day, 0 without usage
    assert (daily[date(2024, 1, 3)], daily[date(2024, 1, 10)]) == (3_205_000, 4_400_000)
    assert sum(daily.values()) == usd.usage_micros


def test_left_out_counts_and_amounts(report):
    assert compute(report).left_out == (
        LeftOut("failed", "topup", "USD", 1, 20_000_000),
        LeftOut("failed", "usage", "USD", 1, 450_000),
        LeftOut("pending", "usage", "USD", 1, 300_000),
    )
    text = figures.left_out_text(compute(report).left_out)
    assert "1 failed topup record (20.00 USD)" in text and "1 pending usage record (0.30 USD)" in text


def test_without_books_what_is_unknown_stays_unknown(report):
    (usd,) = compute(report).currencies
    assert usd.previous_spend_micros is None and usd.change_micros is None and usd.change_ratio is None
    assert usd.rollforward is not None and usd.rollforward.opening_micros is None  # computed, opening unknown
    assert usd.closing_micros is None and usd.runway_days is None
    assert usd.monthly == () and not usd.compares
    assert all(m.change_micros is None and m.change_ratio is None for m in usd.models)


def test_with_books_change_closing_runway_and_months(report):
    booked = with_books(
        report,
        history=[("2023-11", -5_000_000, 0), ("2023-12", -6_000_000, 500_000)],
        previous={"veo": -5_000_000, "flux": -10_000},
        opening=10_000_000,
        closing=150_000_000,
    )
    result = compute(booked)
    (usd,) = result.currencies
    assert result.previous_label == "2023-12" and usd.compares
    assert (usd.previous_spend_micros, usd.change_micros, usd.change_ratio) == (5_500_000, 2_105_000, Decimal("0.3827"))
    assert usd.refunded_change_micros == 497_500  # fewer refunded tasks: more spend
    assert usd.closing_micros == 150_000_000 and usd.runway_days == 611  # floor(150 * 31 / 7.605)
    assert usd.monthly == (("2023-11", 5_000_000), ("2023-12", 5_500_000), ("2024-01", 7_605_000))
    veo, wan, flux = usd.models
    assert (veo.change_micros, veo.change_ratio) == (1_400_000, Decimal("0.28"))
    assert (flux.change_micros, flux.change_ratio) == (-2_500, Decimal("-0.25"))
    assert wan.change_micros is None and wan.change_ratio is None  # not in the previous period's books


def test_history_holding_this_period_and_more_than_twelve_months(report):
    months = [(f"2023-{m:02d}", -1_000_000 * m, 0) for m in range(1, 13)] + [("2024-01", -99_000_000, 0)]
    (usd,) = compute(with_books(report, history=months)).currencies
    assert len(usd.monthly) == 12 and usd.monthly[0][0] == "2023-02"
    assert usd.monthly[-1] == ("2024-01", usd.spend_micros)  # this period from this report, not the books


@pytest.mark.parametrize("closing, runway", [(0, 0), (-1_000_000, 0), (7_605_000, 31), (7_604_999, 30)])
def test_runway_edges(report, closing, runway):
    (usd,) = compute(with_books(report, closing=closing)).currencies
    assert usd.runway_days == runway


def test_no_spend_no_runway():
    (usd,) = compute(with_books(make_report([topup_record("10.00")]), closing=10_000_000)).currencies
    assert usd.spend_micros == 0 and usd.runway_days is None and usd.closing_micros == 10_000_000


def test_a_period_not_over_is_averaged_over_its_elapsed_days(report):
    early = dataclasses.replace(report, context=dataclasses.replace(
        report.context, generated_at=datetime(2024, 1, 10, 12, tzinfo=timezone.utc)))
    assert compute(early).currencies[0].days == 10
    window = month_window("2024-01", "America/New_York")
    local = make_report([usage_record("m", "-1.00", created_at="2024-01-05T12:00:00Z")], window=window)
    late_evening = dataclasses.replace(local, context=dataclasses.replace(
        local.context, generated_at=datetime(2024, 1, 10, 3, tzinfo=timezone.utc)))
    assert compute(late_evening).currencies[0].days == 9  # still 9 January in New York


def test_the_long_tail_is_other_never_dropped():
    report = make_report([usage_record(f"m{i:02d}", f"-0.{i:02d}") for i in range(1, 16)])
    (usd,) = compute(report).currencies
    assert len(usd.models) == 11 and usd.model_count == 15
    assert [m.label for m in usd.models[:10]] == [f"m{i:02d}" for i in range(15, 5, -1)]
    other = usd.models[-1]
    assert (other.label, other.other, other.models, other.tasks) == ("Other (5 models)", True, 5, 5)
    assert other.usage_micros == 150_000 and sum(m.usage_micros for m in usd.models) == usd.usage_micros
    eleven = make_report([usage_record(f"m{i:02d}", "-0.01") for i in range(11)])
    assert [m.other for m in compute(eleven).currencies[0].models] == [False] * 11  # no "Other (1 model)"


def test_several_currencies_are_kept_apart():
    report = make_report([usage_record("a", "-1.00"), usage_record("a", "-2.00", currency="EUR")])
    eur, usd = compute(report).currencies
    assert (eur.currency, eur.spend_micros, usd.currency, usd.spend_micros) == ("EUR", 2_000_000, "USD", 1_000_000)


def test_empty_period_has_no_currency():
    result = compute(make_report([]))
    assert result.currencies == () and result.left_out == ()


@given(
    st.lists(st.integers(0, 10**10), min_size=1, max_size=25),
    st.integers(0, 10**8),
)
def test_model_table_cents_add_up_to_the_rounded_spend(usages, refunded):
    lines = tuple(ModelLine(f"m{i}", usage, 1, Decimal(0), None) for i, usage in enumerate(usages))
    currency = CurrencyFigures(
        "USD", sum(usages), refunded, len(usages), 0, 0, None, None, None, 31, lines, len(lines), (), ()
    )
    cents = currency.table_cents()
    assert sum(cents) == round_to_cents(currency.spend_micros)
    exact = [*usages, -refunded]
    assert all(abs(c * 10_000 - e) < 10_000 for c, e in zip(cents, exact))  # each within a cent


def test_text_for_people():
    assert figures.money(1_234_567_891) == "1,234.57" and figures.money(-5_000) == "-0.01"
    assert figures.signed_money(12_300_000) == "+12.30" and figures.signed_money(-4_000) == "0.00"
    assert figures.percent(Decimal("0.3827"), signed=True) == "+38.3%"
    assert figures.percent(Decimal("-0.0001"), signed=True) == "0.0%"
    assert figures.price(Decimal("0.0025")) == "0.0025" and figures.price(Decimal("1.2")) == "1.20"
    assert figures.price(Decimal("1234.5")) == "1,234.50" and figures.price(None) == "-"
