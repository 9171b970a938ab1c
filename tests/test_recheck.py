"""Late changes found from the provider's day totals (issue 18; docs/booking.md, "Finding late
changes"): an export re-reads only the closed days whose totals differ (and those that held
pending records), books what changed exactly as a full re-read does, and says which days it
re-read and why. Against the sandbox on 127.0.0.1, which counts the records it serves.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread
from exporter.sandbox.data import MODEL_NAMES, Record, dataset_from_records
from exporter.sandbox.server import USAGE

MONTHS = ("2024-01", "2024-02")
USAGE_STATS = "/api/v3/user/usage_stats"


def records(january: int, february: int, seed: int = 7) -> list[Record]:
    """Completed usage spread over every day of the two months (nothing pending), and a top-up."""
    rng = random.Random(seed)
    out = [Record("topup_jan", "topup", Decimal("500.00"), "USD", "completed",
                  datetime(2024, 1, 1, 8, tzinfo=timezone.utc), payment_method="stripe")]
    for month, count in ((1, january), (2, february)):
        days = 31 if month == 1 else 29
        for n in range(count):
            at = datetime(2024, month, 1, tzinfo=timezone.utc) + timedelta(
                milliseconds=rng.randrange(days * 86_400_000))
            amount = Decimal(rng.choice(["-0.0025", "-0.003", "-0.012", "-0.04", "-0.25"]))
            out.append(Record(f"u{month}_{n:06d}", "usage", amount, "USD", "completed", at,
                              model=MODEL_NAMES[n % 5]))
    return out


def serve(history: list[Record], api: str) -> Iterator[SandboxServer]:
    return serve_in_thread(dataset=dataset_from_records(history, MONTHS, 0, Decimal("100.00")), api=api)


def rewrite(server: SandboxServer, changes: dict[str, dict[str, object]]) -> None:
    server.dataset = dataset_from_records(
        [replace(r, **changes[r.id]) if r.id in changes else r for r in server.dataset.records],  # type: ignore[arg-type]
        MONTHS, 0, Decimal("100.00"))


def export(server: SandboxServer, out: Path, period: str, *extra: str):
    result = CliRunner().invoke(cli, ["export", "--period", period, "--out", str(out), "--base-url", server.url,
                                      "--api-key", DEMO_KEY, "--backoff", "0.01", "-q", "--format", "csv,xlsx",
                                      "--page-size", "100", *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def served(server: SandboxServer, out: Path, period: str, *extra: str) -> int:
    server.reset()
    export(server, out, period, *extra)
    return server.records_served


def adjustments(out: Path, period: str) -> list[dict[str, str]]:
    with open(out / period / "adjustments.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def recheck(out: Path, period: str) -> dict:
    return json.loads((out / period / "manifest.json").read_text())["recheck"]


@pytest.mark.parametrize("api", ["current", "legacy"])
def test_nothing_changed_re_reads_almost_nothing_of_a_closed_month(api, tmp_path):
    """20,000 closed records, nothing changed: the next month re-reads at most 2% of them beyond
    what the month's own query reads (issue 18's yardstick)."""
    with serve(records(20_000, 2_000), api) as server:
        export(server, tmp_path / "books", "2024-01", "--close")
        own = served(server, tmp_path / "alone", "2024-02")  # the same month with no books: its own query
        with_books = served(server, tmp_path / "books", "2024-02")
        full = served(server, tmp_path / "books", "2024-02", "--recheck", "full")
    assert with_books - own <= 0.02 * 20_000, (with_books, own)
    assert full - own >= 20_000  # the full re-check re-reads the whole closed month
    got = recheck(tmp_path / "books", "2024-02")
    assert got["full"] is True and got["days"] == [f"2024-01-{d:02d}" for d in range(1, 32)]
    assert adjustments(tmp_path / "books", "2024-02") == []


@pytest.mark.parametrize("api", ["current", "legacy"])
def test_five_changes_on_five_days_re_read_those_days_and_book_as_a_full_re_read_does(api, tmp_path):
    history = records(3_000, 300)
    with serve(history, api) as server:
        export(server, tmp_path / "a", "2024-01", "--close")
        export(server, tmp_path / "b", "2024-01", "--close")
        january = sorted((r for r in history if r.id.startswith("u1_")), key=lambda r: r.created_at)
        picked = {}
        for day in (3, 9, 10, 17, 28):  # one record on each of five days
            picked[next(r.id for r in january if r.created_at.day == day)] = day
        ids = list(picked)
        rewrite(server, {
            ids[0]: {"amount": Decimal("-1.25")},  # re-priced (visible at the cent)
            ids[1]: {"status": "failed"} if api == "legacy" else {"amount": Decimal("-0.50")},  # reversed
            ids[2]: {"amount": Decimal("-0.80")},
            ids[3]: {"amount": Decimal("-0.90")},
            ids[4]: {"amount": Decimal("-2.00")},
        })
        server.reset()
        export(server, tmp_path / "a", "2024-02")
        changed_served = server.records_served
        export(server, tmp_path / "b", "2024-02", "--recheck", "full")
    got = recheck(tmp_path / "a", "2024-02")
    assert got["full"] is False and got["differed"] == 5 and got["pending"] == 0
    assert got["days"] == [f"2024-01-{d:02d}" for d in (3, 9, 10, 17, 28)]
    assert got["summary"].startswith("re-read 5 of 31 closed days (5 differed from the provider's day totals")
    assert adjustments(tmp_path / "a", "2024-02") == adjustments(tmp_path / "b", "2024-02")
    assert sorted(r["id"] for r in adjustments(tmp_path / "a", "2024-02")) == sorted(ids)
    per_day = 3_000 / 31
    assert changed_served < 300 + 8 * per_day * (3 if api == "legacy" else 1) + 50  # about those days, not the month
    workbook = load_workbook(tmp_path / "a" / "2024-02" / "wavespeed_2024-02.xlsx")
    details = "\n".join(str(c.value) for row in workbook["Details"].iter_rows() for c in row if c.value)
    assert "Closed days re-read for late changes" in details and "re-read 5 of 31 closed days" in details
    with sqlite3.connect(tmp_path / "a" / "books.sqlite") as db:  # the books remember what was re-read whole
        assert db.execute("SELECT count(*) FROM full_checks WHERE label = '2024-02'").fetchone() == (5,)


def test_days_that_held_pending_records_are_re_read(tmp_path):
    history = records(1_000, 100)
    pending = next(r for r in history if r.id.startswith("u1_") and r.created_at.day == 12)
    history = [replace(r, status="pending") if r.id == pending.id else r for r in history]
    with serve(history, "current") as server:
        export(server, tmp_path, "2024-01", "--close")
        export(server, tmp_path, "2024-02")  # still pending: its day is re-read anyway
        assert recheck(tmp_path, "2024-02")["days"] == ["2024-01-12"]
        assert recheck(tmp_path, "2024-02")["pending"] == 1
        rewrite(server, {pending.id: {"status": "completed"}})
        export(server, tmp_path, "2024-02")
    assert [(r["id"], r["change"]) for r in adjustments(tmp_path, "2024-02")] == [(pending.id, "completed_late")]


def test_without_usage_stats_the_day_totals_come_from_the_older_usage_endpoint_one_day_at_a_time(tmp_path):
    history = records(600, 60)
    with serve(history, "both") as server:
        server.faults.absent = frozenset({USAGE_STATS})
        export(server, tmp_path, "2024-01", "--close", "--api", "current")
        victim = next(r for r in history if r.id.startswith("u1_") and r.created_at.day == 20)
        rewrite(server, {victim.id: {"amount": Decimal("-0.75")}})
        server.reset()
        export(server, tmp_path, "2024-02", "--api", "current")
        usage_calls = [r for r in server.requests if r.path == USAGE]
    assert len([r for r in usage_calls if r.query.get("start_date") == r.query.get("end_date")]) == 31
    assert recheck(tmp_path, "2024-02")["days"] == ["2024-01-20"]
    assert [(r["id"], r["change"]) for r in adjustments(tmp_path, "2024-02")] == [(victim.id, "amount_changed")]


def test_when_no_day_totals_can_be_had_every_closed_day_is_re_read_and_said_once(tmp_path):
    history = records(600, 60)
    with serve(history, "current") as server:
        export(server, tmp_path, "2024-01", "--close")
        victim = next(r for r in history if r.id.startswith("u1_") and r.created_at.day == 5)
        rewrite(server, {victim.id: {"amount": Decimal("-0.0026")}})  # under any day total's rounding
        server.faults.absent = frozenset({USAGE_STATS})  # and no /account/usage on a current-only server
        result = CliRunner().invoke(cli, ["export", "--period", "2024-02", "--out", str(tmp_path), "--base-url",
                                          server.url, "--api-key", DEMO_KEY, "--backoff", "0.01", "--format", "csv"])
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if line.startswith("warning:") and "day totals" in line]
    assert len(said) == 1 and "every closed day was re-read" in said[0]
    assert recheck(tmp_path, "2024-02")["full"] is True
    assert [(r["id"], r["change"]) for r in adjustments(tmp_path, "2024-02")] == [(victim.id, "amount_changed")]


def test_a_change_the_day_totals_cannot_show_is_found_by_a_full_re_check(tmp_path):
    history = records(600, 60)
    with serve(history, "current") as server:
        export(server, tmp_path, "2024-01", "--close")
        victim = next(r for r in history if r.id.startswith("u1_") and r.amount == Decimal("-0.0025"))
        rewrite(server, {victim.id: {"amount": Decimal("-0.0026")}})  # 0.0001 under usage_stats' 3 decimals
        export(server, tmp_path, "2024-02")
        assert adjustments(tmp_path, "2024-02") == []  # the limit, documented
        export(server, tmp_path, "2024-02", "--recheck", "full")
    assert [(r["id"], r["change"], r["delta"]) for r in adjustments(tmp_path, "2024-02")] == [
        (victim.id, "amount_changed", "-0.0001")]


def test_a_top_up_changed_in_a_closed_month_is_found_by_the_type_filter(tmp_path):
    history = records(600, 60)
    with serve(history, "legacy") as server:
        export(server, tmp_path, "2024-01", "--close")
        rewrite(server, {"topup_jan": {"status": "failed"}})  # the usage totals cannot show it
        export(server, tmp_path, "2024-02")
    got = recheck(tmp_path, "2024-02")
    assert got["days"] == [] and got["types"] == ["topup", "refund"]
    assert [(r["id"], r["change"], r["delta"]) for r in adjustments(tmp_path, "2024-02")] == [
        ("topup_jan", "reversed", "-500.00")]
