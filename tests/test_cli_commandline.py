"""The command line for people and for cron, through the CLI against the sandbox."""

from __future__ import annotations

import json
from test_cli import invoke, read_csv
from test_cli_warnings import invoke_at, utc

from exporter.period import quarter_window


def test_a_quarter_exports_three_months_with_one_usage_entry_per_month(sandbox, api_args, tmp_path):
    result = invoke("export", "--period", "2024-Q1", "--out", str(tmp_path), "--format", "csv,quickbooks", *api_args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "2024-Q1"
    w = quarter_window("2024-Q1")
    expected = {r["id"] for r in sandbox.dataset.records if w.start <= r["created_at"] < w.end}
    assert {r["id"] for r in read_csv(folder / "transactions.csv")} == expected
    journal = read_csv(folder / "quickbooks_online_journal.csv")
    usage = sorted({(r["JournalNo"], r["JournalDate"]) for r in journal if "U" in r["JournalNo"][6:]})
    assert usage == [("WS24Q1U01", "01/31/2024"), ("WS24Q1U02", "02/29/2024"), ("WS24Q1U03", "03/31/2024")]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["period"]["label"] == "2024-Q1" and manifest["period"]["last_day"] == "2024-03-31"
    assert manifest["warnings"] == []


def test_last_month_and_this_month_count_from_today_in_the_time_zone(api_args, tmp_path):
    now = utc(2024, 2, 1, 3)  # still 31 January in Los Angeles
    last = invoke_at(now, "export", "--period", "last-month", "--out", str(tmp_path / "utc"), "--format", "csv", *api_args)
    assert last.exit_code == 0, last.output
    assert sorted(p.name for p in (tmp_path / "utc").iterdir()) == ["2024-01"]

    local = invoke_at(now, "export", "--period", "last-month", "--timezone", "America/Los_Angeles",
                      "--out", str(tmp_path / "la"), "--format", "csv", *api_args)
    assert local.exit_code == 0, local.output
    assert sorted(p.name for p in (tmp_path / "la").iterdir()) == ["2023-12"]

    this = invoke_at(now, "export", "--period", "this-month", "--timezone", "America/Los_Angeles",
                     "--out", str(tmp_path / "la"), "--format", "csv", *api_args)
    assert this.exit_code == 0, this.output
    manifest = json.loads((tmp_path / "la" / "2024-01" / "manifest.json").read_text())
    assert manifest["period"]["start"] == "2024-01-01T08:00:00.000Z"
    assert manifest["warnings"] == ["period not over: ends 2024-02-01 00:00 America/Los_Angeles; export again once it has ended"]
