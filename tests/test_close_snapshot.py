"""Closing fixes what the export booked (docs/booking.md, "What the books keep of each record"):
nothing is read or booked again, no mapping is needed, and its time is the commands' clock."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from click.testing import CliRunner

from exporter.books.database import Books
from exporter.cli import cli
from exporter.cli_options import CliState
from exporter.sandbox import DEMO_KEY, SandboxServer

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone.utc)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), obj=CliState(clock=lambda: NOW))


def test_close_keeps_the_exports_snapshot_byte_for_byte_without_its_mapping(server: SandboxServer, tmp_path: Path):
    out, mapping = tmp_path / "out", tmp_path / "accounts.toml"
    shutil.copy(ROOT / "templates" / "accounts_xero.toml", mapping)
    exported = run("export", "--period", "2024-01", "--out", str(out), "--base-url", server.url, "--api-key", DEMO_KEY,
                   "--format", "csv,xero", "--accounts", str(mapping), "-q")
    assert exported.exit_code == 0, exported.output
    with Books(out / "books.sqlite", write=False) as books:
        at_export = books.snapshot_data("2024-01")
        booked = books.snapshot("2024-01")
    assert at_export is not None and len(booked) == 4000
    assert booked.loc[booked["status"] == "completed", "entry"].notna().all()
    assert booked.loc[booked["status"] != "completed", "entry"].isna().all()  # pending, failed: not booked
    mapping.unlink()  # closing books nothing again: the mapping the export used may be gone

    closed = run("close", "--period", "2024-01", "--out", str(out))
    assert closed.exit_code == 0, closed.output
    with Books(out / "books.sqlite", write=False) as books:
        assert books.snapshot_data("2024-01") == at_export
        period = books.period("2024-01")
        events = books.db.execute("SELECT at, action FROM events WHERE label = '2024-01' ORDER BY rowid").fetchall()
    assert period is not None and period.closed and period.closed_at == NOW  # the commands' clock
    assert events[-1] == ("2024-02-03T04:05:06.000+00:00", "close")
    assert run("books", "check", "--out", str(out)).exit_code == 0
