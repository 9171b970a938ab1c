"""FOCUS 1.2 focus.csv read back: column set, types, nullability, allowed values, and the ties."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.books.mapping_toml import load_mapping
from exporter.cli import cli
from exporter.errors import DataError
from exporter.books.adjustments import adjustment_roles
from exporter.models import ADJUSTMENT_COLUMNS
from exporter.period import month_window, window_from_label
from exporter.writers.focus import FOCUS_COLUMNS, HEADER, FocusWriter
from factories import make_report, record, topup_record, usage_record

# The FOCUS 1.2 columns that MUST be present in every dataset (docs/focus.md), and what we add
MANDATORY = {
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
}
CONDITIONAL_OR_RECOMMENDED = {"ChargeFrequency", "ConsumedQuantity", "ConsumedUnit", "InvoiceId", "ServiceSubcategory", "SkuId",
                             "SubAccountId", "SubAccountName"}
NOT_NULL = MANDATORY - {"ChargeClass", "PricingQuantity", "PricingUnit"} | {"ChargeFrequency", "ServiceSubcategory"}
DECIMAL = ["BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "PricingQuantity", "ConsumedQuantity"]
DATETIME = ["BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"]
CHARGE_CATEGORIES = {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}
FREQUENCIES = {"One-Time", "Recurring", "Usage-Based"}
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")  # FOCUS NumericFormat as we write it: no exponent, no '+'


def read_focus(path: Path) -> list[dict[str, str]]:
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == data.count(b"\n")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        assert header == HEADER
        return [dict(zip(header, row)) for row in reader]


def check_rules(rows: list[dict[str, str]]) -> None:
    """The FOCUS 1.2 rules that matter, row by row (the validator's in spirit, without it)."""
    for row in rows:
        for column in NOT_NULL:
            assert row[column].strip(), (column, row)
        for column in DECIMAL:
            assert row[column] == "" or NUMBER.match(row[column]), (column, row[column])
        for column in DATETIME:
            assert STAMP.match(row[column]), (column, row[column])
        assert row["ChargeCategory"] in CHARGE_CATEGORIES and row["ChargeFrequency"] in FREQUENCIES
        assert row["ChargeClass"] in ("", "Correction")
        assert row["ServiceCategory"] == "AI and Machine Learning" and row["ServiceSubcategory"] == "Generative AI"
        assert row["ChargePeriodStart"] < row["ChargePeriodEnd"] and row["BillingPeriodStart"] < row["BillingPeriodEnd"]
        assert row["BillingCurrency"] in ("USD", "EUR")
        assert (row["PricingUnit"] == "") == (row["PricingQuantity"] == "")
        assert (row["ConsumedUnit"] == "") == (row["ConsumedQuantity"] == "")
        correction = row["ChargeClass"] == "Correction"
        usage = row["ChargeCategory"] == "Usage"
        assert (row["ConsumedQuantity"] != "") == (usage and not correction)  # null unless usage
        if row["ChargeCategory"] in ("Usage", "Purchase") and not correction:
            assert row["PricingQuantity"] != ""
        if row["ChargeCategory"] == "Purchase":
            assert row["EffectiveCost"] == "0.00" and row["ChargeFrequency"] != "Usage-Based"
            assert row["ListCost"] == row["ContractedCost"] == row["BilledCost"]
        if row["ChargeCategory"] in ("Credit", "Adjustment"):
            assert row["EffectiveCost"] == row["BilledCost"] == row["ListCost"] == row["ContractedCost"]
        assert row["InvoiceId"] == ""  # no invoice is issued for these charges
        assert all(not row[c].startswith(("=", "+", "@", "\t", "\r")) for c in ("ChargeDescription", "SkuId", "x_PaymentMethod"))
        assert "\n" not in row["ChargeDescription"]


def write_focus(report, folder: Path) -> list[dict[str, str]]:
    assert FocusWriter().write(report, folder) == [folder / "focus.csv"]
    return read_focus(folder / "focus.csv")


def test_columns_are_focus_1_2_first_then_x_columns():
    assert MANDATORY | CONDITIONAL_OR_RECOMMENDED == set(FOCUS_COLUMNS)
    assert FOCUS_COLUMNS == sorted(FOCUS_COLUMNS)
    vendor = HEADER[len(FOCUS_COLUMNS):]
    assert vendor and all(re.fullmatch(r"x_[A-Z][A-Za-z]+", name) for name in vendor)
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", name) for name in FOCUS_COLUMNS)


def test_sandbox_usage_effective_cost_ties_to_by_model(api_args, tmp_path):
    result = CliRunner().invoke(cli, ["export", "--period", "2024-01", "--out", str(tmp_path), *api_args,
                                      "--format", "csv,focus"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = read_focus(tmp_path / "2024-01" / "focus.csv")
    check_rules(rows)
    with open(tmp_path / "2024-01" / "by_model.csv", newline="", encoding="utf-8") as handle:
        by_model = list(csv.DictReader(handle))
    usage = [r for r in rows if r["ChargeCategory"] == "Usage"]
    assert sum(Decimal(r["EffectiveCost"]) for r in usage) == -sum(Decimal(r["amount"]) for r in by_model)
    assert sum(Decimal(r["ConsumedQuantity"]) for r in usage) == sum(int(r["count"]) for r in by_model)
    assert {Decimal(r["BilledCost"]) for r in usage} == {0}
    per_model: dict[str, Decimal] = defaultdict(Decimal)
    for r in usage:
        per_model[r["SkuId"]] += Decimal(r["EffectiveCost"])
    assert per_model == {r["model"]: -Decimal(r["amount"]) for r in by_model if int(r["count"])}
    refunds = {r["model"]: Decimal(r["refunds"]) for r in by_model if Decimal(r["refunds"])}
    credits: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r["ChargeCategory"] == "Credit":
            credits[r["SkuId"]] -= Decimal(r["EffectiveCost"])
    assert refunds and credits == refunds
    # purchases carry what was paid, and the billing period is the export window
    with open(tmp_path / "2024-01" / "transactions.csv", newline="", encoding="utf-8") as handle:
        topups = [t for t in csv.DictReader(handle) if t["type"] == "topup" and t["status"] == "completed"]
    purchases = [r for r in rows if r["ChargeCategory"] == "Purchase"]
    assert sorted(r["x_TransactionId"] for r in purchases) == sorted(t["id"] for t in topups)
    assert sum(Decimal(r["BilledCost"]) for r in purchases) == sum(Decimal(t["amount"]) for t in topups)
    assert {(r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in rows} == {("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")}


def test_usage_is_summed_exactly_per_utc_day_model_and_currency(tmp_path):
    raws = [
        usage_record("m/a", "-0.0025", created_at="2024-01-05T01:00:00Z"),
        usage_record("m/a", "-0.0025", created_at="2024-01-05T23:59:59.999Z"),
        usage_record("m/a", "-0.0025", created_at="2024-01-06T00:00:00Z"),
        usage_record("m/b", "-0.0045", created_at="2024-01-05T12:00:00Z"),
        usage_record("m/a", "-1.10", created_at="2024-01-05T12:00:00Z", currency="EUR"),
        usage_record("m/a", "-9.99", created_at="2024-01-05T12:00:00Z", status="failed"),
    ]
    rows = write_focus(make_report(raws), tmp_path)
    check_rules(rows)
    got = {(r["ChargePeriodStart"], r["SkuId"], r["BillingCurrency"]): (r["EffectiveCost"], r["PricingQuantity"]) for r in rows}
    assert got == {
        ("2024-01-05T00:00:00Z", "m/a", "USD"): ("0.005", "2.0"),
        ("2024-01-06T00:00:00Z", "m/a", "USD"): ("0.0025", "1.0"),
        ("2024-01-05T00:00:00Z", "m/b", "USD"): ("0.0045", "1.0"),
        ("2024-01-05T00:00:00Z", "m/a", "EUR"): ("1.10", "1.0"),
    }
    assert {r["PricingUnit"] for r in rows} == {"Requests"} and {r["ChargeFrequency"] for r in rows} == {"Usage-Based"}


def test_days_are_utc_days_cut_to_the_export_window(tmp_path):
    # Los Angeles: the window starts at 08:00Z on Jan 1; a record at 03:00Z on Jan 15 is local Jan 14
    window = month_window("2024-01", "America/Los_Angeles")
    raws = [usage_record("m", "-1.00", created_at="2024-01-01T09:00:00Z"),
            usage_record("m", "-2.00", created_at="2024-01-15T03:00:00Z"),
            usage_record("m", "-4.00", created_at="2024-02-01T07:00:00Z")]
    report = make_report(raws, window)
    assert report.summaries.transactions["date"].dt.day.tolist() == [1, 14, 31]  # local days differ
    rows = write_focus(report, tmp_path)
    check_rules(rows)
    periods = [(r["ChargePeriodStart"], r["ChargePeriodEnd"], r["EffectiveCost"]) for r in rows]
    assert periods == [
        ("2024-01-01T08:00:00Z", "2024-01-02T00:00:00Z", "1.00"),
        ("2024-01-15T00:00:00Z", "2024-01-16T00:00:00Z", "2.00"),
        ("2024-02-01T00:00:00Z", "2024-02-01T08:00:00Z", "4.00"),
    ]
    assert {(r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in rows} == {("2024-01-01T08:00:00Z", "2024-02-01T08:00:00Z")}


def test_every_kind_of_record_has_its_charge_category(tmp_path):
    raws = [
        topup_record("100.00", payment_method="stripe", id="tu_1", created_at="2024-01-02T10:00:00Z"),
        record("refund", "-20.00", model=None, payment_method="card", id="po_1", created_at="2024-01-03T10:00:00Z"),
        record("refund", "0.0125", model="m/a", id="rt_1", created_at="2024-01-04T10:00:00Z"),
        record("refund", "0.0125", model="m/a", id="rt_2", created_at="2024-01-04T11:00:00Z"),
        record("refund", "5.00", model=None, id="gc_1", created_at="2024-01-04T12:00:00Z"),
        record("bonus", "-1.50", model=None, id="sx_1", created_at="2024-01-05T10:00:00Z"),
        usage_record("m/a", "-0.0125", created_at="2024-01-04T09:00:00Z"),
    ]
    rows = write_focus(make_report(raws), tmp_path)
    check_rules(rows)
    got = [(r["ChargeCategory"], r["BilledCost"], r["EffectiveCost"], r["PricingQuantity"], r["PricingUnit"], r["SkuId"],
            r["x_TransactionId"], r["x_RecordCount"]) for r in rows]
    assert got == [
        ("Purchase", "100.00", "0.00", "100.00", "USD", "prepaid-credit", "tu_1", "1"),
        ("Purchase", "-20.00", "0.00", "-20.00", "USD", "prepaid-credit", "po_1", "1"),
        ("Credit", "-5.00", "-5.00", "", "", "", "", "1"),
        ("Credit", "-0.025", "-0.025", "", "", "m/a", "", "2"),
        ("Usage", "0.00", "0.0125", "1.0", "Requests", "m/a", "", "1"),
        ("Adjustment", "1.50", "1.50", "", "", "", "sx_1", "1"),
    ]
    assert [r["x_PaymentMethod"] for r in rows][:2] == ["stripe", "card"]


def test_postpaid_usage_is_billed_as_it_is_used(tmp_path):
    text = (Path(__file__).parent / "golden" / "accounts_sample.toml").read_text().replace("postpaid = false", "postpaid = true")
    (tmp_path / "m.toml").write_text(text)
    rows = write_focus(make_report([usage_record("m", "-2.50")], mapping=load_mapping(tmp_path / "m.toml")), tmp_path / "out")
    assert [(r["BilledCost"], r["EffectiveCost"]) for r in rows] == [("2.50", "2.50")]


def adjustments(*rows: dict) -> pd.DataFrame:
    """Adjustment rows; each closed period's instants from its label in its own zone (``tz``, default UTC)."""
    defaults = {"model": "", "currency": "USD", "status_before": "completed", "status_after": "completed",
                "amount_before_micros": 0, "amount_after_micros": 0, "delta_micros": 0}
    full = []
    for row in rows:
        window = window_from_label(row["period"], row.pop("tz", "UTC"))
        full.append({**defaults, "period_start": window.start, "period_end": window.end, **row})
    frame = pd.DataFrame(full, columns=ADJUSTMENT_COLUMNS)
    frame = frame.astype({"period_start": "datetime64[us, UTC]", "period_end": "datetime64[us, UTC]"})
    return frame.assign(role=adjustment_roles(frame))


def test_late_changes_to_closed_periods_are_correction_rows(tmp_path):
    report = make_report([usage_record("m/a", "-1.00")])
    frame = adjustments(
        {"id": "late_u", "period": "2023-12", "change": "arrived_late", "type": "usage", "model": "m/a",
         "amount_after_micros": -2_500, "delta_micros": -2_500},
        {"id": "rev_u", "period": "2023-11", "change": "reversed", "type": "usage", "model": "m/b",
         "status_after": "failed", "amount_before_micros": -40_000, "amount_after_micros": -40_000, "delta_micros": 40_000},
        {"id": "late_t", "period": "2023-12-01_2023-12-15", "change": "completed_late", "type": "topup",
         "status_before": "pending", "amount_before_micros": 50_000_000, "amount_after_micros": 50_000_000, "delta_micros": 50_000_000},
        {"id": "gone", "period": "2023-12", "change": "missing", "type": "usage", "model": "m/a",
         "amount_before_micros": -2_500, "amount_after_micros": -2_500, "delta_micros": 0},
        {"id": "q_u", "period": "2023-Q3", "change": "amount_changed", "type": "usage", "model": "m/a",
         "amount_before_micros": -1_000, "amount_after_micros": -2_000, "delta_micros": -1_000},  # a closed quarter
        {"id": "berlin", "period": "2023-10", "tz": "Europe/Berlin", "change": "arrived_late", "type": "usage",
         "model": "m/a", "amount_after_micros": -1_000, "delta_micros": -1_000},  # closed in another zone
    )
    rows = write_focus(replace(report, booked=replace(report.booked, adjustments=frame)), tmp_path)
    check_rules(rows)
    corrections = [r for r in rows if r["ChargeClass"] == "Correction"]
    got = {r["x_TransactionId"]: (r["ChargeCategory"], r["BilledCost"], r["EffectiveCost"], r["ChargePeriodStart"],
                                  r["ChargePeriodEnd"], r["x_CorrectedPeriod"], r["x_CorrectionReason"], r["PricingQuantity"])
           for r in corrections}
    assert got == {
        "late_u": ("Usage", "0.00", "0.0025", "2023-12-01T00:00:00Z", "2024-01-01T00:00:00Z", "2023-12", "arrived_late", ""),
        "rev_u": ("Usage", "0.00", "-0.04", "2023-11-01T00:00:00Z", "2023-12-01T00:00:00Z", "2023-11", "reversed", ""),
        "late_t": ("Purchase", "50.00", "0.00", "2023-12-01T00:00:00Z", "2023-12-16T00:00:00Z", "2023-12-01_2023-12-15",
                   "completed_late", ""),
        "q_u": ("Usage", "0.00", "0.001", "2023-07-01T00:00:00Z", "2023-10-01T00:00:00Z", "2023-Q3", "amount_changed", ""),
        "berlin": ("Usage", "0.00", "0.001", "2023-09-30T22:00:00Z", "2023-10-31T23:00:00Z", "2023-10", "arrived_late", ""),
    }  # "missing" moved no money: no row
    assert {(r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in corrections} == {("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")}
    assert all("closed period" in r["ChargeDescription"] for r in corrections)
    assert [r["ChargeClass"] for r in rows if r["x_TransactionId"] == ""] == [""]  # this period's usage is no correction
    empty = write_focus(replace(report, booked=replace(report.booked, adjustments=adjustments())), tmp_path / "none")
    assert [r["ChargeClass"] for r in empty] == [""]


def test_hostile_text_is_one_line_and_never_a_formula(tmp_path):
    raws = [usage_record('=cmd|" /C calc"!A0\tx\ny', "-1.00"), topup_record("5.00", payment_method="@SUM(1)\r\n")]
    rows = write_focus(make_report(raws), tmp_path)
    check_rules(rows)
    assert any(r["SkuId"].startswith("cmd|") for r in rows)


def test_an_empty_period_writes_the_header_only(tmp_path):
    assert write_focus(make_report([usage_record("m", "-1.00", status="failed")]), tmp_path) == []


def test_a_currency_focus_cannot_carry_is_refused(tmp_path):
    with pytest.raises(DataError, match="ISO 4217"):
        FocusWriter().write(make_report([usage_record("m", "-1.00", currency="CREDITS")]), tmp_path)


_KINDS = st.sampled_from([("usage", -1, "m/a"), ("usage", -1, "m/b"), ("topup", 1, None), ("refund", 1, "m/a"),
                          ("refund", 1, None), ("refund", -1, None)])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_KINDS, st.integers(1, 5_000_000), st.integers(0, 30 * 24 - 1), st.sampled_from(["USD", "EUR"])),
                min_size=1, max_size=40))
def test_every_record_lands_in_exactly_one_row_and_the_sums_tie(tmp_path_factory, records):
    raws = []
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for (kind, sign, model), micros, hour, currency in records:
        amount = Decimal(sign * micros) / 1_000_000
        stamp = f"2024-01-{1 + hour // 24:02d}T{hour % 24:02d}:30:00Z"
        raws.append(record(kind, str(amount), model=model, currency=currency, created_at=stamp,
                           payment_method="card" if kind != "usage" and model is None else None))
        category = {"usage": "Usage", "topup": "Purchase"}.get(kind) or ("Credit" if sign > 0 else "Purchase")
        expected[(category, currency)] += amount
    rows = write_focus(make_report(raws), tmp_path_factory.mktemp("focus"))
    check_rules(rows)
    got: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        cost = Decimal(row["BilledCost"] if row["ChargeCategory"] == "Purchase" else row["EffectiveCost"])
        got[(row["ChargeCategory"], row["BillingCurrency"])] += cost
    # purchases carry the amount paid in; usage and credits carry minus their effect on the balance
    assert got == {key: (value if key[0] == "Purchase" else -value) for key, value in expected.items()}
    assert sum(int(row["x_RecordCount"]) for row in rows) == len(raws)
