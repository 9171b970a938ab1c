"""The books database's schema, as forward migrations (docs/booking.md, "What the books refuse").

``MIGRATIONS[n]`` takes a database from schema version n to n + 1; :class:`~.database.Books`
applies the missing ones when it opens a file, inside one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from . import migrate_snapshots

# Forward migrations: MIGRATIONS[n] takes the schema from version n to n + 1 (SQL, or a function
# of the connection and the books' path).
MIGRATIONS: list[str | Callable[[sqlite3.Connection, Path], None]] = [
    """
    CREATE TABLE periods (
        account TEXT NOT NULL, label TEXT NOT NULL,
        first_day TEXT NOT NULL, last_day TEXT NOT NULL, time_zone TEXT NOT NULL,
        start_utc TEXT NOT NULL, end_utc TEXT NOT NULL, granularity TEXT NOT NULL,
        exported_at TEXT NOT NULL, pack TEXT NOT NULL, manifest_sha256 TEXT NOT NULL,
        records INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
        closed_at TEXT,
        PRIMARY KEY (account, label));
    CREATE TABLE rollforward (
        account TEXT NOT NULL, label TEXT NOT NULL, currency TEXT NOT NULL,
        opening INTEGER, topups INTEGER NOT NULL, usage INTEGER NOT NULL, refunds INTEGER NOT NULL,
        other INTEGER NOT NULL, adjustments INTEGER NOT NULL, closing INTEGER,
        opening_source TEXT NOT NULL, provider_balance INTEGER, pending INTEGER NOT NULL,
        PRIMARY KEY (account, label, currency));
    CREATE TABLE period_models (
        account TEXT NOT NULL, label TEXT NOT NULL, model TEXT NOT NULL, currency TEXT NOT NULL,
        count INTEGER NOT NULL, amount INTEGER NOT NULL, refunds INTEGER NOT NULL,
        PRIMARY KEY (account, label, model, currency));
    CREATE TABLE carry (
        account TEXT NOT NULL, label TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('balance', 'counter')),
        line_account TEXT NOT NULL, line_class TEXT NOT NULL, currency TEXT NOT NULL,
        exact INTEGER NOT NULL, posted INTEGER NOT NULL,
        PRIMARY KEY (account, label, side, line_account, line_class, currency));
    CREATE TABLE booked (
        account TEXT NOT NULL, id TEXT NOT NULL, period TEXT NOT NULL, status TEXT NOT NULL,
        type TEXT NOT NULL, model TEXT NOT NULL, payment_method TEXT NOT NULL, currency TEXT NOT NULL,
        amount INTEGER NOT NULL, entry TEXT,
        PRIMARY KEY (account, id)) WITHOUT ROWID;
    CREATE INDEX booked_period ON booked (account, period);
    CREATE TABLE adjustments (
        account TEXT NOT NULL, label TEXT NOT NULL, id TEXT NOT NULL, period TEXT NOT NULL,
        change TEXT NOT NULL, type TEXT NOT NULL, model TEXT NOT NULL, payment_method TEXT NOT NULL,
        currency TEXT NOT NULL, status_before TEXT NOT NULL, status_after TEXT NOT NULL,
        amount_before INTEGER NOT NULL, amount_after INTEGER NOT NULL, delta INTEGER NOT NULL,
        PRIMARY KEY (account, label, id, period));
    CREATE TABLE ledger_accounts (
        account TEXT NOT NULL, name TEXT NOT NULL, currency TEXT NOT NULL, first_label TEXT NOT NULL,
        PRIMARY KEY (account, name, currency));
    CREATE TABLE events (
        account TEXT NOT NULL, at TEXT NOT NULL, label TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);
    """,
    # 2: the books' invariants (docs/booking.md, "What the books refuse"): a record is booked per
    # period, so one period's close never overwrites another's; a closed period overlaps no other
    # period of its account; where the records came from.
    """
    CREATE TABLE booked_by_period (
        account TEXT NOT NULL, id TEXT NOT NULL, period TEXT NOT NULL, status TEXT NOT NULL,
        type TEXT NOT NULL, model TEXT NOT NULL, payment_method TEXT NOT NULL, currency TEXT NOT NULL,
        amount INTEGER NOT NULL, entry TEXT,
        PRIMARY KEY (account, period, id)) WITHOUT ROWID;
    INSERT INTO booked_by_period SELECT * FROM booked;
    DROP TABLE booked;
    ALTER TABLE booked_by_period RENAME TO booked;
    CREATE INDEX booked_id ON booked (account, id);
    CREATE TRIGGER booked_period_known BEFORE INSERT ON booked
    WHEN NOT EXISTS (SELECT 1 FROM periods p WHERE p.account = NEW.account AND p.label = NEW.period)
    BEGIN SELECT RAISE(ABORT, 'books: a record booked in a period the books do not hold'); END;
    CREATE TRIGGER periods_insert_no_overlap BEFORE INSERT ON periods
    WHEN EXISTS (SELECT 1 FROM periods p WHERE p.account = NEW.account AND p.label != NEW.label
                 AND p.start_utc < NEW.end_utc AND NEW.start_utc < p.end_utc
                 AND (p.status = 'closed' OR NEW.status = 'closed'))
    BEGIN SELECT RAISE(ABORT, 'books: a period overlapping a closed period'); END;
    CREATE TRIGGER periods_close_no_overlap BEFORE UPDATE OF status, start_utc, end_utc ON periods
    WHEN NEW.status = 'closed' AND EXISTS (
        SELECT 1 FROM periods p WHERE p.account = NEW.account AND p.label != NEW.label
        AND p.start_utc < NEW.end_utc AND NEW.start_utc < p.end_utc)
    BEGIN SELECT RAISE(ABORT, 'books: closing a period that overlaps another'); END;
    CREATE TABLE sources (
        account TEXT NOT NULL, label TEXT NOT NULL, base_url TEXT NOT NULL, key_fingerprint TEXT NOT NULL,
        api TEXT, PRIMARY KEY (account, label));
    INSERT OR IGNORE INTO meta VALUES ('source_salt', lower(hex(randomblob(16))));
    """,
    """
    CREATE TABLE acknowledged (
        account TEXT NOT NULL, id TEXT NOT NULL, reason TEXT NOT NULL CHECK (trim(reason) != ''),
        at TEXT NOT NULL, PRIMARY KEY (account, id));
    """,
    # 4: one booking per record (docs/booking.md, "What the books refuse"): a rebooked record has
    # two late changes in one period (its reversal and its new booking); a record is booked in
    # one period only; each period remembers the earlier exports it was booked on (its basis).
    """
    CREATE TABLE adjustments_by_change (
        account TEXT NOT NULL, label TEXT NOT NULL, id TEXT NOT NULL, period TEXT NOT NULL,
        change TEXT NOT NULL, type TEXT NOT NULL, model TEXT NOT NULL, payment_method TEXT NOT NULL,
        currency TEXT NOT NULL, status_before TEXT NOT NULL, status_after TEXT NOT NULL,
        amount_before INTEGER NOT NULL, amount_after INTEGER NOT NULL, delta INTEGER NOT NULL,
        PRIMARY KEY (account, label, id, period, change));
    INSERT INTO adjustments_by_change SELECT * FROM adjustments ORDER BY rowid;
    DROP TABLE adjustments;
    ALTER TABLE adjustments_by_change RENAME TO adjustments;
    ALTER TABLE periods ADD COLUMN basis TEXT;
    CREATE TRIGGER booked_once BEFORE INSERT ON booked
    WHEN EXISTS (SELECT 1 FROM booked b WHERE b.account = NEW.account AND b.id = NEW.id AND b.period != NEW.period)
    BEGIN SELECT RAISE(ABORT, 'books: a record already booked in another period'); END;
    """,
    # 5: late changes found from the provider's day totals (docs/booking.md, "Finding late
    # changes"): each booked record's UTC day (days since 1970-01-01; NULL when closed before), and
    # the closed days an export re-read in full.
    """
    ALTER TABLE booked ADD COLUMN day INTEGER;
    ALTER TABLE adjustments ADD COLUMN day INTEGER;
    CREATE TABLE full_checks (
        account TEXT NOT NULL, label TEXT NOT NULL, day INTEGER NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (account, label, day)) WITHOUT ROWID;
    """,
    # 6: the seal of each closed period: the sha256 of what its close fixed (booked records, the late
    # changes it posted, its roll-forward and running totals), verified by `books check`
    """
    CREATE TABLE seals (
        account TEXT NOT NULL, label TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (account, label));
    """,
    # 7: what the books keep of each record (docs/booking.md, "What the books keep of each record"):
    # one compressed snapshot per period, taken at export; a closed period's is fixed, and a period
    # closes only with one
    """
    CREATE TABLE snapshots (
        account TEXT NOT NULL, label TEXT NOT NULL, records INTEGER NOT NULL CHECK (records >= 0),
        data BLOB NOT NULL CHECK (typeof(data) = 'blob'),
        PRIMARY KEY (account, label));
    CREATE TRIGGER snapshot_period_known BEFORE INSERT ON snapshots
    WHEN NOT EXISTS (SELECT 1 FROM periods p WHERE p.account = NEW.account AND p.label = NEW.label)
    BEGIN SELECT RAISE(ABORT, 'books: booked records of a period the books do not hold'); END;
    CREATE TRIGGER snapshot_closed_fixed BEFORE DELETE ON snapshots
    WHEN EXISTS (SELECT 1 FROM periods p WHERE p.account = OLD.account AND p.label = OLD.label AND p.status = 'closed')
    BEGIN SELECT RAISE(ABORT, 'books: the booked records of a closed period are fixed'); END;
    CREATE TRIGGER snapshot_closed_fixed_update BEFORE UPDATE ON snapshots
    WHEN EXISTS (SELECT 1 FROM periods p WHERE p.account = OLD.account AND p.label = OLD.label AND p.status = 'closed')
    BEGIN SELECT RAISE(ABORT, 'books: the booked records of a closed period are fixed'); END;
    CREATE TRIGGER periods_close_kept BEFORE UPDATE OF status ON periods
    WHEN NEW.status = 'closed' AND NOT EXISTS (
        SELECT 1 FROM snapshots s WHERE s.account = NEW.account AND s.label = NEW.label)
    BEGIN SELECT RAISE(ABORT, 'books: closing a period whose booked records were not kept'); END;
    """,
    # 8: the booked rows of older books become their periods' snapshots (seals verified, then made again)
    migrate_snapshots.migrate,
]
SCHEMA_VERSION = len(MIGRATIONS)
