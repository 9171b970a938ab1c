"""Reconciliation with the provider's usage summary (numbers parsed exactly, as the client reads them)."""

from __future__ import annotations

import pytest

from exporter.extract import jsonexact, parse_provider_usage
from exporter.models import ProviderUsage
from exporter.errors import DataError
from exporter.books.reconcile import RECONCILIATION_COLUMNS, reconcile
from factories import make_report, usage_record

BY_MODEL = make_report(
    [
        usage_record("wavespeed-ai/flux-dev", "-10.0025"),
        usage_record("wavespeed-ai/flux-dev", "-4.9975"),
        usage_record("google/veo3", "-25.004"),
    ]
).summaries.by_model


def summary(*models: tuple[str, str], total: str | None = None) -> ProviderUsage:
    items = ",".join(f'{{"model": "{m}", "requests": 1, "cost": {c}}}' for m, c in models)
    total_part = f'"total_cost": {total}, ' if total is not None else ""
    return parse_provider_usage(
        jsonexact.loads(f'{{"period": "2024-01", "total_requests": 3, {total_part}"by_model": [{items}]}}')
    )


def test_equal_totals_are_all_ok():
    frame, warnings = reconcile(BY_MODEL, summary(("wavespeed-ai/flux-dev", "15.00"), ("google/veo3", "25.00"), total="40.00"))
    assert list(frame.columns) == RECONCILIATION_COLUMNS
    assert warnings == []
    assert frame.to_dict("records") == [
        {"model": "google/veo3", "currency": "USD", "exported_micros": 25_004_000, "provider_micros": 25_000_000,
         "difference_micros": 4_000, "status": "ok"},
        {"model": "wavespeed-ai/flux-dev", "currency": "USD", "exported_micros": 15_000_000, "provider_micros": 15_000_000,
         "difference_micros": 0, "status": "ok"},
    ]


def test_a_difference_over_a_cent_is_a_mismatch():
    frame, warnings = reconcile(BY_MODEL, summary(("wavespeed-ai/flux-dev", "15.02"), ("google/veo3", "24.99")))
    assert dict(zip(frame["model"], frame["status"])) == {"google/veo3": "mismatch", "wavespeed-ai/flux-dev": "mismatch"}
    assert frame.set_index("model").loc["wavespeed-ai/flux-dev", "difference_micros"] == -20_000
    assert len(warnings) == 2 and "wavespeed-ai/flux-dev" in warnings[1] and "-0.02" in warnings[1]


def test_exactly_one_cent_apart_is_still_ok():
    frame, warnings = reconcile(BY_MODEL, summary(("wavespeed-ai/flux-dev", "15.01"), ("google/veo3", "25.01")))
    assert set(frame["status"]) == {"ok"} and warnings == []


def test_models_on_one_side_only():
    frame, warnings = reconcile(BY_MODEL, summary(("wavespeed-ai/flux-dev", "15.00"), ("new/model", "1.25"), total="16.25"))
    status = dict(zip(frame["model"], frame["status"]))
    assert status == {"google/veo3": "only_exported", "new/model": "only_provider", "wavespeed-ai/flux-dev": "ok"}
    row = frame.set_index("model").loc["new/model"]
    assert (row["currency"], row["exported_micros"], row["provider_micros"]) == ("USD", 0, 1_250_000)
    assert any("google/veo3" in w and "not in the provider" in w for w in warnings)
    assert any("new/model" in w and "no exported usage" in w for w in warnings)
    assert any("total_cost" in w for w in warnings)  # 40.004 exported vs 16.25


def test_several_currencies_compare_per_model_and_never_add_currencies():
    by_model = make_report(
        [usage_record("a", "-1.00", currency="USD"), usage_record("b", "-2.00", currency="EUR"),
         usage_record("c", "-1.00", currency="USD"), usage_record("c", "-1.00", currency="EUR")]
    ).summaries.by_model
    frame, warnings = reconcile(by_model, summary(("a", "1.00"), ("b", "2.00"), ("c", "2.00")))
    rows = {(m, c): s for m, c, s in zip(frame["model"], frame["currency"], frame["status"])}
    assert rows == {
        ("a", "USD"): "ok", ("b", "EUR"): "ok",
        ("c", "EUR"): "only_exported", ("c", "USD"): "only_exported", ("c", ""): "only_provider",
    }
    assert any("several currencies" in w for w in warnings)


@pytest.mark.parametrize(
    "data",
    [
        '{"by_model": [{"model": "a", "cost": "1.00"}]}',  # a string, not a number
        '{"by_model": [{"model": "a", "cost": 1.0000001}]}',  # finer than a micro
        '{"by_model": [{"cost": 1.00}]}',
        '{"by_model": {"a": 1}}',
        '{"total_cost": "x", "by_model": []}',
        '[]',
    ],
)
def test_a_malformed_summary_is_a_data_error(data):
    with pytest.raises(DataError) as caught:
        parse_provider_usage(jsonexact.loads(data))
    assert caught.value.exit_code == 5
