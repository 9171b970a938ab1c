"""CSV files read back with the csv module: columns, exact amounts, injection, hostile text."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from exporter.report import Reconciliation
from exporter.writers.csv_files import CsvWriter
from factories import make_report, record, topup_record, usage_record

HOSTILE = ['=HYPERLINK("http://x","y")', "+1-555", "-2+3", "@SUM(A1)", "\tlead tab", "\rlead cr",
           'comma, "quoted"\nnewline', "ünïcødé 画像 ✓"]


def write(report, folder: Path) -> dict[str, list[dict[str, str]]]:
    folder.mkdir(parents=True, exist_ok=True)
    CsvWriter().write(report, folder)
    out = {}
    for path in folder.glob("*.csv"):
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")  # no BOM: scripts read the header as "id"
        with open(path, newline="", encoding="utf-8") as handle:
            out[path.stem] = list(csv.DictReader(handle))
    return out


def test_transactions_columns_and_exact_amounts(tmp_path):
    report = make_report([
        usage_record("m", "-0.0025", created_at="2024-01-15T10:30:00.5Z", id="b"),
        topup_record("100.00", created_at="2024-01-02T00:00:00+00:00", id="a"),
        record("refund", "1e-3", model="m", id="c", created_at="2024-01-31T23:59:59.999Z"),
        usage_record("m", "-3", status="failed", id="d"),
    ])
    rows = write(report, tmp_path)["transactions"]
    assert list(rows[0]) == ["id", "created_at", "date", "type", "status", "model", "payment_method", "currency", "amount",
                            "api_key_name", "api_key_id"]
    assert [r["id"] for r in rows] == ["a", "d", "b", "c"]  # by time (d is at 10:30:00.000), then id
    assert rows[0] | {} == {"id": "a", "created_at": "2024-01-02T00:00:00.000Z", "date": "2024-01-02", "type": "topup",
                            "status": "completed", "model": "", "payment_method": "stripe", "currency": "USD", "amount": "100.00",
                            "api_key_name": "", "api_key_id": ""}
    assert rows[2]["created_at"] == "2024-01-15T10:30:00.500Z"
    assert [r["amount"] for r in rows] == ["100.00", "-3", "-0.0025", "0.001"]  # source precision, no exponent
    assert (tmp_path / "transactions.csv").read_bytes().count(b"\r\n") == 5


def test_summaries_are_exact_and_signed(tmp_path):
    report = make_report([usage_record("flux", "-0.0025") for _ in range(10_000)] + [usage_record("veo", "-3.20")]
                         + [record("refund", "0.0075", model="flux"), record("refund", "0.50", model="kling")])
    files = write(report, tmp_path)
    no_previous = {"previous_amount": "", "change": ""}  # no books: nothing to compare with
    assert files["by_model"] == [  # biggest spend first; a model with only refunds has count 0
        {"model": "flux", "currency": "USD", "count": "10000", "amount": "-25.00", "refunds": "0.0075",
         "net": "-24.9925", "share": "0.8865", "unit_cost": "0.002500", **no_previous},
        {"model": "veo", "currency": "USD", "count": "1", "amount": "-3.20", "refunds": "0.00", "net": "-3.20",
         "share": "0.1135", "unit_cost": "3.200000", **no_previous},
        {"model": "kling", "currency": "USD", "count": "0", "amount": "0.00", "refunds": "0.50", "net": "0.50",
         "share": "0.0000", "unit_cost": "0", **no_previous},
    ]
    (day,) = files["by_day"]
    assert day == {"date": "2024-01-15", "currency": "USD", "topups": "0.00", "usage": "-28.20", "refunds": "0.5075",
                   "other": "0.00", "net": "-27.6925", "count": "10003"}
    assert sum(Decimal(r["amount"]) for r in files["transactions"]) == Decimal("-27.6925")


@pytest.mark.parametrize("name", HOSTILE)
def test_formula_text_is_neutralised_and_everything_round_trips(tmp_path, name):
    report = make_report([usage_record(name, "-1.50", id=name[:3] + "-id")])
    files = write(report, tmp_path)
    (row,) = files["transactions"]
    expected = "'" + name if name.startswith(("=", "+", "-", "@", "\t", "\r")) else name
    assert row["model"] == expected
    assert files["by_model"][0]["model"] == expected
    assert row["amount"] == "-1.50"  # amounts keep their minus sign: never prefixed


def test_ids_that_look_like_formulas_are_neutralised(tmp_path):
    report = make_report([usage_record("m", "-1", id="=cmd|'/C calc'!A0"), usage_record("m", "-1", id="plain")])
    ids = sorted(r["id"] for r in write(report, tmp_path)["transactions"])
    assert ids == ["'=cmd|'/C calc'!A0", "plain"]


def test_reconciliation_csv_only_with_a_reconciliation(tmp_path):
    report = make_report([usage_record("m", "-1")])
    assert "reconciliation" not in write(report, tmp_path / "a")
    import pandas as pd

    import dataclasses

    reconciliation = pd.DataFrame([{"model": "m", "currency": "USD", "exported_micros": 1_000_000,
                                    "provider_micros": 1_020_000, "difference_micros": -20_000, "status": "mismatch"}])
    (row,) = write(dataclasses.replace(report, reconciliation=Reconciliation(reconciliation)), tmp_path / "b")["reconciliation"]
    assert row == {"model": "m", "currency": "USD", "exported": "1.00", "provider": "1.02", "difference": "-0.02", "status": "mismatch"}
