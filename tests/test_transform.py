"""Pure transform: exact sums, signs, statuses, currencies, local days."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.period import month_window
from factories import make_report, record, topup_record, usage_record


def test_sub_cent_prices_sum_exactly():
    report = make_report([usage_record("flux", "-0.0025") for _ in range(10_000)])
    row = report.summaries.by_model.iloc[0]
    assert (row["model"], row["count"], row["amount_micros"]) == ("flux", 10_000, -25_000_000)
    assert row["unit_cost"] == Decimal("0.002500") and row["share"] == Decimal("1.0000")


def test_frame_columns_types_and_order():
    report = make_report([
        usage_record("b", "-1", created_at="2024-01-02T00:00:00.000Z", id="z"),
        usage_record("a", "-2", created_at="2024-01-01T00:00:00.000Z", id="y"),
        usage_record("a", "-3", created_at="2024-01-02T00:00:00.000Z", id="x"),
    ])
    frame = report.summaries.transactions
    assert list(frame.columns) == ["id", "created_at", "date", "type", "status", "model",
                                   "payment_method", "currency", "amount", "amount_micros",
                                   "api_key_name", "api_key_id", "role"]
    assert list(frame["id"]) == ["y", "x", "z"]  # by time, then id
    assert str(frame["created_at"].dt.tz) == "UTC"
    assert frame["amount_micros"].dtype == "int64"


def test_only_completed_records_count_toward_spend():
    report = make_report([
        usage_record("a", "-1.00"),
        usage_record("a", "-2.00", status="pending"),
        usage_record("a", "-4.00", status="failed"),
        topup_record("50.00", status="failed"),
    ])
    assert report.summaries.by_model["amount_micros"].tolist() == [-1_000_000]
    totals = {(r.type, r.currency): (r.count, r.amount_micros) for r in report.summaries.totals.itertuples()}
    assert totals == {("usage", "USD"): (1, -1_000_000)}
    counts = {(r.type, r.status): r.count for r in report.summaries.status_counts.itertuples()}
    assert counts == {("usage", "completed"): 1, ("usage", "pending"): 1, ("usage", "failed"): 1, ("topup", "failed"): 1}
    assert len(report.summaries.transactions) == 4  # every record stays in the detail


def test_sign_contradictions_and_unknown_types_are_reported_not_changed():
    report = make_report([
        usage_record("a", "0.50", id="pos-usage"),
        topup_record("-10.00", id="neg-topup"),
        record("adjustment", "-1.00", model=None, id="adj"),
        record("refund", "0.0025", model="a"),
        record("refund", "-5.00", model=None),  # paid out to the card: a valid sign for a refund
    ])
    text = " | ".join(report.warnings)
    assert "1 usage record(s) with a sign that is not negative: pos-usage" in text
    assert "1 topup record(s) with a sign that is not positive: neg-topup" in text
    assert "unknown record type(s), kept in the detail and booked by sign: adjustment (1)" in text
    assert "refund" not in text
    amounts = dict(zip(report.summaries.transactions["id"], report.summaries.transactions["amount"]))
    assert amounts["pos-usage"] == "0.50" and amounts["neg-topup"] == "-10.00"


def test_currencies_are_never_added_together():
    report = make_report([
        usage_record("a", "-1.00"), usage_record("a", "-2.00", currency="EUR"), topup_record("10.00", currency="EUR"),
    ])
    by_model = {(r.model, r.currency): r.amount_micros for r in report.summaries.by_model.itertuples()}
    assert by_model == {("a", "USD"): -1_000_000, ("a", "EUR"): -2_000_000}
    days = {r.currency: (r.topups_micros, r.usage_micros, r.net_micros) for r in report.summaries.by_day.itertuples()}
    assert days == {"EUR": (10_000_000, -2_000_000, 8_000_000), "USD": (0, -1_000_000, -1_000_000)}
    assert any("several currencies (EUR, USD)" in w for w in report.warnings)


def test_days_are_local_to_the_time_zone():
    window = month_window("2024-01", "America/Los_Angeles")
    report = make_report([usage_record("a", "-1", created_at="2024-01-16T05:00:00.000Z")], window)
    assert report.summaries.transactions["date"].iloc[0] == pd.Timestamp("2024-01-15")
    assert report.summaries.by_day["date"].iloc[0] == pd.Timestamp("2024-01-15")


def test_by_day_columns():
    report = make_report([
        topup_record("100.00", created_at="2024-01-03T10:00:00Z"),
        usage_record("a", "-0.0025", created_at="2024-01-03T11:00:00Z"),
        record("refund", "0.0025", model="a", created_at="2024-01-03T12:00:00Z"),
        usage_record("a", "-1", created_at="2024-01-03T13:00:00Z", status="pending"),
    ])
    row = report.summaries.by_day.iloc[0]
    assert (row["topups_micros"], row["usage_micros"], row["net_micros"], row["count"]) == (100_000_000, -2_500, 100_000_000, 3)


def test_by_model_is_sorted_by_spend_with_exact_shares():
    report = make_report([usage_record("small", "-1")] + [usage_record("big", "-1") for _ in range(2)])
    assert report.summaries.by_model["model"].tolist() == ["big", "small"]
    assert report.summaries.by_model["share"].tolist() == [Decimal("0.6667"), Decimal("0.3333")]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(-5_000_000, -1),
                          st.sampled_from(["completed", "completed", "pending"])), min_size=1, max_size=60))
def test_summaries_tie_to_the_detail(items):
    report = make_report([usage_record(m, f"{Decimal(v) / 1_000_000:f}", status=s) for m, v, s in items])
    exact = sum(v for _, v, s in items if s == "completed")
    assert int(report.summaries.by_model["amount_micros"].sum()) == exact
    assert int(report.summaries.by_day["usage_micros"].sum()) == exact
    assert int(report.summaries.totals["amount_micros"].sum()) == exact
    assert int(report.summaries.by_model["count"].sum()) == sum(1 for *_, s in items if s == "completed")


@pytest.mark.parametrize("seed", range(12))
def test_grouped_sums_is_a_sorted_groupby(seed):
    """transform.grouped_sums (the summaries' numpy groupby) against pandas' own, with keys whose
    combinations outgrow int64 (renumbered on the way) and missing keys (dropped, as groupby does)."""
    from exporter.transform import grouped_sums, text_key

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    sizes = rng.choice([1, 3, 40, 70_000], size=int(rng.integers(1, 6)))
    frame = pd.DataFrame({
        f"k{i}": pd.Categorical.from_codes(rng.integers(-1 if seed % 3 == 0 else 0, size, n),
                                          categories=pd.Index([f"v{j:06d}" for j in range(size)], dtype="str"))
        for i, size in enumerate(sizes)
    })
    amounts = rng.integers(-10**12, 10**12, n)
    rows = rng.random(n) < 0.8
    got = grouped_sums(rows, [text_key(frame[c]) for c in frame.columns], amounts)
    expected = (frame[rows].assign(a=amounts[rows]).groupby(list(frame.columns), observed=True, sort=True)
                .agg(sum=("a", "sum"), size=("a", "size")).reset_index())
    expected = expected.astype({c: "str" for c in frame.columns})
    pd.testing.assert_frame_equal(got, expected.astype({"sum": "int64", "size": "int64"}), check_dtype=False)
