"""One export per period and --out at a time; what killed runs left behind is cleared (issue 9,
items 3 and 12)."""

from __future__ import annotations

import fcntl
import gzip
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.config import ApiSettings, ExportConfig, LiveSource, OutputSettings
from exporter.errors import ConfigError, ExportError
from exporter.extract import extract
from exporter.extract.client import BillingClient
from exporter.period import month_window
from exporter.pipeline import run_export
from exporter.sandbox import DEMO_KEY


def export(url: str, out: Path, *extra: str):
    return CliRunner().invoke(cli, ["export", "--period", "2024-01", "--base-url", url, "--api-key", DEMO_KEY,
                                    "--out", str(out), "--format", "csv", "--no-reconcile", "-q", *extra])


def hold_lock(out: Path, label: str = "2024-01") -> int:
    """Take the period's lock the way any other run would (flock on <out>/.<label>.lock)."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / f".{label}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def archived_ids(pack: Path) -> list[str]:
    with gzip.open(pack / "source" / "billings.jsonl.gz", "rt", encoding="utf-8") as lines:
        return [line.split('"id":"', 1)[1].split('"', 1)[0] for line in lines]


# -- item 3: one run per output folder and period ----------------------------------------------


def test_a_second_export_of_the_same_period_stops_at_once(sandbox, tmp_path):
    fd = hold_lock(tmp_path)
    try:
        result = export(sandbox.url, tmp_path)
    finally:
        os.close(fd)
    assert result.exit_code == 2, result.output
    assert "another export of 2024-01" in result.output and "--lock-timeout" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "2024-01").exists()
    assert len(sandbox.requests) == 0  # stopped before asking the API anything


def test_another_period_is_not_held_up(sandbox, tmp_path):
    fd = hold_lock(tmp_path, "2024-02")
    try:
        assert export(sandbox.url, tmp_path).exit_code == 0
    finally:
        os.close(fd)


def test_lock_timeout_waits_for_the_other_run(sandbox, tmp_path):
    fd = hold_lock(tmp_path)
    threading.Timer(0.3, os.close, [fd]).start()
    result = export(sandbox.url, tmp_path, "--lock-timeout", "60")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "2024-01" / "transactions.csv").exists()
    assert not (tmp_path / ".2024-01.lock").exists()  # released and removed by the run that held it last


def test_concurrent_exports_never_mix_or_truncate(sandbox, tmp_path):
    sandbox.faults.latency_ms = 5
    config = ExportConfig(LiveSource(month_window("2024-01")), ApiSettings(base_url=sandbox.url, api_key=DEMO_KEY, concurrency=2),
                          OutputSettings(out=tmp_path, formats=("csv",), reconcile=False))
    outcomes: list[object] = []

    def run() -> None:
        try:
            outcomes.append(run_export(config))
        except ExportError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [o for o in outcomes if isinstance(o, ConfigError) and "another export" in str(o)]
    done = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(outcomes) == 3 and len(done) >= 1 and len(done) + len(refused) == 3, outcomes  # nothing crashed
    pack = tmp_path / "2024-01"
    expected = month_window("2024-01")
    in_january = [r["id"] for r in sandbox.dataset.records if expected.start <= r["created_at"] < expected.end]
    assert sorted(archived_ids(pack)) == sorted(in_january)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-01", "books.sqlite"]


def test_pages_that_vanish_while_being_archived_stop_the_export(sandbox, tmp_path):
    """What a second run removing the shared page store once did: the archive came out short, exit 0.
    The log is read through the descriptor the walk wrote it with; only cutting that file short
    can change it now, and the export stops rather than archive fewer records than it read."""
    store = tmp_path / "pages"
    lines: list[str] = []

    def sink(line: str) -> None:
        if not lines:
            os.truncate(store / "pages.log", (store / "pages.log").stat().st_size // 2)
        lines.append(line)

    with BillingClient(sandbox.url, DEMO_KEY) as client, pytest.raises(ExportError, match="changed while being archived"):
        extract(client, month_window("2024-01"), store_folder=store, sink=sink)


# -- item 12: leftovers of killed runs -----------------------------------------------------------


def test_leftovers_of_killed_runs_are_cleared(sandbox, tmp_path):
    staging = tmp_path / ".2024-01.writing-0badf00d"
    (staging / "source").mkdir(parents=True)
    (staging / "transactions.csv").write_text("half,written\n")
    retired = tmp_path / ".2024-01.old-deadbeef" / "2024-01"
    retired.mkdir(parents=True)
    (retired / "transactions.csv").write_text("an older pack\n")
    (tmp_path / "2024-01").mkdir()
    other = tmp_path / ".2024-02.writing-12345678"  # another period's run may still be alive
    other.mkdir()
    result = export(sandbox.url, tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [".2024-02.writing-12345678", "2024-01", "books.sqlite"]


def test_a_pack_left_aside_by_a_killed_run_is_put_back(sandbox, tmp_path):
    retired = tmp_path / ".2024-01.old-deadbeef" / "2024-01"
    retired.mkdir(parents=True)
    (retired / "transactions.csv").write_text("the previous good pack\n")
    sandbox.faults.down = True  # this run fails: the previous pack must be where it belongs
    result = export(sandbox.url, tmp_path, "--retries", "1")
    assert result.exit_code == 4, result.output
    assert (tmp_path / "2024-01" / "transactions.csv").read_text() == "the previous good pack\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-01"]  # a failed first run leaves no books


def test_leftovers_are_left_alone_while_their_run_holds_the_lock(sandbox, tmp_path):
    staging = tmp_path / ".2024-01.writing-a11ve000"
    staging.mkdir(parents=True)
    fd = hold_lock(tmp_path)
    try:
        assert export(sandbox.url, tmp_path).exit_code == 2
        assert staging.exists()
    finally:
        os.close(fd)
