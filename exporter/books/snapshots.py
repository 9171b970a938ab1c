"""What the books keep of a period's records: one compressed columnar snapshot per period
(docs/booking.md, "What the books keep of each record").

The snapshot is taken when the period is exported (what that export booked, with the journal
entry each record went into) and becomes the period's booked records when it closes, so closing
neither re-reads the archive nor re-books the month. It is an Arrow IPC file (Feather v2) with
zstd-compressed columns, the text columns dictionary-encoded and the rows in id order: a few
bytes per record for the provider's sequential ids, about 24 for random UUIDs. Its sha256 is in
the closed period's seal, so ``books check`` catches a changed byte.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from ..errors import DataError

SNAPSHOT_COLUMNS = ("id", "status", "type", "model", "payment_method", "currency", "amount", "entry", "day")
"""A snapshot's columns: the record's id, status, type, model, payment method and currency (text),
its signed amount in micros (int64), the journal entry that booked it (text; null for a record not
booked, e.g. pending) and its UTC day (days since 1970-01-01, int64; null when closed by a version
that kept no day)."""

_TEXT = ("status", "type", "model", "payment_method", "currency", "entry")
_SCHEMA = pa.schema([(name, pa.dictionary(pa.int32(), pa.string()) if name in _TEXT
                      else pa.string() if name == "id" else pa.int64()) for name in SNAPSHOT_COLUMNS])


class SnapshotDamaged(ValueError):
    """A stored snapshot that cannot be read back (a hand edit, a damaged file)."""


@dataclass(frozen=True)
class Snapshot:
    """A period's records as a snapshot: encoded before the books' transaction (it is the costly
    part: a million records take about 0.2 s), stored inside it."""

    rows: int
    data: bytes

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Snapshot:
        return cls(len(frame), encode(frame))


def encode(frame: pd.DataFrame) -> bytes:
    """``frame`` (the :data:`SNAPSHOT_COLUMNS`) as snapshot bytes, rows in id order (the same
    records always give the same bytes)."""
    ids = pa.array(frame["id"], from_pandas=True)
    # the provider's ids come in time order, which the frame has: then there is nothing to sort
    # (each column is still taken: a fresh copy has the same bytes whatever the frame's arrays held)
    order = pa.array(np.arange(len(ids))) if _in_order(ids) else pc.sort_indices(ids)
    # a column at a time, in id order: one column's copy at a time beside the frame, not the
    # whole table's (the 1M-record month's peak memory is here).
    # Texts dictionary-encoded in their order of appearance, whatever the frame held (text or
    # categories, used or not): the same records give the same bytes
    columns = {}
    for name in SNAPSHOT_COLUMNS:
        column = pa.chunked_array([pa.array(frame[name], from_pandas=True).take(order)])
        columns[name] = (_in_order_of_appearance(column) if name in _TEXT else column).cast(_SCHEMA.field(name).type)
    sink = pa.BufferOutputStream()
    feather.write_feather(pa.table(columns, schema=_SCHEMA), sink, compression="zstd", compression_level=3)
    return bytes(sink.getvalue().to_pybytes())


def _in_order(ids: pa.Array | pa.ChunkedArray) -> bool:
    """Whether the ids are in sort order already (a stable sort would leave them where they are)."""
    return len(ids) < 2 or bool(pc.all(pc.less_equal(ids.slice(0, len(ids) - 1), ids.slice(1))).as_py())


def _in_order_of_appearance(column: pa.ChunkedArray) -> pa.DictionaryArray:
    """Text dictionary-encoded, its values in order of first appearance (as ``dictionary_encode``
    of the text). Categories are renumbered, not spelled out: a text a row would cost a million
    strings a column, and the month's peak memory."""
    if not pa.types.is_dictionary(column.type):
        return pc.dictionary_encode(column.cast(pa.string()))
    array = column.unify_dictionaries().combine_chunks()
    order = pc.unique(pc.drop_null(array.indices)).to_numpy()  # dictionary positions, in order of appearance
    renumber = np.zeros(len(array.dictionary) + 1, dtype=np.int32)  # + 1: a column of no values is all nulls
    renumber[order] = np.arange(len(order), dtype=np.int32)
    indices = renumber[pc.fill_null(array.indices, 0).to_numpy()]
    missing = array.indices.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
    if missing is not None:
        indices[missing] = 0  # what dictionary_encode leaves under a null: the bytes must not differ
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32(), mask=missing),
                                          array.dictionary.take(pa.array(order, pa.int64())).cast(pa.string()))


def decode(data: bytes, columns: Sequence[str] = SNAPSHOT_COLUMNS) -> pd.DataFrame:
    """A snapshot's ``columns`` back as a frame (text as str, missing as NaN; amount int64; day
    nullable Int64); :class:`SnapshotDamaged` for bytes that are not a snapshot."""
    try:
        table = feather.read_table(pa.BufferReader(data), columns=list(columns))
        if table.schema != pa.schema([_SCHEMA.field(name) for name in columns]):
            raise SnapshotDamaged(f"unexpected columns {table.schema.names}")
    except (pa.ArrowException, OSError, KeyError) as exc:
        raise SnapshotDamaged(str(exc).splitlines()[0][:120]) from None
    out = {}
    for name in columns:
        column = table.column(name)
        if name == "day":
            out[name] = pd.array(column.to_pandas(), dtype="Int64")
        else:
            out[name] = column.cast(pa.string()).to_pandas() if name in _TEXT else column.to_pandas()
    return pd.DataFrame(out)


def ids(data: bytes) -> pa.Array:
    """A snapshot's record ids (an Arrow string array, in id order)."""
    try:
        return feather.read_table(pa.BufferReader(data), columns=["id"]).column("id").combine_chunks()
    except (pa.ArrowException, OSError, KeyError) as exc:
        raise SnapshotDamaged(str(exc).splitlines()[0][:120]) from None


class Snapshots:
    """The periods' snapshots, as methods of :class:`~.database.Books` (table ``snapshots``)."""

    db: sqlite3.Connection
    account: str

    def keep_snapshot(self, label: str, snapshot: Snapshot) -> None:
        """What period ``label``'s export booked (inside its transaction; replaces an earlier one)."""
        self.db.execute("DELETE FROM snapshots WHERE account = ? AND label = ?", (self.account, label))
        self.db.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?)", (self.account, label, snapshot.rows, snapshot.data))

    def snapshot_data(self, label: str) -> bytes | None:
        row = self.db.execute("SELECT data FROM snapshots WHERE account = ? AND label = ?",
                              (self.account, label)).fetchone()
        return None if row is None else bytes(row[0])

    def snapshot(self, label: str, columns: Sequence[str] = SNAPSHOT_COLUMNS) -> pd.DataFrame:
        """Period ``label``'s records as its export booked them (empty if it kept none)."""
        data = self.snapshot_data(label)
        if data is None:
            return pd.DataFrame({name: pd.Series(dtype="object") for name in columns})
        return self.decoded(label, data, columns)

    def decoded(self, label: str, data: bytes, columns: Sequence[str] = SNAPSHOT_COLUMNS) -> pd.DataFrame:
        try:
            return decode(data, columns)
        except SnapshotDamaged as exc:
            raise self.damaged(f"the booked records of {label} cannot be read ({exc})") from None

    def closed_ids(self, excluding: str) -> dict[str, pa.Array]:
        """Closed period label -> its booked record ids, for every closed period but ``excluding``."""
        rows = self.db.execute(
            "SELECT s.label, s.data FROM snapshots s JOIN periods p ON p.account = s.account AND p.label = s.label "
            "WHERE s.account = ? AND p.status = 'closed' AND s.label != ?", (self.account, excluding)).fetchall()
        found = {}
        for label, data in rows:
            try:
                found[str(label)] = ids(bytes(data))
            except SnapshotDamaged as exc:
                raise self.damaged(f"the booked records of {label} cannot be read ({exc})") from None
        return found

    def booked_in(self, record_ids: Sequence[str]) -> dict[str, str]:
        """Record id -> the closed period that booked it, for those of ``record_ids`` one did
        (every closed period's ids read once)."""
        wanted = pa.array(list(record_ids), pa.string())
        found: dict[str, str] = {}
        for label, booked in self.closed_ids(excluding="").items():
            found.update((str(i), label) for i in pc.filter(wanted, pc.is_in(wanted, value_set=booked)).to_pylist())
        return found

    def booked_elsewhere(self, label: str) -> tuple[str, str] | None:
        """(record id, closed period) of the first record of ``label``'s snapshot that a closed
        period already booked; None when there is none (docs/booking.md, "What the books refuse")."""
        data = self.snapshot_data(label)
        if data is None:
            return None
        mine = self.decoded(label, data, ["id"])["id"]
        for other, booked in self.closed_ids(excluding=label).items():
            twice = pc.is_in(booked, value_set=pa.array(mine, pa.string()))
            if pc.any(twice).as_py():
                return str(pc.filter(booked, twice)[0].as_py()), other
        return None

    def damaged(self, what: str) -> DataError:  # Books.damaged
        raise NotImplementedError


__all__ = ["SNAPSHOT_COLUMNS", "SnapshotDamaged", "Snapshots", "decode", "encode", "ids"]
