"""The books database enforces its own invariants (docs/booking.md, "What the books refuse"):
tested on the database directly, below the CLI, so no caller can forget them."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from exporter.books.database import Books, Period
from exporter.books.schema import MIGRATIONS, SCHEMA_VERSION
from exporter.books.snapshots import Snapshot
from exporter.errors import ConfigError
from exporter.period import period_window

WHEN = datetime(2024, 6, 1, tzinfo=timezone.utc)


def period(label: str, status: str = "open") -> Period:
    window = period_window(label)
    return Period(label, window.first_day, window.last_day, "UTC", window.start, window.end, "monthly", WHEN,
                  f"out/{label}", "0" * 64, 0, status, WHEN if status == "closed" else None)


def keep(books: Books, label: str, *ids: str) -> None:
    """What an export of ``label`` booked: a completed usage record of 1 USD per id."""
    books.keep_snapshot(label, Snapshot.of(pd.DataFrame({
        "id": list(ids), "status": "completed", "type": "usage", "model": "m/x", "payment_method": "card",
        "currency": "USD", "amount": [-1_000_000] * len(ids), "entry": "WS2401U", "day": 19_723})))


def test_a_closed_period_overlaps_nothing(tmp_path):
    with Books(tmp_path / "books.sqlite") as books, books.transaction():
        books.add_period(period("2024-01"))
        keep(books, "2024-01")
        books.close("2024-01", WHEN)
        for label in ("2024-Q1", "2024-01"):
            with pytest.raises(ConfigError, match="2024-01"):
                books.add_period(period(label))
        books.add_period(period("2024-02"))  # next to it: fine
        assert [p.label for p in books.periods()] == ["2024-01", "2024-02"]


def test_the_triggers_refuse_what_a_careless_caller_writes(tmp_path):
    with Books(tmp_path / "books.sqlite") as books, books.transaction():
        books.add_period(period("2024-Q1"))
        books.add_period(period("2024-02"))  # two open drafts may overlap
        keep(books, "2024-Q1", "r1")
        with pytest.raises(sqlite3.IntegrityError, match="overlaps"):  # closing one of them directly
            books.db.execute("UPDATE periods SET status = 'closed' WHERE label = '2024-Q1'")
        books.db.execute("DELETE FROM periods WHERE label = '2024-02'")
        books.db.execute("DELETE FROM snapshots WHERE label = '2024-Q1'")
        with pytest.raises(sqlite3.IntegrityError, match="booked records were not kept"):  # schema 7: no snapshot
            books.db.execute("UPDATE periods SET status = 'closed' WHERE label = '2024-Q1'")
        keep(books, "2024-Q1", "r1")
        books.db.execute("UPDATE periods SET status = 'closed' WHERE label = '2024-Q1'")
        for change in ("DELETE FROM snapshots", "UPDATE snapshots SET records = 0"):  # a closed period's are fixed
            with pytest.raises(sqlite3.IntegrityError, match="closed period are fixed"):
                books.db.execute(change)
        with pytest.raises(sqlite3.IntegrityError, match="overlapping a closed period"):
            books.db.execute("INSERT INTO periods SELECT account, '2024-03', first_day, last_day, time_zone, start_utc, "
                             "end_utc, granularity, exported_at, pack, manifest_sha256, records, 'open', NULL, NULL "
                             "FROM periods WHERE label = '2024-Q1'")
        with pytest.raises(sqlite3.IntegrityError, match="do not hold"):
            books.db.execute("INSERT INTO snapshots VALUES ('default', '2023-12', 0, x'00')")


def test_a_record_is_booked_once_and_never_replaced(tmp_path):
    path = tmp_path / "books.sqlite"
    with Books(path) as books, books.transaction():
        for label in ("2024-01", "2024-02"):
            books.add_period(period(label))
        keep(books, "2024-01", "r1", "r2")
        books.close("2024-01", WHEN)
        keep(books, "2024-02", "r3", "r2")
    with Books(path) as books:
        with pytest.raises(ConfigError, match="'r2' of 2024-02 is already booked in 2024-01"), books.transaction():
            books.close("2024-02", WHEN)
        with pytest.raises(ConfigError, match="closed period are fixed"), books.transaction():
            keep(books, "2024-01", "r1")  # a closed period's booked records are never replaced
        assert books.period("2024-02").status == "open"  # type: ignore[union-attr]
        assert books.snapshot("2024-01")["id"].tolist() == ["r1", "r2"]


def test_closing_drops_the_open_drafts_it_supersedes(tmp_path):
    with Books(tmp_path / "books.sqlite") as books, books.transaction():
        books.add_period(period("2024-Q1"))
        books.add_period(period("2024-01"))
        keep(books, "2024-Q1", "r1")
        keep(books, "2024-01", "r1")
        assert books.close("2024-01", WHEN) == ["2024-Q1"]
        assert books.snapshot_data("2024-Q1") is None
        assert [(p.label, p.status) for p in books.periods()] == [("2024-01", "closed")]
        with pytest.raises(ConfigError, match="was closed"):
            books.close("2024-01", WHEN)


def test_a_database_written_by_schema_1_opens_and_keeps_its_records(tmp_path):
    path = tmp_path / "books.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    jan = period("2024-01", "closed")
    db.execute("INSERT INTO periods VALUES ('default', '2024-01', ?, ?, 'UTC', ?, ?, 'monthly', ?, 'p', ?, 1, 'closed', ?)",
               (str(jan.first_day), str(jan.last_day), jan.start_utc.isoformat(timespec="milliseconds"),
                jan.end_utc.isoformat(timespec="milliseconds"), WHEN.isoformat(), "0" * 64, WHEN.isoformat()))
    db.execute("INSERT INTO booked VALUES ('default', 'r1', '2024-01', 'completed', 'usage', 'm', 'c', 'USD', -5, 'WS2401U001')")
    db.commit()
    db.close()
    with Books(path) as books:
        version = books.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        # 2: periods that cannot overlap, sources; 3: acknowledged records; 4: booked once, rebookings,
        # bases; 5: each booked record's day, full re-checks; 6: seals; 7-8: snapshots instead of rows
        assert int(version) == SCHEMA_VERSION == 8
        frame = books.booked(["2024-01"])
        assert frame[["id", "period", "amount"]].values.tolist() == [["r1", "2024-01", -5]]
        with pytest.raises(ConfigError, match="overlaps 2024-01"), books.transaction():
            books.add_period(period("2024-Q1"))
    with Books(path) as again:  # opening it once more changes nothing
        assert [p.label for p in again.periods()] == ["2024-01"]
        assert again.periods()[0].first_day == date(2024, 1, 1)


def test_a_new_database_has_the_current_schema(tmp_path: Path):
    with Books(tmp_path / "books.sqlite") as books:
        names = {r[0] for r in books.db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    assert {"snapshots", "sources", "periods_insert_no_overlap", "periods_close_no_overlap", "periods_close_kept"} <= names
    assert "booked" not in names


def test_a_rotated_key_is_the_same_account_when_it_serves_the_books_records(tmp_path):
    from exporter.books.sources import Source, check_needed, record_source, verify

    with Books(tmp_path / "books.sqlite") as books, books.transaction():
        books.add_period(period("2024-01"))
        record_source(books, "2024-01", Source("https://api.example", "a" * 64))
        keep(books, "2024-01", "r1", "r2", "r3")
        books.close("2024-01", WHEN)
        assert check_needed(books, Source("https://api.example", "a" * 64)) is None  # the same source
        check = check_needed(books, Source("https://api.example", "b" * 64))  # the key was rotated
        assert check is not None and check.period.label == "2024-01"
    served = pd.DataFrame({"id": ["r1", "r2", "r3"], "amount_micros": [-1_000_000, -1_000_000, -3]})  # r3 re-priced
    note = verify(check, served)
    assert "the same account" in note and "2 of 3 records" in note and "a" * 64 not in note
    with pytest.raises(ConfigError, match="does not serve 2024-01 as booked.*another books or out") as refused:
        verify(check, pd.DataFrame({"id": ["x1", "r1"], "amount_micros": [-1, -1_000_000]}))
    assert refused.value.settings == ["books", "out"]  # the CLI names them as its options (--books, --out)
