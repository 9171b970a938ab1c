"""Records that cannot be summed exactly, currencies that are not currencies, control characters,
timestamps without a zone (issue 9, items 9, 10 and 13)."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.cli import cli
from exporter.errors import DataError
from exporter.extract.endpoints import parse_provider_usage
from exporter.extract.records import parse_records
from exporter.money import MAX_AMOUNT_MICROS, SUM_LIMIT_MICROS, sums_fit
from exporter.report import Reconciliation
from exporter.writers.csv_files import CsvWriter
from factories import make_report, record, usage_record
from hostile import billing_api, raw_record, serve

KEY = "sk-record-bounds-0000"
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]")


def export(records: list, out: Path, *extra: str):
    with serve(billing_api(records)) as server:
        return CliRunner().invoke(cli, ["export", "--period", "2024-01", "--base-url", server.url, "--api-key", KEY,
                                        "--out", str(out), "--format", "csv,xlsx,quickbooks", "-q", *extra])


# -- item 9: amounts ---------------------------------------------------------------------------


def test_an_amount_beyond_a_billion_is_refused_naming_the_record(tmp_path):
    records = [raw_record(1), raw_record(2, id="huge-1", amount=Decimal("-5000000000000")),
               raw_record(3, amount=Decimal("-5000000000000"))]
    result = export(records, tmp_path)
    assert result.exit_code == 5, result.output
    assert "huge-1" in result.output and "'amount'" in result.output
    assert not (tmp_path / "2024-01").exists()


@pytest.mark.parametrize("amount", ["-1000000000.000001", "1000000001", "1e10"])
def test_the_bound_holds_on_both_paths(amount):
    with pytest.raises(DataError, match="too large"):
        parse_records([record(amount=amount, id="big")], str)  # the column-at-a-time path hands over
    with pytest.raises(DataError, match="'big'.*too large"):
        parse_records([record(amount=amount, id="big"), {"not": "a record"}], str)


def test_amounts_at_the_bound_are_kept():
    frame = parse_records([record(amount="-1000000000"), record(amount="1000000000.000000")], str)
    assert frame["amount_micros"].tolist() == [-MAX_AMOUNT_MICROS, MAX_AMOUNT_MICROS]


def test_amounts_whose_sums_would_wrap_are_refused():
    """Ten thousand bounded charges add up past int64: refused, not booked as a credit."""
    raws = [usage_record("m", "-1000000000", id=f"r{i}") for i in range(10_000)]
    with pytest.raises(DataError, match="add up"):
        make_report(raws)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-MAX_AMOUNT_MICROS, MAX_AMOUNT_MICROS), max_size=50), st.integers(0, 5_000))
def test_sums_fit_is_exact(amounts, repeat):
    column = np.array(amounts * repeat if repeat else amounts, dtype=np.int64)
    exact = sum(abs(a) for a in amounts) * (repeat or 1)
    assert sums_fit(column) == (exact <= SUM_LIMIT_MICROS)


def test_provider_costs_are_bounded_too():
    with pytest.raises(DataError, match="too large"):
        parse_provider_usage({"by_model": [{"model": "m", "cost": Decimal("2e9")}]})
    with pytest.raises(DataError, match="add up"):
        parse_provider_usage({"by_model": [{"model": "m", "cost": Decimal("999999999")}] * 3_000})


# -- item 10: currency and control characters --------------------------------------------------


@pytest.mark.parametrize("currency", ["=1+2", "usd", "US", "USDT", "US\x00", "ＵＳＤ", " USD"])
def test_a_currency_that_is_not_three_capital_letters_is_refused(tmp_path, currency):
    result = export([raw_record(1), raw_record(2, id="odd-currency", currency=currency)], tmp_path)
    assert result.exit_code == 5, result.output
    assert "odd-currency" in result.output and "'currency'" in result.output
    assert not (tmp_path / "2024-01").exists()


def test_no_csv_carries_a_raw_control_character_or_a_formula(tmp_path):
    hostile = "\x00nul\x0bvt\x1besc\x7fdel\x85nel"
    report = make_report([
        usage_record(hostile, "-1.50", id="id\x00\x01", payment_method="=pay\x0c"),
        usage_record("=SUM(A1)", "-2", id="=cmd"),
        record("refund", "0.5", model="@evil\x08", id="r1", status="completed\x07"),
    ])
    reconciliation = pd.DataFrame([
        {"model": "+provider\x00model", "currency": "USD", "exported_micros": 0, "provider_micros": 1, "difference_micros": -1,
         "status": "only_provider"},
    ])
    report = dataclasses.replace(report, reconciliation=Reconciliation(reconciliation))
    paths = CsvWriter().write(report, tmp_path)
    assert {p.name for p in paths} == {"transactions.csv", "by_model.csv", "by_day.csv", "reconciliation.csv"}
    for path in paths:
        data = path.read_bytes()
        assert not RAW_CONTROL.search(data), path.name
        for line in data.decode().split("\r\n")[1:]:
            for cell in line.split(","):
                assert not cell.lstrip('"').startswith(("=", "+", "@")), (path.name, cell)
    transactions = (tmp_path / "transactions.csv").read_text()
    assert "\ufffdnul\ufffdvt" in transactions  # visible, not silently dropped


# -- item 13: timestamps without a zone --------------------------------------------------------


def test_a_timestamp_without_a_zone_is_a_warning(tmp_path):
    records = [raw_record(1), raw_record(2, id="naive-one", created_at="2024-01-15T10:30:00")]
    result = export(records, tmp_path / "lenient")
    assert result.exit_code == 0, result.output
    assert "without a time zone" in result.output and "naive-one" in result.output
    strict = export(records, tmp_path / "strict", "--strict")
    assert strict.exit_code == 6, strict.output
    assert "without a time zone" in strict.stderr


def test_zones_are_told_apart_on_both_paths():
    stamps = ["2024-01-15T10:30:00Z", "2024-01-15T10:30:00+05:30", "2024-01-15T10:30:00.123-0800",
              "2024-01-15T10:30:00", "2024-01-15", "2024-01-15T10:30:00.5+00:00"]
    raws = [record(id=f"r{i}", created_at=stamp) for i, stamp in enumerate(stamps)]

    class Odd(dict):  # valid, but not plainly a dict: the batch takes the record-by-record path
        pass

    for batch in (raws, [Odd(raws[0]), *raws[1:]]):
        seen: list[list[int]] = []
        parse_records(batch, str, seen.append)
        assert seen == [[3, 4]]
    quiet: list[list[int]] = []
    parse_records(raws[:3], str, quiet.append)
    assert quiet == []


@pytest.mark.parametrize("field, value", [("model", []), ("status", {"a": 1}), ("payment_method", [1]), ("type", [])])
def test_fields_that_are_lists_or_objects_are_bad_data(field, value):
    """Found by the fuzz test: the column-at-a-time path hashed them and crashed with a TypeError."""
    raw = record(id="odd")
    raw[field] = value
    with pytest.raises(DataError, match=f"'odd'.*'{field}'"):
        parse_records([record(), raw], str)
