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

import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, DataError, os_reason
from . import period_rules
from .carry import Carry, Total
from .integrity import BUSY_TIMEOUT, Seals, aware, books_error, connect_for_reading, integer_problem, period_row_ok
from .numbering import DEFAULT_ACCOUNT, JournalCodes
from .period_rules import Period
from .schema import MIGRATIONS, SCHEMA_VERSION
from .snapshots import Snapshots

BOOKS_NAME = "books.sqlite"
_BOOKED = ["id", "status", "type", "model", "payment_method", "currency", "amount", "day"]



def _instant(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _statements(script: str) -> Iterator[str]:
    """The complete SQL statements of a script (a trigger's body holds semicolons of its own)."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


@contextmanager
def _invariant() -> Iterator[None]:
    """A write the schema's keys or triggers refuse: a one-line ConfigError (exit 2)."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise ConfigError(f"the books refuse this change ({exc}); nothing was written") from None


class Books(Seals, JournalCodes, Snapshots):
    """The open database; use as a context manager (closes the connection)."""

    def __init__(self, path: Path, account: str = DEFAULT_ACCOUNT, *, write: bool = True) -> None:
        """Open the books at ``path``; ``write=False`` opens them read-only (a read-only file or
        folder is fine) and never creates one. An existing file that is not books (0 bytes, no
        schema) is refused, never initialised (docs/booking.md, "What the books refuse")."""
        self.path = path
        self.account = account
        try:
            exists = path.exists()
            if not exists and not write:
                raise ConfigError(f"{path}: no books database yet (export a period first, or give [[books]])")
            if exists and path.is_file() and path.stat().st_size == 0:
                raise DataError(f"{path} is empty (0 bytes), not a books database: refusing to initialise it "
                                "(if a first export was interrupted, delete the file; else give the right [[books]])")
            if write:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
            else:
                self.db = connect_for_reading(path)
            try:
                version = self._version() if exists else 0
                if exists and version == 0:
                    raise DataError(f"{path} is not a books database (no schema version): refusing to initialise "
                                    "it; give the right [[books]], or move the file away")
                if not write and version < SCHEMA_VERSION:  # older books: migrate them once, in place
                    self.db.close()
                    write = True
                    self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
                if write:
                    self.db.execute("PRAGMA journal_mode=WAL")
                    self.db.execute("PRAGMA synchronous=NORMAL")
                    self._migrate()
                else:
                    self._check_version(version)
                self._audit()
            except BaseException:
                self.db.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise books_error(path, exc) from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot open the books database: {os_reason(exc)}") from None

    def __enter__(self) -> Books:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def _version(self) -> int:
        """The schema version the file records; 0 for a file with no ``meta`` table (not books)."""
        if self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            return int(row[0]) if row else 0
        except (TypeError, ValueError):
            raise self.damaged(f"meta.schema_version is {row[0]!r}") from None

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path} was written by a newer wavespeed-export (schema {version}, this one knows "
                f"{SCHEMA_VERSION}): upgrade the tool"
            )

    def _audit(self) -> None:
        """A hand edit that put text in an INTEGER column is "books damaged" (exit 5) here, not a
        failure somewhere downstream."""
        problem = integer_problem(self.db)
        if problem:
            raise self.damaged(problem)

    def damaged(self, what: str) -> DataError:
        """The one-line error for books a hand (or a disk) has broken: exit 5 naming the file."""
        return DataError(f"{self.path}: books damaged: {what}; restore the file from a backup")

    def _migrate(self) -> None:
        with self.transaction():
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = self._version()
            self._check_version(version)
            if version == SCHEMA_VERSION:
                return  # nothing to write: opening the books (to read, or to refuse) leaves the file as it was
            for script in MIGRATIONS[version:]:
                if callable(script):
                    script(self.db, self.path)
                    continue
                for statement in _statements(script):
                    self.db.execute(statement)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        if version and version < SCHEMA_VERSION:  # a migration may have dropped rows: give the space back once
            try:
                self.db.execute("VACUUM")
            except sqlite3.OperationalError:
                pass  # another connection reads the books: the space is reused by later writes instead

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
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:  # a full disk, an I/O error: one line and its exit code
            self._rollback()
            raise books_error(self.path, exc) from None
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self.db.in_transaction:  # SQLite may have rolled back itself (a full disk)
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    # -- reading -----------------------------------------------------------------------------

    def periods(self) -> list[Period]:
        rows = self.db.execute(
            "SELECT label, first_day, last_day, time_zone, start_utc, end_utc, granularity, exported_at, pack, "
            "manifest_sha256, records, status, closed_at FROM periods WHERE account = ? ORDER BY start_utc, label",
            (self.account,),
        ).fetchall()
        try:
            return [
                Period(r[0], date.fromisoformat(r[1]), date.fromisoformat(r[2]), r[3], aware(r[4]),
                       aware(r[5]), r[6], aware(r[7]), r[8], r[9], r[10], r[11],
                       None if r[12] is None else aware(r[12]))
                for r in rows
            ]
        except (TypeError, ValueError) as exc:
            bad = next(r[0] for r in rows if not period_row_ok(r))
            raise self.damaged(f"period {str(bad)[:40]!r} has a value that is not a date or instant ({exc})") from None

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

    def booked(self, labels: list[str], before: datetime | None = None) -> pd.DataFrame:
        """Every record of the closed periods ``labels`` as the books hold it now: the state at
        close, overlaid by the late changes posted since (in period order; the last one wins) by
        the periods that end at or before ``before`` — open ones included, so a change an earlier
        open export posted is not posted again — or, without ``before``, by the closed periods.
        ``reported_missing`` marks records a closed period already reported as no longer returned,
        and those acknowledged as gone (``books acknowledge``): neither is reported again."""
        if not labels:
            return pd.DataFrame(columns=["id", "period", "status", "type", "model", "payment_method", "currency",
                                         "amount", "day", "reported_missing"])
        marks = ",".join("?" * len(labels))
        snapshot = pd.concat([self.snapshot(label, _BOOKED).assign(period=label) for label in labels],
                             ignore_index=True)[["id", "period", *_BOOKED[1:]]]
        posted_by = "p.status = 'closed'" if before is None else "p.end_utc <= ?"
        later = pd.read_sql_query(
            f"SELECT a.id, a.period, a.status_after AS status, a.type, a.model, a.payment_method, a.currency, "
            f"a.amount_after AS amount, a.day FROM adjustments a JOIN periods p ON p.account = a.account AND p.label = a.label "
            f"WHERE a.account = ? AND {posted_by} AND a.period IN ({marks}) AND a.change NOT IN ('missing', 'moved') "
            f"ORDER BY p.end_utc, a.rowid", self.db,
            params=(self.account, *([] if before is None else [_instant(before)]), *labels),
        )
        missing = pd.read_sql_query(
            f"SELECT a.id FROM adjustments a JOIN periods p ON p.account = a.account AND p.label = a.label "
            f"WHERE a.account = ? AND p.status = 'closed' AND a.period IN ({marks}) AND a.change = 'missing'",
            self.db, params=(self.account, *labels),
        )
        acknowledged = pd.read_sql_query("SELECT id FROM acknowledged WHERE account = ?", self.db, params=(self.account,))
        both = pd.concat([snapshot, later], ignore_index=True).drop_duplicates("id", keep="last")
        both["day"] = both["day"].astype("Int64")  # null: booked by a version that kept no day
        quiet = both["id"].isin(missing["id"]) | both["id"].isin(acknowledged["id"])
        return both.assign(reported_missing=quiet).reset_index(drop=True)

    def basis(self, start: datetime) -> str:
        """What a period starting at ``start`` is booked on: the exports of the periods before it
        (their manifests' sha256). Recorded at export; a close refuses a period whose basis has
        changed since (docs/booking.md, "What the books refuse")."""
        rows = self.db.execute(
            "SELECT label, manifest_sha256 FROM periods WHERE account = ? AND end_utc <= ? ORDER BY start_utc, label",
            (self.account, _instant(start)),
        ).fetchall()
        return hashlib.sha256("".join(f"{label}:{sha}\n" for label, sha in rows).encode()).hexdigest()

    def acknowledge(self, record_ids: Sequence[str], reason: str, when: datetime) -> dict[str, str]:
        """Accept that records booked in closed periods are gone from the provider: they are not
        reported missing again. Returns record id -> the closed period that booked it, for those
        one did (the others are not recorded)."""
        periods = self.booked_in(record_ids)
        self.db.executemany("INSERT OR REPLACE INTO acknowledged VALUES (?, ?, ?, ?)",
                            [(self.account, record_id, reason, _instant(when)) for record_id in periods])
        return periods

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

    def ledger_accounts(self) -> list[tuple[str, str, str]]:
        """(Beancount account, currency, first period label) of every account the ledger used so far."""
        return self.db.execute(
            "SELECT name, currency, first_label FROM ledger_accounts WHERE account = ? ORDER BY name, currency",
            (self.account,),
        ).fetchall()

    def refuse_closed(self, label: str, start: datetime, end: datetime) -> None:
        """:func:`.period_rules.refuse_closed` on the books' periods."""
        period_rules.refuse_closed(self.periods(), label, start, end)

    def refuse_gap(self, label: str, start: datetime, end: datetime, tz_name: str) -> None:
        """:func:`.period_rules.refuse_gap` on the books' periods."""
        period_rules.refuse_gap(self.periods(), label, start, end, tz_name)

    # -- writing (inside a transaction) --------------------------------------------------------

    def forget(self, label: str) -> None:
        """Drop what an earlier export of an open period recorded (a re-export replaces it)."""
        for table in ("periods", "rollforward", "period_models", "carry", "adjustments", "sources", "full_checks",
                      "snapshots"):
            self.db.execute(f"DELETE FROM {table} WHERE account = ? AND label = ?", (self.account, label))

    def add_period(self, period: Period, basis: str | None = None) -> None:
        """A new period booked on ``basis`` (:meth:`basis` when its view was read; None: as the
        books are now); refused (ConfigError) if it is or overlaps a closed one, would leave a gap
        in the books, or if the periods before it changed since ``basis``."""
        self.refuse_closed(period.label, period.start_utc, period.end_utc)
        self.refuse_gap(period.label, period.start_utc, period.end_utc, period.time_zone)
        now = self.basis(period.start_utc)
        if basis is not None and basis != now:
            raise ConfigError(f"the books' periods before {period.label} changed while it was being exported "
                              "(another export or close finished meanwhile): export it again")
        with _invariant():
            self.db.execute(
                "INSERT INTO periods VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.account, period.label, period.first_day.isoformat(), period.last_day.isoformat(), period.time_zone,
                 _instant(period.start_utc), _instant(period.end_utc), period.granularity, _instant(period.exported_at),
                 period.pack, period.manifest_sha256, period.records, period.status,
                 None if period.closed_at is None else _instant(period.closed_at), now),
            )

    def close(self, label: str, when: datetime) -> list[str]:
        """Mark period ``label`` closed: the records its export booked (its snapshot) become fixed,
        and its seal is kept. Open periods overlapping it are drafts it supersedes: they are dropped
        from the books (their packs stay on disk); returns their labels. Refused if it overlaps a
        closed period, or if one of its records is booked in another closed period."""
        period = self.period(label)
        if period is None:
            raise ConfigError(f"{label} is not in the books {self.path}: export it first")
        self.refuse_closed(label, period.start_utc, period.end_utc)
        recorded = self.db.execute("SELECT basis FROM periods WHERE account = ? AND label = ?",
                                   (self.account, label)).fetchone()[0]
        period_rules.refuse_out_of_order(self.periods(), period, recorded, self.basis(period.start_utc))
        twice = self.booked_elsewhere(label)
        if twice is not None:
            raise ConfigError(f"the books refuse this change (record {twice[0]!r} of {label} is already booked in "
                              f"{twice[1]}); nothing was written")
        drafts = [p.label for p in period_rules.overlapping(self.periods(), period.start_utc, period.end_utc, label)]
        for draft in drafts:
            self.forget(draft)
            self.log(draft, "superseded", f"open export dropped from the books: {label}, which overlaps it, was closed", when)
        self.set_status(label, "closed", when)
        self.seal(label)
        self.log(label, "close", f"{period.records} records kept as booked", when)
        return drafts

    def reopen(self, label: str, reason: str, when: datetime) -> None:
        """Reopen closed period ``label`` for a restatement (:func:`.period_rules.refuse_reopen`)."""
        period_rules.refuse_reopen(self.periods(), label, self.path)
        self.set_status(label, "open", None)
        self.log(label, "reopen", reason, when)

    def add_rows(self, table: str, label: str, rows: Sequence[tuple[object, ...]]) -> None:
        """Rows of a per-period table, each given without its leading (account, label)."""
        if rows:
            marks = ",".join("?" * (len(rows[0]) + 2))
            self.db.executemany(f"INSERT INTO {table} VALUES ({marks})", [(self.account, label, *row) for row in rows])

    def add_source(self, label: str, name: str, fingerprint: str, api: str | None = None) -> None:
        """Where period ``label``'s records came from (docs/booking.md, "The books' source")."""
        self.db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)", (self.account, label, name, fingerprint, api))

    def add_full_checks(self, label: str, days: Sequence[int], when: datetime) -> None:
        """The closed UTC days (day numbers) period ``label``'s export re-read in full."""
        self.add_rows("full_checks", label, [(day, _instant(when)) for day in days])

    def add_carry(self, label: str, carry: Carry) -> None:
        rows = [("balance", *key, t.exact, t.posted) for key, t in carry.balances.items()]
        rows += [("counter", *key, t.exact, t.posted) for key, t in carry.counters.items()]
        self.add_rows("carry", label, rows)

    def add_ledger_accounts(self, label: str, names: list[tuple[str, str]]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO ledger_accounts VALUES (?, ?, ?, ?)",
            [(self.account, name, currency, label) for name, currency in names],
        )

    def set_status(self, label: str, status: str, when: datetime | None) -> None:
        with _invariant():
            self.db.execute(
                "UPDATE periods SET status = ?, closed_at = ? WHERE account = ? AND label = ?",
                (status, None if when is None else _instant(when), self.account, label),
            )

    def log(self, label: str, action: str, detail: str, when: datetime) -> None:
        self.db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (self.account, _instant(when), label, action, detail))

    def pack_folder(self, period: Period) -> Path:
        """Where period's pack is: recorded absolute since the books stored paths so; an older,
        relative path is read from the working directory as before, or else beside the books
        (the default layout, ``<out>/books.sqlite`` and ``<out>/<label>``)."""
        pack = Path(period.pack)
        if pack.is_absolute() or pack.exists():
            return pack
        beside = self.path.parent / pack.name
        return beside if beside.exists() else pack


__all__ = ["BOOKS_NAME", "DEFAULT_ACCOUNT", "SCHEMA_VERSION", "Books", "Period"]
