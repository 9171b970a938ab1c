"""Books written by the previous release (schema 6, a row per booked record) open in place: their
rows become snapshots exactly, their seals are verified first and made again, the space is given
back, and their open periods are exported again before they close (docs/booking.md, "What the
books keep of each record").

The fixture ``golden/books-schema6.tar.gz`` is an ``out`` folder written by release 9209d49:
2024-01-01..02 exported from the sandbox and closed, 2024-01-03..04 exported and left open (its
packs recorded by folder name, so it can be unpacked anywhere)."""

from __future__ import annotations

import sqlite3
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.books.database import Books
from exporter.books.schema import SCHEMA_VERSION
from exporter.cli import cli

FIXTURE = Path(__file__).parent / "golden" / "books-schema6.tar.gz"
CLOSED, OPEN = "2024-01-01_2024-01-02", "2024-01-03_2024-01-04"
COLUMNS = "id, status, type, model, payment_method, currency, amount, entry, day"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path, filter="data")
    return tmp_path / "out"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def old_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("6",)
        return db.execute(f"SELECT {COLUMNS} FROM booked WHERE period = ? ORDER BY id", (CLOSED,)).fetchall()


def test_booked_rows_become_the_snapshot_exactly_and_the_seal_still_holds(out: Path):
    books = out / "books.sqlite"
    before, size = old_rows(books), books.stat().st_size
    assert len(before) == 246

    checked = run("books", "check", "--out", str(out))  # opens read-only: migrates once, in place
    assert checked.exit_code == 0, checked.output
    assert "1 closed period(s) match the books" in checked.output and "before the books kept seals" not in checked.output

    with Books(books, write=False) as opened:
        version = opened.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        tables = {name for (name,) in opened.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        snapshot = opened.snapshot(CLOSED)
        assert opened.snapshot_data(OPEN) is None  # an open period exported before kept nothing to close with
        assert opened.seal_problem(CLOSED) is None and opened.sealed(CLOSED)
    assert int(version) == SCHEMA_VERSION and "booked" not in tables and "snapshots" in tables
    after = sorted(tuple(None if v is None or v != v else (int(v) if k in ("amount", "day") else v)
                         for k, v in zip(COLUMNS.split(", "), row))
                   for row in snapshot[COLUMNS.split(", ")].itertuples(index=False))
    assert after == before
    assert books.stat().st_size < size  # the rows' pages given back


def test_an_open_period_of_the_old_books_is_exported_again_before_it_closes(out: Path):
    refused = run("close", "--start", "2024-01-03", "--end", "2024-01-04", "--out", str(out))
    assert refused.exit_code == 2
    assert "exported by an older wavespeed-export" in refused.output and "export it again" in refused.output

    again = run("export", "--sandbox", "--start", "2024-01-03", "--end", "2024-01-04", "--out", str(out),
                "--format", "csv", "-q")
    assert again.exit_code == 0, again.output
    closed = run("close", "--start", "2024-01-03", "--end", "2024-01-04", "--out", str(out))
    assert closed.exit_code == 0, closed.output
    with Books(out / "books.sqlite", write=False) as books:
        ids = books.snapshot(OPEN)["id"].tolist()
        assert len(ids) == 218 and not set(ids) & set(books.snapshot(CLOSED)["id"])
    assert run("books", "check", "--out", str(out)).exit_code == 0


def test_old_books_edited_by_hand_are_refused_not_migrated(out: Path):
    books = out / "books.sqlite"
    with sqlite3.connect(books) as db:
        db.execute("UPDATE booked SET amount = amount - 1 WHERE id = (SELECT min(id) FROM booked)")
    db.close()
    edited = books.read_bytes()
    result = run("books", "--out", str(out))
    assert result.exit_code == 5
    assert f"closed period {CLOSED} no longer matches its seal" in result.output
    assert books.read_bytes() == edited  # nothing migrated, nothing blessed
