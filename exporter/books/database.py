"""The books database: what the books already contain, so closed periods stay closed.

One SQLite file (``<out>/books.sqlite`` by default), WAL mode, a schema version with forward
migrations. Every table has an ``account`` column ("default" for now: several provider accounts
may share one file later). It records every period exported (window, when, the pack's manifest
sha256, open or closed), the roll-forward and per-model figures of each export, the rounding
state (running totals) at the end of each period, every record as it was booked when its period
was closed (pending ones included), the late changes posted as adjustments, and who reopened what
and why. The packs and their archives stay the audit trail; this is their index.

Writes happen in one transaction (:meth:`Books.transaction`, ``BEGIN IMMEDIATE``) that the
pipeline commits only after the pack's final rename, so the pack and the books change together
or not at all. A second writer waits up to the busy timeout, then gets a one-line error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from .carry import Carry, Total
from .numbering import ACCOUNT_CODES, DEFAULT_CODE
from .schema import MIGRATIONS, SCHEMA_VERSION

BOOKS_NAME = "books.sqlite"
DEFAULT_ACCOUNT = "default"
_CODE_KEY = "journal_code:"  # meta key prefix: the journal letter of each account (Books.journal_code)
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another one before giving up



@dataclass(frozen=True)
class Period:
    """One exported period as the books know it."""

    label: str
    first_day: date
    last_day: date
    time_zone: str
    start_utc: datetime
    end_utc: datetime
    granularity: str
    exported_at: datetime
    pack: str
    manifest_sha256: str
    records: int
    status: str
    closed_at: datetime | None

    @property
    def closed(self) -> bool:
        return self.status == "closed"


def _instant(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _parse_instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _statements(script: str) -> Iterator[str]:
    """The complete SQL statements of a script (a trigger's body holds semicolons of its own)."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def _when(period: Period) -> str:
    return f"{period.closed_at:%Y-%m-%d %H:%M} UTC" if period.closed_at else "an earlier date"


@contextmanager
def _invariant() -> Iterator[None]:
    """A write the schema's keys or triggers refuse: a one-line ConfigError (exit 2)."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise ConfigError(f"the books refuse this change ({exc}); nothing was written") from None


def _overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class Books:
    """The open database; use as a context manager (closes the connection)."""

    def __init__(self, path: Path, account: str = DEFAULT_ACCOUNT) -> None:
        self.path = path
        self.account = account
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{path}: cannot use the books database: {exc}") from None

    def __enter__(self) -> Books:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def _migrate(self) -> None:
        with self.transaction():
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"{self.path} was written by a newer wavespeed-export (schema {version}, this one knows "
                    f"{SCHEMA_VERSION}): upgrade the tool"
                )
            if version == SCHEMA_VERSION:
                return  # nothing to write: opening the books (to read, or to refuse) leaves the file as it was
            for script in MIGRATIONS[version:]:
                for statement in _statements(script):
                    self.db.execute(statement)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: one writer at a time; a rollback on any error."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise ConfigError(f"{self.path}: the books database is busy ({exc}); another export or close "
                              "is writing to it, try again when it has finished") from None
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- reading -----------------------------------------------------------------------------

    def periods(self) -> list[Period]:
        rows = self.db.execute(
            "SELECT label, first_day, last_day, time_zone, start_utc, end_utc, granularity, exported_at, pack, "
            "manifest_sha256, records, status, closed_at FROM periods WHERE account = ? ORDER BY start_utc, label",
            (self.account,),
        ).fetchall()
        return [
            Period(r[0], date.fromisoformat(r[1]), date.fromisoformat(r[2]), r[3], datetime.fromisoformat(r[4]),
                   datetime.fromisoformat(r[5]), r[6], datetime.fromisoformat(r[7]), r[8], r[9], r[10], r[11],
                   _parse_instant(r[12]))
            for r in rows
        ]

    def period(self, label: str) -> Period | None:
        return next((p for p in self.periods() if p.label == label), None)

    def before(self, start: datetime) -> Period | None:
        """The latest period that ends at or before ``start`` (the one whose running totals carry on)."""
        earlier = [p for p in self.periods() if p.end_utc <= start]
        return max(earlier, key=lambda p: p.end_utc) if earlier else None

    def carry(self, label: str) -> Carry:
        """The running totals at the end of period ``label``."""
        carry = Carry()
        for side, account, klass, currency, exact, posted in self.db.execute(
            "SELECT side, line_account, line_class, currency, exact, posted FROM carry WHERE account = ? AND label = ?",
            (self.account, label),
        ):
            (carry.balances if side == "balance" else carry.counters)[(account, klass, currency)] = Total(exact, posted)
        return carry

    def figures(self, label: str) -> pd.DataFrame:
        """The roll-forward recorded for period ``label``, one row per currency (exact micros)."""
        return pd.read_sql_query(
            "SELECT currency, opening, topups, usage, refunds, other, adjustments, closing, pending "
            "FROM rollforward WHERE account = ? AND label = ? ORDER BY currency", self.db, params=(self.account, label),
        )

    def closings(self, label: str) -> dict[str, int | None]:
        """Currency -> the closing balance the books recorded for period ``label`` (None: unknown)."""
        return dict(self.db.execute(
            "SELECT currency, closing FROM rollforward WHERE account = ? AND label = ?", (self.account, label)
        ).fetchall())

    def models(self, label: str) -> pd.DataFrame:
        """Per-model figures recorded for period ``label``: model, currency, count, amount, refunds."""
        return pd.read_sql_query(
            "SELECT model, currency, count, amount, refunds FROM period_models WHERE account = ? AND label = ?",
            self.db, params=(self.account, label),
        )

    def models_seen(self, excluding: str) -> frozenset[str]:
        """Every model the books recorded in a period other than ``excluding``."""
        rows = self.db.execute("SELECT DISTINCT model FROM period_models WHERE account = ? AND label != ?",
                               (self.account, excluding)).fetchall()
        return frozenset(model for (model,) in rows)

    def history(self, end: datetime, months: int = 12) -> pd.DataFrame:
        """Usage and refunds of up to ``months`` earlier periods ending at or before ``end``, oldest first."""
        frame = pd.read_sql_query(
            "SELECT p.label, r.currency, r.usage AS usage_micros, r.refunds AS refunds_micros FROM periods p "
            "JOIN rollforward r ON r.account = p.account AND r.label = p.label "
            "WHERE p.account = ? AND p.end_utc <= ? ORDER BY p.end_utc DESC",
            self.db, params=(self.account, _instant(end)),
        )
        labels = list(dict.fromkeys(frame["label"]))[:months]
        return frame[frame["label"].isin(labels)].iloc[::-1].reset_index(drop=True)

    def booked(self, labels: list[str]) -> pd.DataFrame:
        """Every record of the closed periods ``labels`` as the books hold it now: the state at
        close, overlaid by the late changes posted in closed periods since (latest wins).
        ``reported_missing`` marks records a closed period already reported as no longer returned,
        and those acknowledged as gone (``books acknowledge``): neither is reported again."""
        if not labels:
            return pd.DataFrame(columns=["id", "period", "status", "type", "model", "payment_method", "currency",
                                         "amount", "reported_missing"])
        marks = ",".join("?" * len(labels))
        snapshot = pd.read_sql_query(
            f"SELECT id, period, status, type, model, payment_method, currency, amount FROM booked "
            f"WHERE account = ? AND period IN ({marks})", self.db, params=(self.account, *labels),
        )
        later = pd.read_sql_query(
            f"SELECT a.id, a.period, a.status_after AS status, a.type, a.model, a.payment_method, a.currency, "
            f"a.amount_after AS amount FROM adjustments a JOIN periods p ON p.account = a.account AND p.label = a.label "
            f"WHERE a.account = ? AND p.status = 'closed' AND a.period IN ({marks}) AND a.change != 'missing' "
            f"ORDER BY p.end_utc", self.db, params=(self.account, *labels),
        )
        missing = pd.read_sql_query(
            f"SELECT a.id FROM adjustments a JOIN periods p ON p.account = a.account AND p.label = a.label "
            f"WHERE a.account = ? AND p.status = 'closed' AND a.period IN ({marks}) AND a.change = 'missing'",
            self.db, params=(self.account, *labels),
        )
        acknowledged = pd.read_sql_query("SELECT id FROM acknowledged WHERE account = ?", self.db, params=(self.account,))
        both = pd.concat([snapshot, later], ignore_index=True).drop_duplicates("id", keep="last")
        quiet = both["id"].isin(missing["id"]) | both["id"].isin(acknowledged["id"])
        return both.assign(reported_missing=quiet).reset_index(drop=True)

    def acknowledge(self, record_id: str, reason: str, when: datetime) -> str | None:
        """Accept that a record booked in a closed period is gone from the provider: it is not
        reported missing again. Returns the closed period that booked it, None if none did."""
        row = self.db.execute(
            "SELECT b.period FROM booked b JOIN periods p ON p.account = b.account AND p.label = b.period "
            "WHERE b.account = ? AND b.id = ? AND p.status = 'closed'", (self.account, record_id)).fetchone()
        if row is None:
            return None
        self.db.execute("INSERT OR REPLACE INTO acknowledged VALUES (?, ?, ?, ?)",
                        (self.account, record_id, reason, _instant(when)))
        return str(row[0])

    def adjustments(self, label: str) -> pd.DataFrame:
        return pd.read_sql_query(
            "SELECT * FROM adjustments WHERE account = ? AND label = ?", self.db, params=(self.account, label)
        )

    def source_salt(self) -> str:
        """The salt of the key fingerprints in these books (random, made with the schema)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'source_salt'").fetchone()
        return str(row[0])

    def source(self, label: str) -> tuple[str, str, str | None] | None:
        """(base URL or "sandbox", key fingerprint, api) recorded for period ``label``; None if unknown."""
        row = self.db.execute("SELECT base_url, key_fingerprint, api FROM sources WHERE account = ? AND label = ?",
                              (self.account, label)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), row[2])

    def journal_code(self) -> str:
        """This account's letter in its journal numbers (books/numbering.py): ``S`` for the default
        account; for another, the letter the books gave it, or the next free one until its first
        export keeps it (:meth:`keep_journal_code`). ConfigError when no letter is left."""
        if self.account == DEFAULT_ACCOUNT:
            return DEFAULT_CODE
        taken = dict(self.db.execute(
            "SELECT key, value FROM meta WHERE substr(key, 1, length(?)) = ?", (_CODE_KEY, _CODE_KEY)).fetchall())
        mine = taken.get(_CODE_KEY + self.account)
        if mine:
            return str(mine)
        free = [code for code in ACCOUNT_CODES if code not in taken.values()]
        if not free:
            raise ConfigError(f"{self.path} holds {len(taken)} accounts besides the default one, as many as journal "
                              f"numbers can tell apart: account {self.account!r} needs books of its own")
        return free[0]

    def keep_journal_code(self, code: str) -> None:
        """Give this account the letter ``code`` for good (inside the export's transaction);
        ConfigError if another account took it meanwhile."""
        if self.account == DEFAULT_ACCOUNT:
            return
        if self.journal_code() != code:
            raise ConfigError(f"{self.path}: another account took the journal letter {code} meanwhile; "
                              "nothing was written, export again")
        self.db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (_CODE_KEY + self.account, code))

    def ledger_accounts(self) -> list[tuple[str, str, str]]:
        """(Beancount account, currency, first period label) of every account the ledger used so far."""
        return self.db.execute(
            "SELECT name, currency, first_label FROM ledger_accounts WHERE account = ? ORDER BY name, currency",
            (self.account,),
        ).fetchall()

    def overlapping(self, start: datetime, end: datetime, excluding: str) -> list[Period]:
        """The periods other than ``excluding`` that share an instant with ``[start, end)``."""
        return [p for p in self.periods() if p.label != excluding and _overlap((p.start_utc, p.end_utc), (start, end))]

    def refuse_closed(self, label: str, start: datetime, end: datetime) -> None:
        """ConfigError (exit 2) if period ``label`` over ``[start, end)`` may not be exported: it is
        closed, or it overlaps a closed period (docs/booking.md, "What the books refuse")."""
        period = self.period(label)
        if period is not None and period.closed:
            raise ConfigError(
                f"{label} was closed on {_when(period)}; late changes to it are booked in the next open period. "
                f"To restate it: wavespeed-export reopen --period {label} --reason \"...\""
            )
        closed = [p for p in self.overlapping(start, end, label) if p.closed]
        if closed:
            names = ", ".join(f"{p.label} (closed on {_when(p)})" for p in closed)
            raise ConfigError(
                f"{label} overlaps {names}: a closed period is never booked again, not even inside another "
                f"period; export the periods around it (its late changes go to the next open period), or reopen it"
            )

    # -- writing (inside a transaction) --------------------------------------------------------

    def forget(self, label: str) -> None:
        """Drop what an earlier export of an open period recorded (a re-export replaces it)."""
        for table in ("periods", "rollforward", "period_models", "carry", "adjustments", "sources"):
            self.db.execute(f"DELETE FROM {table} WHERE account = ? AND label = ?", (self.account, label))

    def add_period(self, period: Period) -> None:
        """A new period; refused (ConfigError) if it is or overlaps a closed one."""
        self.refuse_closed(period.label, period.start_utc, period.end_utc)
        with _invariant():
            self.db.execute(
                "INSERT INTO periods VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.account, period.label, period.first_day.isoformat(), period.last_day.isoformat(), period.time_zone,
                 _instant(period.start_utc), _instant(period.end_utc), period.granularity, _instant(period.exported_at),
                 period.pack, period.manifest_sha256, period.records, period.status,
                 None if period.closed_at is None else _instant(period.closed_at)),
            )

    def close(self, label: str, when: datetime) -> list[str]:
        """Mark period ``label`` closed. Open periods overlapping it are drafts it supersedes: they
        are dropped from the books (their packs stay on disk); returns their labels. Refused if it
        overlaps a closed period."""
        period = self.period(label)
        if period is None:
            raise ConfigError(f"{label} is not in the books {self.path}: export it first")
        self.refuse_closed(label, period.start_utc, period.end_utc)
        self._refuse_out_of_order(period)
        drafts = [p.label for p in self.overlapping(period.start_utc, period.end_utc, label)]
        for draft in drafts:
            self.forget(draft)
            self.drop_booked(draft)  # a reopened period keeps its records until closed again
            self.log(draft, "superseded", f"open export dropped from the books: {label}, which overlaps it, was closed", when)
        self.set_status(label, "closed", when)
        return drafts

    def _refuse_out_of_order(self, period: Period) -> None:
        """Periods close in order, each on the closing its predecessor has now (docs/booking.md,
        "What the books refuse"): an earlier period still open, or an opening taken from an
        earlier export of the period before that has since changed, would chain a draft's figure."""
        earlier = [p.label for p in self.periods()
                   if not p.closed and p.end_utc <= period.start_utc and p.label != period.label]
        if earlier:
            raise ConfigError(f"{', '.join(earlier)} {'is' if len(earlier) == 1 else 'are'} earlier than {period.label} "
                              f"and still open: close {'it' if len(earlier) == 1 else 'them'} first (periods close in order)")
        before = self.before(period.start_utc)
        if before is None or before.end_utc != period.start_utc:
            return
        now = self.closings(before.label)
        rows = self.db.execute("SELECT currency, opening, opening_source FROM rollforward WHERE account = ? AND label = ?",
                               (self.account, period.label)).fetchall()
        stale = [currency for currency, opening, source in rows
                 if source.startswith(f"closing of {before.label} ") and opening != now.get(currency)]
        if stale:
            raise ConfigError(f"{period.label} opened at the closing of an earlier export of {before.label}, which has "
                              f"changed since ({', '.join(stale)}): export {period.label} again, then close it")

    def add_rows(self, table: str, label: str, rows: Sequence[tuple[object, ...]]) -> None:
        """Rows of a per-period table, each given without its leading (account, label)."""
        if rows:
            marks = ",".join("?" * (len(rows[0]) + 2))
            self.db.executemany(f"INSERT INTO {table} VALUES ({marks})", [(self.account, label, *row) for row in rows])

    def add_source(self, label: str, name: str, fingerprint: str, api: str | None = None) -> None:
        """Where period ``label``'s records came from (docs/booking.md, "The books' source")."""
        self.db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)", (self.account, label, name, fingerprint, api))

    def add_carry(self, label: str, carry: Carry) -> None:
        rows = [("balance", *key, t.exact, t.posted) for key, t in carry.balances.items()]
        rows += [("counter", *key, t.exact, t.posted) for key, t in carry.counters.items()]
        self.add_rows("carry", label, rows)

    def add_ledger_accounts(self, label: str, names: list[tuple[str, str]]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO ledger_accounts VALUES (?, ?, ?, ?)",
            [(self.account, name, currency, label) for name, currency in names],
        )

    def add_booked(self, rows: Sequence[tuple[object, ...]]) -> None:
        """Records as booked at close: (id, period, status, type, model, payment_method, currency, amount, entry)."""
        with _invariant():  # a plain INSERT: booking a record twice in one period is a bug, never a replace
            self.db.executemany(
                "INSERT INTO booked VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((self.account, *row) for row in rows),
            )

    def set_status(self, label: str, status: str, when: datetime | None) -> None:
        with _invariant():
            self.db.execute(
                "UPDATE periods SET status = ?, closed_at = ? WHERE account = ? AND label = ?",
                (status, None if when is None else _instant(when), self.account, label),
            )

    def drop_booked(self, label: str) -> None:
        self.db.execute("DELETE FROM booked WHERE account = ? AND period = ?", (self.account, label))

    def log(self, label: str, action: str, detail: str, when: datetime) -> None:
        self.db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (self.account, _instant(when), label, action, detail))


__all__ = ["BOOKS_NAME", "DEFAULT_ACCOUNT", "SCHEMA_VERSION", "Books", "Period"]
