"""The books under hostile history (issue 21): each numbered reproduction of the probe, through the
CLI against a loopback server whose past is rewritten between runs.

The ledger equation every test checks (docs/booking.md, "What the books refuse"): what the packs
in the books posted for a record — its amount if completed in its own period's transactions.csv,
plus the deltas of adjustments.csv in later periods — is exactly its amount today if completed,
else 0. A change is posted once, whatever the order of exports, closes, reopens and rewrites.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.outdir import period_lock
from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread
from exporter.sandbox.data import Record, dataset_from_records
from hostile import billing_api, serve

MONTHS = ("2024-01", "2024-02", "2024-03", "2024-04")
MODEL = "wavespeed-ai/flux-dev"
FORMATS = "csv,quickbooks,beancount"


def usage(rid: str, month: int, amount: str, day: int = 10, status: str = "completed") -> Record:
    return Record(rid, "usage", Decimal(amount), "USD", status, datetime(2024, month, day, 12, tzinfo=timezone.utc),
                  model=MODEL)


def history() -> list[Record]:
    return [usage("jan_1", 1, "-1.00"), usage("jan_2", 1, "-0.25", day=20), usage("feb_1", 2, "-2.00"),
            usage("mar_1", 3, "-3.00"), usage("apr_1", 4, "-4.00")]


@pytest.fixture()
def server() -> Iterator[SandboxServer]:
    with serve_in_thread(dataset=dataset_from_records(history(), MONTHS, 0, Decimal("100.00"))) as running:
        yield running


def rewrite(server: SandboxServer, records: list[Record]) -> None:
    server.dataset = dataset_from_records(records, MONTHS, 0, Decimal("100.00"))


def changed(server: SandboxServer, rid: str, **fields: object) -> None:
    rewrite(server, [replace(r, **fields) if r.id == rid else r for r in server.dataset.records])  # type: ignore[arg-type]


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def export(server: SandboxServer, out: Path, period: str, *extra: str):
    return run("export", "--period", period, "--out", str(out), "--format", FORMATS, "--base-url", server.url,
               "--api-key", DEMO_KEY, "--backoff", "0.01", "-q", "--lookback", "400", *extra)


def close(out: Path, period: str):
    return run("close", "--period", period, "--out", str(out))


def ok(result) -> None:
    assert result.exit_code == 0, result.output


def rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def periods(out: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(out / "books.sqlite") as db:
        return db.execute("SELECT label, status, pack FROM periods ORDER BY start_utc").fetchall()


def posted(out: Path, rid: str) -> Decimal:
    """What the packs of the books' periods posted for record ``rid`` (the ledger equation's left side)."""
    total = Decimal(0)
    for _, _, pack in periods(out):
        total += sum((Decimal(r["amount"]) for r in rows(Path(pack) / "transactions.csv")
                      if r["id"] == rid and r["status"] == "completed"), Decimal(0))
        total += sum((Decimal(r["delta"]) for r in rows(Path(pack) / "adjustments.csv") if r["id"] == rid), Decimal(0))
    return total


def adjustments(out: Path, period: str) -> list[tuple[str, str, str]]:
    return [(r["id"], r["change"], r["delta"]) for r in rows(out / period / "adjustments.csv")]


def test_1_a_late_change_is_posted_once_when_a_later_month_is_exported_before_the_one_that_posted_it(server, tmp_path):
    out = tmp_path / "out"
    ok(export(server, out, "2024-01", "--close"))
    changed(server, "jan_1", amount=Decimal("-1.50"))
    ok(export(server, out, "2024-02"))
    assert adjustments(out, "2024-02") == [("jan_1", "amount_changed", "-0.50")]
    ok(export(server, out, "2024-03"))  # February, still open, already posted it
    assert adjustments(out, "2024-03") == []
    ok(close(out, "2024-02"))
    ok(close(out, "2024-03"))
    assert posted(out, "jan_1") == Decimal("-1.50")


def test_1_a_month_booked_on_an_earlier_export_of_the_one_before_it_must_be_exported_again(server, tmp_path):
    out = tmp_path / "out"
    ok(export(server, out, "2024-01", "--close"))
    ok(export(server, out, "2024-02"))
    ok(export(server, out, "2024-03"))
    changed(server, "jan_1", amount=Decimal("-1.10"))
    ok(export(server, out, "2024-02"))  # posts the change; March was booked without it
    ok(close(out, "2024-02"))
    books_before = (out / "books.sqlite").read_bytes()
    refused = close(out, "2024-03")
    assert refused.exit_code == 2 and "export 2024-03 again, then close it" in refused.output
    assert (out / "books.sqlite").read_bytes() == books_before
    ok(export(server, out, "2024-03", "--close"))
    assert posted(out, "jan_1") == Decimal("-1.10")


def test_2_close_waits_for_no_export_it_takes_the_periods_lock(server, tmp_path):
    out = tmp_path / "out"
    ok(export(server, out, "2024-01"))
    books_before = (out / "books.sqlite").read_bytes()
    with period_lock(out, "2024-01"):  # an export of January is running
        refused = close(out, "2024-01")
    assert refused.exit_code == 2 and "is running" in refused.output
    assert (out / "books.sqlite").read_bytes() == books_before
    ok(close(out, "2024-01"))


def test_3_a_record_moved_out_of_a_closed_month_is_a_move_not_a_second_booking(server, tmp_path):
    out = tmp_path / "out"
    ok(export(server, out, "2024-01", "--close"))
    changed(server, "jan_2", created_at=datetime(2024, 2, 3, tzinfo=timezone.utc))
    result = export(server, out, "2024-02")
    ok(result)
    assert "no longer returned" not in result.output
    assert [r["id"] for r in rows(out / "2024-02" / "transactions.csv")] == ["feb_1"]
    assert adjustments(out, "2024-02") == [("jan_2", "moved", "0.00")]
    changed(server, "jan_2", amount=Decimal("-0.40"))  # moved and re-priced
    ok(export(server, out, "2024-02", "--close"))
    assert adjustments(out, "2024-02") == [("jan_2", "amount_changed", "-0.15")]
    ok(export(server, out, "2024-03", "--close"))
    assert posted(out, "jan_2") == Decimal("-0.40") and posted(out, "feb_1") == Decimal("-2.00")


def test_4_periods_reopen_in_reverse_order_and_a_restatement_is_not_posted_again(server, tmp_path):
    out = tmp_path / "out"
    ok(export(server, out, "2024-01", "--close"))
    changed(server, "jan_1", amount=Decimal("-0.88"))
    ok(export(server, out, "2024-02", "--close"))  # posts +0.12 to January's record
    books_before = (out / "books.sqlite").read_bytes()
    refused = run("reopen", "--period", "2024-01", "--out", str(out), "--reason", "re-billed")
    assert refused.exit_code == 2 and "reopen 2024-02 first" in refused.output
    assert (out / "books.sqlite").read_bytes() == books_before
    for label in ("2024-02", "2024-01"):
        ok(run("reopen", "--period", label, "--out", str(out), "--reason", "re-billed"))
    changed(server, "jan_1", amount=Decimal("-0.90"))
    ok(export(server, out, "2024-01", "--close"))  # restated: books -0.90 itself
    refused = close(out, "2024-02")  # booked on the January before the restatement
    assert refused.exit_code == 2 and "export 2024-02 again" in refused.output
    ok(export(server, out, "2024-02", "--close"))
    assert adjustments(out, "2024-02") == []
    ok(export(server, out, "2024-03", "--close"))
    assert adjustments(out, "2024-03") == []
    assert posted(out, "jan_1") == Decimal("-0.90")


def test_5_a_record_id_reused_with_another_type_is_a_reversal_and_a_new_booking(server, tmp_path):
    out = tmp_path / "out"
    ok(export(server, out, "2024-01", "--close"))
    changed(server, "jan_1", type="topup", amount=Decimal("5.00"), model=None, payment_method="card")
    ok(export(server, out, "2024-02", "--close"))
    got = [(r["id"], r["change"], r["type"], r["delta"]) for r in rows(out / "2024-02" / "adjustments.csv")]
    assert got == [("jan_1", "reversed", "usage", "1.00"), ("jan_1", "completed_late", "topup", "5.00")]
    journal = rows(out / "2024-02" / "quickbooks_online_journal.csv")
    late = [r for r in journal if "late change" in r["Description"].lower()]
    amounts = {Decimal(r["Debits"] or 0) + Decimal(r["Credits"] or 0) for r in late}
    assert Decimal("6.00") not in amounts and {Decimal("1.00"), Decimal("5.00")} <= amounts
    assert posted(out, "jan_1") == Decimal("5.00")
    ok(export(server, out, "2024-03"))
    assert adjustments(out, "2024-03") == []  # the rebooking is booked: not posted again


def test_6_a_time_zone_change_that_leaves_a_gap_is_refused_naming_the_way_out(server, tmp_path):
    out = tmp_path / "out"
    ok(export(server, out, "2024-01", "--timezone", "Europe/Berlin", "--close"))
    refused = export(server, out, "2024-02")  # UTC: 2024-01-31 23:00 to 24:00 would be in no period
    assert refused.exit_code == 2
    assert "gap" in refused.output and "--timezone Europe/Berlin" in refused.output
    assert not (out / "2024-02").exists()
    ok(export(server, out, "2024-02", "--timezone", "Europe/Berlin"))


def test_6_a_month_exported_again_in_another_zone_under_a_later_draft_may_not_open_a_gap(server, tmp_path):
    out = tmp_path / "out"
    ok(export(server, out, "2024-01", "--close"))
    ok(export(server, out, "2024-02"))
    ok(export(server, out, "2024-03"))  # an open draft after February
    books_before = (out / "books.sqlite").read_bytes()
    refused = export(server, out, "2024-02", "--timezone", "America/New_York")  # would start 5 hours after January
    assert refused.exit_code == 2, refused.output
    assert "gap in the books after 2024-01" in refused.output and "--timezone UTC" in refused.output
    assert (out / "books.sqlite").read_bytes() == books_before


def test_6_a_back_filled_month_is_booked_first_and_the_later_one_exported_again(server, tmp_path):
    out = tmp_path / "out"
    ok(export(server, out, "2024-02"))
    ok(export(server, out, "2024-01", "--close"))  # before an open month: allowed
    refused = close(out, "2024-02")
    assert refused.exit_code == 2 and "export 2024-02 again" in refused.output
    first = (out / "2024-02" / "wavespeed_2024-02.beancount").read_text()
    ok(export(server, out, "2024-02", "--close"))
    assert "Opening balance of the prepaid credit" in first  # the draft was the books' first period
    assert "Opening balance of the prepaid credit" not in (out / "2024-02" / "wavespeed_2024-02.beancount").read_text()
    assert "Opening balance of the prepaid credit" in (out / "2024-01" / "wavespeed_2024-01.beancount").read_text()
    # before a closed month: refused
    other = tmp_path / "other"
    ok(export(server, other, "2024-02", "--close"))
    refused = export(server, other, "2024-01")
    assert refused.exit_code == 2 and "2024-02" in refused.output and "closed" in refused.output


def test_9_a_currency_change_on_a_closed_record_is_rebooked_and_later_exports_keep_working(tmp_path):
    def record(currency: str) -> dict[str, object]:
        return {"id": "cur_1", "type": "usage", "amount": Decimal("-1.00"), "currency": currency, "status": "completed",
                "model": MODEL, "created_at": "2024-01-10T12:00:00.000Z"}

    served: list[dict[str, object]] = [record("USD")]
    out = tmp_path / "out"

    def export_legacy(url: str, period: str, *extra: str):
        return run("export", "--period", period, "--out", str(out), "--format", FORMATS, "--base-url", url,
                   "--api-key", DEMO_KEY, "--backoff", "0.01", "-q", "--api", "legacy", "--no-reconcile", *extra)

    with serve(billing_api(served)) as api:
        url = f"http://127.0.0.1:{api.server_address[1]}"
        ok(export_legacy(url, "2024-01", "--close"))
        served[0] = record("EUR")
        ok(export_legacy(url, "2024-02", "--close"))
        got = [(r["change"], r["currency"], r["delta"]) for r in rows(out / "2024-02" / "adjustments.csv")]
        assert got == [("reversed", "USD", "1.00"), ("completed_late", "EUR", "-1.00")]
        ok(export_legacy(url, "2024-03"))  # no IntegrityError: the rebooking has its own keys
        assert rows(out / "2024-03" / "adjustments.csv") == []
