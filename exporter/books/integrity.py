"""The books' integrity: opening them to read (read-only files and folders too), what a broken
file or a full disk becomes, damaged values found on opening, and the seal of a closed period
(docs/booking.md, "What the books refuse")."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from ..errors import ConfigError, DataError, ExportError, OutputError

BUSY_TIMEOUT = 30.0  # seconds a writer waits for another one before giving up

# what a period's seal covers besides its booked records: (table, columns, the column naming the period, order)
SEALED_ROWS = (
    ("adjustments", "id, period, change, type, model, payment_method, currency, status_before, status_after, "
                    "amount_before, amount_after, delta, day", "label", "id, period, change"),
    ("rollforward", "currency, opening, topups, usage, refunds, other, adjustments, closing, opening_source, "
                    "provider_balance, pending", "label", "currency"),
    ("carry", "side, line_account, line_class, currency, exact, posted", "label", "side, line_account, line_class, currency"),
)


def aware(text: str) -> datetime:
    """An instant as the books store it (ISO 8601 with its offset); ValueError for anything else."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return value


def period_row_ok(row: Sequence[object]) -> bool:
    try:
        date.fromisoformat(row[1]), date.fromisoformat(row[2])  # type: ignore[arg-type]
        for text in (row[4], row[5], row[7], *([row[12]] if row[12] is not None else [])):
            aware(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def connect_for_reading(path: Path) -> sqlite3.Connection:
    """The books opened to read. Writable ones as usual (SQLite then tidies its ``-wal`` and
    ``-shm`` files on close); a read-only file or folder with ``mode=ro``, and, since a WAL reader
    needs a ``-shm`` file that a read-only folder cannot hold, as immutable when that fails
    (nobody can write there either)."""
    if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        return sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    uri = path.absolute().as_uri()
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError as exc:
        if "unable to open" not in str(exc) and "readonly" not in str(exc):
            raise  # busy, or another failure: said as such
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)


def books_error(path: Path, exc: sqlite3.Error) -> ExportError:
    """An SQLite failure on the books, translated: a full disk is exit 7, a file that is not a
    database exit 5, anything else exit 2 naming the file."""
    text = str(exc)
    if "disk is full" in text or "disk I/O error" in text:
        return OutputError(f"cannot write the books {path}: {text} (no space left?); the books are as they were")
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return DataError(f"{path} is not a books database ({text})")
    return ConfigError(f"{path}: cannot use the books database: {text}")


def integer_problem(db: sqlite3.Connection) -> str | None:
    """The first INTEGER column of the books holding something else (text, a real), said as
    ``table.column holds '...'``; None when every one holds integers or NULL. The booked records
    are a compressed snapshot per period, left to the seals that ``books check`` verifies."""
    tables = [name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta' "
        "AND name NOT LIKE 'sqlite_%'")]
    for table in tables:
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})") if str(row[2]).upper() == "INTEGER"]
        if not columns:
            continue
        where = " OR ".join(f"typeof({c}) NOT IN ('integer', 'null')" for c in columns)
        bad = db.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {where} LIMIT 1").fetchone()
        if bad is not None:
            column, value = next((c, v) for c, v in zip(columns, bad) if not isinstance(v, (int, type(None))))
            return f"{table}.{column} holds {str(value)[:20]!r}, not an integer"
    return None


def seal_digest(db: sqlite3.Connection, account: str, label: str) -> str:
    """The sha256 of what closing ``label`` fixed in the books: its booked records (the sha256 of
    their snapshot's bytes), the late changes posted in it, its roll-forward and its running totals
    (rows in key order)."""
    snapshot = [(records, hashlib.sha256(bytes(data)).hexdigest()) for records, data in db.execute(
        "SELECT records, data FROM snapshots WHERE account = ? AND label = ?", (account, label))]
    return rows_digest(db, account, label, SEALED_ROWS, ["snapshots", snapshot])


def rows_digest(db: sqlite3.Connection, account: str, label: str, tables: Sequence[tuple[str, str, str, str]],
                first: object = None) -> str:
    """The sha256 of ``first`` (unless None) and then of each table's rows of ``label`` (JSON, rows
    in key order)."""
    digest = hashlib.sha256(b"" if first is None else json.dumps(first, separators=(",", ":")).encode("utf-8"))
    for table, columns, key, order in tables:
        rows = db.execute(f"SELECT {columns} FROM {table} WHERE account = ? AND {key} = ? ORDER BY {order}",
                          (account, label)).fetchall()
        digest.update(json.dumps([table, rows], separators=(",", ":")).encode("utf-8"))
    return digest.hexdigest()


class Seals:
    """The seals of closed periods (docs/booking.md, "What the books refuse"), as methods of
    :class:`~.database.Books`."""

    db: sqlite3.Connection
    account: str
    path: Path

    def seal_digest(self, label: str) -> str:
        """The sha256 of what closing ``label`` fixed in the books (:func:`seal_digest`)."""
        return seal_digest(self.db, self.account, label)

    def seal(self, label: str) -> None:
        """Keep the seal of period ``label`` just closed (inside the closing transaction)."""
        self.db.execute("INSERT OR REPLACE INTO seals VALUES (?, ?, ?)", (self.account, label, self.seal_digest(label)))

    def seal_problem(self, label: str) -> str | None:
        """Why closed period ``label``'s rows no longer match its seal; None when they do, or when it
        was closed before the books kept seals (:meth:`sealed` tells)."""
        row = self.db.execute("SELECT sha256 FROM seals WHERE account = ? AND label = ?", (self.account, label)).fetchone()
        if row is None or row[0] == self.seal_digest(label):
            return None
        return (f"its booked records, late changes, roll-forward or running totals in {self.path} were changed "
                "since it was closed (the seal kept at close no longer matches)")

    def sealed(self, label: str) -> bool:
        return self.db.execute("SELECT 1 FROM seals WHERE account = ? AND label = ?", (self.account, label)).fetchone() is not None
