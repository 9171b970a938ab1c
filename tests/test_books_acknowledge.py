"""A record the provider dropped is reported once, and can be acknowledged so --strict passes again.

docs/booking.md, "Closed periods and late changes". Through the CLI against the sandbox on
127.0.0.1, January closed, then one of its records removed from the provider's history.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, serve_in_thread
from exporter.sandbox.revisions import revise


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def export(url: str, out: Path, period: str, *extra: str):
    return run("export", "--period", period, "--out", str(out), "--format", "csv", "--base-url", url,
               "--api-key", DEMO_KEY, "--backoff", "0.01", "-q", *extra)


def missing_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "adjustments.csv", newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["change"] == "missing"]


def test_a_dropped_record_can_be_acknowledged(tmp_path):
    with serve_in_thread() as server:
        assert export(server.url, tmp_path, "2024-01", "--close").exit_code == 0
        gone = next(r for r in server.dataset.records
                    if r.created_at.strftime("%Y-%m") == "2024-01" and r.status == "completed" and r.type == "usage")
        server.dataset = revise(server.dataset, removed=[gone.id])

        strict = export(server.url, tmp_path, "2024-02", "--strict")
        assert strict.exit_code == 6 and gone.id in strict.stderr  # reported, so --strict stops
        assert not (tmp_path / "2024-02").exists()
        assert [row["id"] for row in missing_rows_of(export(server.url, tmp_path, "2024-02"), tmp_path)] == [gone.id]

        books = dump(tmp_path)
        unknown = run("books", "acknowledge", "txn_never_booked", gone.id, "--reason", "pruned", "--out", str(tmp_path))
        assert unknown.exit_code == 2 and "txn_never_booked" in unknown.stderr
        empty = run("books", "acknowledge", gone.id, "--reason", "  ", "--out", str(tmp_path))
        assert empty.exit_code == 2
        assert dump(tmp_path) == books  # refused: nothing recorded

        done = run("books", "acknowledge", gone.id, "--reason", "pruned by the provider", "--out", str(tmp_path))
        assert done.exit_code == 0 and f"acknowledged {gone.id} (booked in 2024-01)" in done.output

        again = export(server.url, tmp_path, "2024-02", "--strict")
        assert again.exit_code == 0, again.output
        assert missing_rows(tmp_path / "2024-02") == []


def dump(out: Path) -> list[str]:
    with sqlite3.connect(out / "books.sqlite") as db:
        return list(db.iterdump())


def missing_rows_of(result, out: Path) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.output
    return missing_rows(out / "2024-02")
