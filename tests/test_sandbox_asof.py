"""The sandbox's history moves forward: ``--sandbox-as-of DATE`` serves the account as it stood at
00:00 UTC that day (exporter.sandbox.history), and closing a month then exporting the next books
the provider's late changes (docs/sandbox.md, docs/booking.md "Closed periods and late changes").
"""

from __future__ import annotations

import shutil

import csv
import json
import urllib.request
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.cli_options import CliState
from exporter.sandbox import DEMO_KEY, generate_dataset, serve_in_thread
from exporter.sandbox.data import Dataset, Record
from exporter.sandbox.history import as_of, day_start, history_start, timelines
from exporter.sandbox.server import default_dataset
from factories import expected_late_changes

UTC = timezone.utc
FEB_1 = datetime(2024, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2024, 3, 1, tzinfo=UTC)


def invoke(*args: str, clock: datetime | None = None):
    obj = CliState(clock=lambda: clock) if clock is not None else None
    return CliRunner().invoke(cli, list(args), obj=obj, catch_exceptions=False)


def served_bytes(dataset: Dataset) -> bytes:
    return dataset.json_bytes(range(len(dataset)))


def by_id(dataset: Dataset, month: str | None = None) -> dict[str, Record]:
    return {r.id: r for r in dataset.records if month is None or r.created_at.strftime("%Y-%m") == month}


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# -- the model -------------------------------------------------------------------------


def test_the_same_date_gives_the_same_bytes_from_independently_generated_datasets():
    first = as_of(default_dataset(), FEB_1)
    again = as_of(generate_dataset(), FEB_1)  # another Dataset object: nothing shared, no cache hit
    assert first is not again
    assert served_bytes(first) == served_bytes(again)
    assert first.balance == again.balance


def test_the_same_date_serves_the_same_json_over_http():
    bodies = []
    for _ in range(2):
        with serve_in_thread(as_of=FEB_1) as server:
            request = urllib.request.Request(
                server.url + "/api/v3/account/billings?page=3&page_size=100&start_date=2024-01-01",
                headers={"Authorization": f"Bearer {DEMO_KEY}"},
            )
            with urllib.request.urlopen(request) as response:
                bodies.append(response.read())
    assert bodies[0] == bodies[1]
    assert b'"pending"' in bodies[0] or b'"completed"' in bodies[0]


def test_records_created_at_or_after_the_instant_are_absent_and_unsettled_ones_pending():
    view = as_of(default_dataset(), FEB_1)
    assert all(r.created_at < FEB_1 for r in view.records)
    january = by_id(view, "2024-01")
    last = max(january.values(), key=lambda r: r.created_at)
    assert last.created_at == FEB_1 - timedelta(milliseconds=1)
    assert last.status == "pending"  # created a millisecond before: not settled yet
    pending = [r for r in january.values() if r.status == "pending"]
    assert 1 <= len(pending) <= len(january) // 50  # a few, not the generator's 2 %
    # a record that arrives late is absent before its arrival although created earlier
    epoch, ms = datetime(1970, 1, 1, tzinfo=UTC), timedelta(milliseconds=1)
    late = [t for t in timelines(default_dataset()) if t.arrives > (t.record.created_at - epoch) // ms]
    assert late, "the default data has records arriving late"
    for timeline in late:
        arrival = epoch + timeline.arrives * ms
        before = as_of(default_dataset(), arrival)  # what happens at the instant is not seen yet
        after = as_of(default_dataset(), arrival + ms)
        assert timeline.record.id not in by_id(before) and timeline.record.id in by_id(after)
        assert by_id(after)[timeline.record.id].created_at == timeline.record.created_at


def test_history_only_moves_forward():
    """Checked every four days from the first month to after the last event: a record once served
    stays served (records never vanish); failed stays failed; completed stays completed (perhaps
    re-priced) unless reversed to failed, once; a re-priced amount never changes again."""
    dataset = default_dataset()
    generated = by_id(dataset)
    day, end = history_start(dataset), date(2024, 5, 15)
    previous: dict[str, Record] | None = None
    while day <= end:
        current = by_id(as_of(dataset, day_start(day)))
        if previous is not None:
            assert previous.keys() <= current.keys(), day
            for rid, before in previous.items():
                after = current[rid]
                assert (after.type, after.model, after.currency, after.created_at) == (
                    before.type, before.model, before.currency, before.created_at)
                if before.status == "failed":
                    assert after.status == "failed", (rid, day)
                if before.status == "completed":
                    assert after.status in ("completed", "failed"), (rid, day)
                if before.amount != generated[rid].amount:
                    assert after.amount == before.amount, (rid, day)
        previous = current
        day += timedelta(days=4)


def test_rates_are_small_and_the_history_settles():
    dataset = default_dataset()
    lines = timelines(dataset)
    reversed_ = [t for t in lines if t.reversed_at is not None]
    repriced = [t for t in lines if t.repriced_at is not None]
    assert 0 < len(reversed_) < len(lines) // 100  # about 0.5 %
    assert 0 < len(repriced) < len(lines) // 200  # about 0.2 %
    settled = as_of(dataset, datetime(2030, 1, 1, tzinfo=UTC))
    assert len(settled) == len(dataset)
    assert not [r for r in settled.records if r.status == "pending"]
    assert settled is as_of(dataset, datetime(2031, 1, 1, tzinfo=UTC))  # after the last event: one view


def test_the_balance_follows_the_view():
    with serve_in_thread(as_of=FEB_1) as server:
        request = urllib.request.Request(server.url + "/api/v3/account/balance",
                                         headers={"Authorization": f"Bearer {DEMO_KEY}"})
        with urllib.request.urlopen(request) as response:
            balance = Decimal(json.loads(response.read(), parse_float=Decimal)["data"]["balance"])
        view = server.dataset
    completed = sum((r.amount for r in view.records if r.status == "completed"), Decimal(0))
    assert balance == default_dataset().opening_balance + completed
    assert balance != default_dataset().balance


def test_the_library_default_is_still_the_generated_dataset():
    with serve_in_thread() as server:
        assert server.dataset is default_dataset()
        assert server.dataset == generate_dataset()


# -- the command line ------------------------------------------------------------------


def test_sandbox_without_as_of_serves_as_of_the_clis_now(tmp_path):
    dated = invoke("fetch", "--sandbox", "--sandbox-as-of", "2024-02-01", "--period", "2024-01", "-q",
                   "--output", str(tmp_path / "dated.jsonl"))
    now = invoke("fetch", "--sandbox", "--period", "2024-01", "-q", "--output", str(tmp_path / "now.jsonl"),
                 clock=FEB_1)
    assert dated.exit_code == 0 and now.exit_code == 0, dated.output + now.output
    assert (tmp_path / "dated.jsonl").read_bytes() == (tmp_path / "now.jsonl").read_bytes()
    assert b'"pending"' in (tmp_path / "dated.jsonl").read_bytes()


def test_walk_through_books_januarys_late_changes_in_february(tmp_path):
    """The README's "Closing a month": January closed as of 1 February, February exported as of
    1 March; every difference between the two views of January is one adjustment row."""
    # the legacy generation: it lists a charge given back as a failed record, a late change to the
    # closed month; the current one shows a refund in the month it happened instead
    # (tests/test_sandbox_reversal.py)
    closed = invoke("export", "--sandbox", "--sandbox-api", "legacy", "--sandbox-as-of", "2024-02-01",
                    "--period", "2024-01", "--close", "--out", str(tmp_path), "--format", "csv", "-q")
    assert closed.exit_code == 0, closed.output
    shutil.copytree(tmp_path, tmp_path.parent / "by_day_totals")
    february = invoke("export", "--sandbox", "--sandbox-api", "legacy", "--sandbox-as-of", "2024-03-01",
                      "--period", "2024-02", "--out", str(tmp_path), "--format", "csv", "-q", "--recheck", "full")
    assert february.exit_code == 0, february.output

    at_close = by_id(as_of(default_dataset(), FEB_1), "2024-01")
    now = by_id(as_of(default_dataset(), MAR_1), "2024-01")
    expected = expected_late_changes(at_close, now)

    booked = {
        row["id"]: (row["change"], Decimal(row["amount_before"]), Decimal(row["amount_after"]), Decimal(row["delta"]))
        for row in rows(tmp_path / "2024-02" / "adjustments.csv")
    }
    assert booked == expected
    changes = [change for change, *_ in booked.values()]
    assert changes.count("completed_late") >= 1 and changes.count("reversed") >= 1
    assert all(row["period"] == "2024-01" for row in rows(tmp_path / "2024-02" / "adjustments.csv"))

    # by the provider's day totals (the default; docs/booking.md, "Finding late changes"): the
    # legacy usage endpoint rounds each day and model to the cent, so only the re-prices under it
    # (and a reversal and a late arrival that cancel in one day's totals) are left for --recheck full
    by_totals = tmp_path.parent / "by_day_totals"
    default = invoke("export", "--sandbox", "--sandbox-api", "legacy", "--sandbox-as-of", "2024-03-01",
                     "--period", "2024-02", "--out", str(by_totals), "--format", "csv", "-q")
    assert default.exit_code == 0, default.output
    found = {row["id"]: (row["change"], Decimal(row["amount_before"]), Decimal(row["amount_after"]), Decimal(row["delta"]))
             for row in rows(by_totals / "2024-02" / "adjustments.csv")}
    assert found.items() <= booked.items()
    assert {change for change, *_ in found.values()} >= {"completed_late", "reversed"}  # pending days, visible days
    missed = [booked[i] for i in set(booked) - set(found)]
    assert missed and all(abs(delta) < Decimal("0.01") for *_, delta in missed)

    # the books roll forward to the provider's balance as of 1 March, exactly
    manifest = json.loads((tmp_path / "2024-02" / "manifest.json").read_text())
    assert manifest["warnings"] == []
    assert str(as_of(default_dataset(), MAR_1).balance) in json.dumps(manifest["rollforward"])


@pytest.mark.parametrize("command", ["export", "fetch", "summary"])
def test_as_of_without_sandbox_is_refused(command, tmp_path):
    result = invoke(command, "--sandbox-as-of", "2024-02-01", "--period", "2024-01", "--api-key", "ws-x",
                    "--base-url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "--sandbox-as-of has no effect" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fetch", "--sandbox", "--period", "2024-01", "--sandbox-as-of", "2023-10-31"],
         "--sandbox-as-of 2023-10-31 is before the sandbox's history, which starts 2023-11-01"),
        (["summary", "--sandbox", "--period", "2024-01", "--sandbox-as-of", "2024-02-30"], "is not a date"),
        (["export", "--sandbox", "--period", "2024-01", "--sandbox-as-of", "2024-2-1"], "is not a date"),
        (["fetch", "--sandbox", "--period", "2024-01", "--sandbox-as-of", "1 Feb 2024"], "expected YYYY-MM-DD"),
        (["sandbox", "--port", "0", "--as-of", "2020-01-01"], "--as-of 2020-01-01 is before the sandbox's history"),
        (["sandbox", "--port", "0", "--as-of", "tomorrow"], "is not a date"),
    ],
)
def test_bad_as_of_dates_are_refused(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
