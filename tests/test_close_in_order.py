"""Periods close in order, each on its predecessor's closing as it is now (docs/booking.md, "What the books refuse").

The churn test's find, through the CLI: export January and February, a January record arrives
late, January is exported again; February's opening is the old January draft's closing, so
closing February then (or January after it) would chain a figure nothing backs.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, serve_in_thread
from exporter.sandbox.data import Record
from exporter.sandbox.revisions import revise


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def rollforward(out: Path, label: str) -> dict:
    (row,) = json.loads((out / label / "manifest.json").read_text(encoding="utf-8"))["rollforward"]
    return row


def test_a_stale_opening_is_refused_until_the_period_is_exported_again(tmp_path):
    with serve_in_thread() as server:
        def export(period: str):
            return run("export", "--period", period, "--out", str(tmp_path), "--format", "csv", "--base-url",
                       server.url, "--api-key", DEMO_KEY, "-q")

        def close(period: str):
            return run("close", "--period", period, "--out", str(tmp_path))

        assert export("2024-01").exit_code == 0 and export("2024-02").exit_code == 0
        late = Record("txn_late_0001", "usage", Decimal("-0.50"), "USD", "completed",
                      datetime(2024, 1, 20, 12, tzinfo=timezone.utc), model="wavespeed-ai/flux-dev")
        server.dataset = revise(server.dataset, added=[late])
        assert export("2024-01").exit_code == 0  # January restated while open: its closing moves by -0.50

        early = close("2024-02")
        assert early.exit_code == 2 and "2024-01 is earlier than 2024-02 and still open" in early.stderr
        assert close("2024-01").exit_code == 0
        stale = close("2024-02")
        assert stale.exit_code == 2 and "export 2024-02 again" in stale.stderr
        assert Decimal(rollforward(tmp_path, "2024-02")["opening"]) - Decimal(rollforward(tmp_path, "2024-01")["closing"]) \
            == Decimal("0.50")  # what the refusal prevents: February opening on the old January

        assert export("2024-02").exit_code == 0 and close("2024-02").exit_code == 0
        assert rollforward(tmp_path, "2024-02")["opening"] == rollforward(tmp_path, "2024-01")["closing"]
