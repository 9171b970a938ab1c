"""Schema 8: the booked records move from a row per record into one snapshot per period
(docs/booking.md, "What the books keep of each record").

Books written by earlier versions are converted in place, inside the migration's transaction:
the seals of their closed periods are verified first (as those versions computed them), so a
hand edit made before the upgrade is refused, never blessed; then each period's rows become its
snapshot, the row table goes, and the seals are made again over the snapshots.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from ..errors import DataError
from .integrity import SEALED_ROWS, rows_digest, seal_digest
from .snapshots import SNAPSHOT_COLUMNS, encode

_BOOKED_ROWS = ("booked", "id, period, status, type, model, payment_method, currency, amount, entry, day", "period", "id")

def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Schema 7 -> 8, inside the migration's transaction (DataError, nothing changed, for books
    whose closed periods no longer match their seals)."""
    sealed = db.execute("SELECT account, label, sha256 FROM seals").fetchall()
    for account, label, sha in sealed:
        if rows_digest(db, account, label, (_BOOKED_ROWS, *SEALED_ROWS)) != sha:
            raise DataError(f"{path}: books damaged: closed period {label} no longer matches its seal "
                            "(changed since it was closed); restore the file from a backup")
    keys = db.execute("SELECT account, label FROM periods WHERE status = 'closed' UNION "
                      "SELECT DISTINCT account, period FROM booked").fetchall()
    for account, label in keys:
        rows = db.execute("SELECT id, status, type, model, payment_method, currency, amount, entry, day FROM booked "
                          "WHERE account = ? AND period = ?", (account, label)).fetchall()
        frame = pd.DataFrame(rows, columns=list(SNAPSHOT_COLUMNS))
        db.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?)", (account, label, len(frame), encode(frame)))
    db.execute("DROP TABLE booked")
    for account, label, _ in sealed:
        db.execute("UPDATE seals SET sha256 = ? WHERE account = ? AND label = ?",
                   (seal_digest(db, account, label), account, label))
