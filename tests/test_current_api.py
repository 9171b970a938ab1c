"""The current billing API (POST billings/search) end to end, against the sandbox serving it on loopback.

docs/api.md. The sandbox derives its current records from the same dataset as its legacy ones
(same ids; no top-ups; failed tasks unserved), so each test can state what the legacy export of
the same month says and require the current export to agree.
"""

from __future__ import annotations

import csv
import re
import gzip
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.errors import DataError
from exporter.extract.generations import MAX_TASK_PRICE, canonical
from exporter.period import month_window
from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread

SEARCH = "/api/v3/billings/search"


@pytest.fixture
def current() -> Iterator[SandboxServer]:
    with serve_in_thread(api="current") as server:
        yield server


def export(server: SandboxServer, out: Path, *extra: str, period: str = "2024-01"):
    args = ["export", "--period", period, "--out", str(out), "--base-url", server.url, "--api-key", DEMO_KEY,
            "--backoff", "0.01", "--quiet", *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def january(server: SandboxServer) -> list:
    window = month_window("2024-01")
    return [r for r in server.dataset.records if window.start <= r.created_at < window.end]


def served(server: SandboxServer) -> dict[str, tuple[str, Decimal, str]]:
    """What the current API serves of January: id -> (type, signed amount, status), from the dataset."""
    statuses = {"completed": "completed", "pending": "pending"}
    return {r.id: (r.type, r.amount, statuses[r.status]) for r in january(server)
            if r.type in ("usage", "refund") and r.status in statuses}


# -- the record mapping, on its own ------------------------------------------------------


def item(**fields):
    base = {"uuid": "b1", "billing_type": "deduct", "price": Decimal("0.0025"), "created_at": "2024-01-02T03:04:05.678Z",
            "order": {"uuid": "o1", "state": "done", "ak_id": "ak_order"}, "prediction": {"uuid": "p1", "model_uuid": "m/x"},
            "access_key_name": "prod-app", "access_key_id": "ak_1"}
    return {**base, **fields}


@pytest.mark.parametrize("kind, price, amount, type_", [
    ("deduct", Decimal("0.0025"), Decimal("-0.0025"), "usage"),
    ("deduct", Decimal("-0.0025"), Decimal("-0.0025"), "usage"),  # the sign on the wire does not matter
    ("refund", Decimal("-0.0025"), Decimal("0.0025"), "refund"),
    ("refund", Decimal("0.0025"), Decimal("0.0025"), "refund"),
    ("bonus", Decimal("-1.5"), Decimal("-1.5"), "bonus"),  # unknown types keep their sign (suspense)
])
def test_the_direction_comes_from_the_billing_type(kind, price, amount, type_):
    record = canonical(item(billing_type=kind, price=price), 1, 1)
    assert (record["type"], record["amount"]) == (type_, amount)


@pytest.mark.parametrize("order, status", [
    ({"state": "pre"}, "pending"), ({"state": "done"}, "completed"), ({"state": "cancelled"}, "cancelled"), ({}, "completed"),
])
def test_the_status_comes_from_the_order(order, status):
    assert canonical(item(order=order), 1, 1)["status"] == status


def test_keys_prediction_and_times_are_kept():
    record = canonical(item(updated_at="1704164645678"), 1, 1)
    assert record["model"] == "m/x" and record["currency"] == "USD"
    assert (record["api_key_name"], record["api_key_id"], record["prediction_id"]) == ("prod-app", "ak_1", "p1")
    assert record["updated_at"] == "2024-01-02T03:04:05.678Z"  # milliseconds since the epoch, as ISO 8601
    other = item(access_key_uuid="ak_2")
    del other["access_key_id"]
    assert canonical(other, 1, 1)["api_key_id"] == "ak_2"
    del other["access_key_uuid"]
    assert canonical(other, 1, 1)["api_key_id"] == "ak_order"


def test_an_implausible_price_is_bad_data_naming_the_record():
    assert canonical(item(price=MAX_TASK_PRICE), 1, 1)["amount"] == -MAX_TASK_PRICE
    with pytest.raises(DataError, match=r"'b1' \(page 3, item 7\).*24300"):
        canonical(item(price=Decimal(24300)), 3, 7)


# -- end to end ---------------------------------------------------------------------------


def test_current_api_export_books_january_exactly(current, tmp_path):
    result = export(current, tmp_path)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "2024-01"
    expected = served(current)
    got = {row["id"]: (row["type"], Decimal(row["amount"]), row["status"]) for row in rows(folder / "transactions.csv")}
    assert got == expected  # every record once, signed by its type
    assert manifest(folder)["source"]["api"] == "current"
    # pending ("pre") charges are not booked: by_model holds completed usage only, to the micro
    usage: dict[str, Decimal] = {}
    for r in january(current):
        if r.type == "usage" and r.status == "completed":
            usage[r.model] = usage.get(r.model, Decimal(0)) + r.amount
    by_model = {row["model"]: Decimal(row["amount"]) for row in rows(folder / "by_model.csv")}
    assert {m: by_model[m] for m in usage} == usage
    assert all(row["status"] == "ok" for row in rows(folder / "reconciliation.csv"))  # usage_stats ties out
    archived = [json.loads(line) for line in gzip.open(folder / "source" / "billings.jsonl.gz", "rt")]
    assert {line["id"] for line in archived} == set(expected)
    assert all(line["api_key_name"] in ("prod-app", "staging", "client-acme") for line in archived)


def test_current_and_legacy_exports_agree_on_usage(current, tmp_path):
    with serve_in_thread(api="legacy") as legacy:
        assert export(legacy, tmp_path / "legacy").exit_code == 0
    assert export(current, tmp_path / "current").exit_code == 0
    legacy_models = (tmp_path / "legacy" / "2024-01" / "by_model.csv").read_bytes()
    current_models = (tmp_path / "current" / "2024-01" / "by_model.csv").read_bytes()
    assert current_models == legacy_models
    assert manifest(tmp_path / "legacy" / "2024-01")["source"]["api"] == "legacy"  # detected: no current path there


def test_forcing_the_current_api_on_a_legacy_server_names_the_path(tmp_path):
    with serve_in_thread(api="legacy") as legacy:
        result = export(legacy, tmp_path, "--api", "current")
    assert result.exit_code == 4
    assert SEARCH in result.stderr and not (tmp_path / "2024-01").exists()


@pytest.mark.parametrize("faults", [
    {"time_form": "rfc3339"},  # the documented milliseconds refused: asked again in RFC 3339
    {"time_form": "ms"},
    {"pagination": "has_more"},  # no total: pages one after another
    {"price_sign": "negative"},
    {"price_sign": "signed"},
    {"duplicate_across_pages": True},
])
def test_the_documented_inconsistencies_give_the_same_records(current, tmp_path, faults):
    for name, value in faults.items():
        setattr(current.faults, name, value)
    result = export(current, tmp_path, "--page-size", "50")
    assert result.exit_code == 0, result.output
    got = {row["id"]: (row["type"], Decimal(row["amount"]), row["status"]) for row in rows(tmp_path / "2024-01" / "transactions.csv")}
    assert got == served(current)


def test_the_working_time_form_is_kept_for_the_run(current, tmp_path):
    current.faults.time_form = "rfc3339"
    assert export(current, tmp_path, "--page-size", "50").exit_code == 0
    searches = [r for r in current.requests if r.path == SEARCH]
    refused = [r for r in searches if r.status == 400]
    assert len(refused) == 1  # one refusal, then RFC 3339 for every later page of the run
    assert all("T" in r.query["start_time"] for r in searches if r.status == 200)


def test_an_absurd_price_stops_the_export_naming_the_record(current, tmp_path):
    victim = next(iter(served(current)))
    current.faults.absurd_price = victim
    result = export(current, tmp_path)
    assert result.exit_code == 5
    assert victim in result.stderr and "24300" in result.stderr
    assert not (tmp_path / "2024-01").exists()


def opening_of(server: SandboxServer, period: str) -> Decimal:
    start = month_window(period).start
    done = [r.amount for r in server.dataset.records if r.created_at < start and r.status == "completed"]
    return server.dataset.opening_balance + sum(done, Decimal(0))


def topups_from(server: SandboxServer, period: str) -> Decimal:
    start = month_window(period).start
    return sum((r.amount for r in server.dataset.records
                if r.type == "topup" and r.status == "completed" and r.created_at >= start), Decimal(0))


def test_top_ups_are_derived_from_the_balance_and_said_so(current, tmp_path):
    """No top-up records: given the opening, the balance tells the period's top-ups exactly (the
    sandbox's last month: nothing happened after it)."""
    result = export(current, tmp_path, "--opening-balance", str(opening_of(current, "2024-03")),
                    "--format", "csv,beancount,html", period="2024-03")
    assert result.exit_code == 0, result.output
    pack = manifest(tmp_path / "2024-03")
    (roll,) = pack["rollforward"]
    assert Decimal(roll["topups"]) == topups_from(current, "2024-03") > 0
    assert roll["topups_source"].startswith("derived from the provider's balance")
    parts = ("opening", "topups", "usage", "refunds")
    assert Decimal(roll["closing"]) == sum(Decimal(roll[part]) for part in parts)
    assert not any(row["type"] == "topup" for row in rows(tmp_path / "2024-03" / "transactions.csv"))  # nothing invented
    html = (tmp_path / "2024-03" / "report.html").read_text(encoding="utf-8")
    shown = f"{topups_from(current, '2024-03').quantize(Decimal('0.01')):,}"
    assert re.search(rf"Top-ups</dt>\s*<dd[^>]*>{re.escape(shown)}<", html) and "derived from the provider" in html
    ledger = (tmp_path / "2024-03" / "wavespeed_2024-03.beancount").read_text(encoding="utf-8")
    assert not re.search(r"^\d{4}-\d{2}-\d{2} balance ", ledger, re.M) and "no balance assertion for USD" in ledger


def test_derived_top_ups_include_those_made_before_the_balance_was_read(current, tmp_path):
    """The documented limit (docs/booking.md): top-ups after the period land in the derived figure."""
    result = export(current, tmp_path, "--opening-balance", str(opening_of(current, "2024-01")), "--format", "csv")
    assert result.exit_code == 0, result.output
    (roll,) = manifest(tmp_path / "2024-01")["rollforward"]
    assert Decimal(roll["topups"]) == topups_from(current, "2024-01")  # January's and every later one


def test_top_ups_are_unknown_without_an_opening(current, tmp_path):
    result = export(current, tmp_path, "--format", "csv", period="2024-03")
    assert result.exit_code == 0, result.output
    (roll,) = manifest(tmp_path / "2024-03")["rollforward"]
    assert roll["opening"] is None and roll["closing"] is None
    assert roll["topups_source"].startswith("unknown") and "--topups" in roll["topups_source"]


def test_top_ups_from_the_receipts_are_booked_and_tie_out(current, tmp_path):
    receipts = [r for r in january(current) if r.type == "topup" and r.status == "completed"]
    later = [r for r in current.dataset.records if r.type == "topup" and r.status == "completed"
             and r.created_at >= month_window("2024-01").end]
    lines = ["date,amount,reference,payment_method"]
    lines += [f"{r.created_at.date().isoformat()},{r.amount},R-{r.id},{r.payment_method}" for r in [*receipts, *later]]
    path = tmp_path / "receipts.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    opening = opening_of(current, "2024-01")
    result = CliRunner().invoke(cli, ["export", "--period", "2024-01", "--out", str(tmp_path / "out"), "--base-url",
                                      current.url, "--api-key", DEMO_KEY, "--topups", str(path), "--format", "csv,quickbooks"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "2024-01"
    booked = [row for row in rows(folder / "transactions.csv") if row["type"] == "topup"]
    assert sorted(Decimal(row["amount"]) for row in booked) == sorted(r.amount for r in receipts)
    assert all(row["id"].startswith("topup:R-") for row in booked)
    (roll,) = manifest(folder)["rollforward"]
    assert "topups_source" not in roll and Decimal(roll["opening"]) == opening  # the provider route works again
    assert "does not tie" not in result.output
    assert (folder / "source" / "topups.csv").read_bytes() == path.read_bytes()
    iif = (folder / "quickbooks.iif").read_text(encoding="utf-8")
    assert iif.count("WaveSpeedAI Clearing") >= len(receipts)  # Cr the payment account, one entry each
    again = CliRunner().invoke(cli, ["export", "--from-source", str(folder), "--out", str(tmp_path / "again"), "--format", "csv"],
                               catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again" / "2024-01" / "transactions.csv").read_bytes() == (folder / "transactions.csv").read_bytes()


@pytest.mark.parametrize("text, phrase", [
    ("date,amount\n2024-01-05,10.00\n", "reference"),
    ("date,amount,reference\n2024-13-05,10.00,A\n", "line 2: 'date'"),
    ("date,amount,reference\n2024-01-05,-10.00,A\n", "must be positive"),
    ("date,amount,reference\n2024-01-05,10.00,A\n2024-01-06,5,A\n", "appears twice"),
    ("date,amount,reference\n2024-01-05,12.5.0,A\n", "line 2: 'amount'"),
])
def test_a_bad_receipts_file_is_exit_2_naming_the_line(current, tmp_path, text, phrase):
    path = tmp_path / "receipts.csv"
    path.write_text(text, encoding="utf-8")
    result = export(current, tmp_path / "out", "--topups", str(path))
    assert result.exit_code == 2 and phrase in result.stderr, result.stderr
    assert not (tmp_path / "out" / "2024-01").exists()


@pytest.mark.parametrize("usage_path", ["/api/v3/account/usage", "/api/v3/user/usage_stats"])
def test_a_usage_answer_without_data_skips_the_reconciliation(tmp_path, usage_path):
    """``data: null`` from the usage summary is no reason to stop the month end: a warning says so."""
    from hostile import SEARCH, USAGE_STATS, json_reply, raw_record, serve

    records = [{"uuid": f"b{n}", "billing_type": "deduct", "price": Decimal("0.01"), "created_at": raw_record(n)["created_at"],
                "order": {"state": "done"}, "prediction": {"model_uuid": "m/x"}} for n in range(3)]

    def handle(request):
        if request.path == SEARCH:
            return json_reply({"page": 1, "total": len(records), "items": records})
        if request.path == usage_path:
            return json_reply(None)
        if request.path == USAGE_STATS:  # absent, so the legacy summary is asked
            return json_reply(None, 404)
        return json_reply({"balance": Decimal("5")}) if request.path == "/api/v3/balance" else json_reply(None, 404)

    with serve(handle) as server:
        result = CliRunner().invoke(cli, ["export", "--period", "2024-01", "--out", str(tmp_path), "--base-url", server.url,
                                          "--api-key", DEMO_KEY, "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "reconciliation skipped: the provider's usage summary answered without data" in result.output
    assert [row["amount"] for row in rows(tmp_path / "2024-01" / "transactions.csv")] == ["-0.01"] * 3


def test_spend_per_api_key_ties_out(current, tmp_path):
    """by_key.csv: each key's completed usage and refunds, exactly, and the keys add up to by_model."""
    assert export(current, tmp_path, "--format", "csv").exit_code == 0
    folder = tmp_path / "2024-01"
    expected: dict[str, list[Decimal]] = {}
    for line in gzip.open(folder / "source" / "billings.jsonl.gz", "rt"):
        record = json.loads(line, parse_float=Decimal)
        if record["status"] == "completed":
            sums = expected.setdefault(record["api_key_name"], [Decimal(0), Decimal(0)])
            sums[0 if record["type"] == "usage" else 1] += record["amount"]
    by_key = {row["api_key_name"]: [Decimal(row["usage"]), Decimal(row["refunds"])] for row in rows(folder / "by_key.csv")}
    assert by_key == expected and set(by_key) == {"prod-app", "staging", "client-acme"}
    by_model = rows(folder / "by_model.csv")
    assert sum(u + r for u, r in by_key.values()) == sum(Decimal(row["amount"]) + Decimal(row["refunds"]) for row in by_model)
