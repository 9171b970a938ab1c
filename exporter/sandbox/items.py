"""The current API's billing items, built from a dataset's columns once and served by slices.

Stdlib only. :mod:`.current` answers the requests; this module knows which legacy records the
current API lists (charges and refunds that were not failed), in which order (newest first, by
rank), and what each looks like (the item shown in :mod:`.current`'s docstring). The items'
JSON text is built once per dataset and fault variant, like the legacy blob of :mod:`.data`.

A charge reversed after it completed (a dataset's :attr:`~.data.Dataset.reversals`, which an
as-of view of the history has) is served failed by the legacy generation; the current one serves
what the vendor shows for a charge given back (:func:`current_dataset`): the charge as it was
(``deduct``, ``done``) and a ``refund`` of its price for the same prediction, model and API key,
created at the reversal instant, uuid the charge's plus ``-refund``.
"""

from __future__ import annotations

import json
import threading
import weakref
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import accumulate

from .data import MODEL_NAMES, STATUSES, TYPES, Dataset, Record, dataset_from_records
from .wire import json_text

REFUND_SUFFIX = "-refund"  # the uuid of the refund of a reversed charge: the charge's plus this
ABSURD_PRICE = "24300"  # a documentation example's number where USD is documented

# (name, share out of 10, id): every record gets one, from a stable hash of its id
API_KEYS = (
    ("prod-app", 7, "ak_7f3c2a91d04e4b6f8a1c5e2d"),
    ("staging", 2, "ak_b81e06c3f5a2479d9e0c4a17"),
    ("client-acme", 1, "ak_0d9a4e7c21b3485f96ea3c08"),
)
_KEY_OF_BUCKET = tuple(k for k, (_, share, _) in enumerate(API_KEYS) for _ in range(share))

_USAGE, _REFUND = TYPES.index("usage"), TYPES.index("refund")
_COMPLETED, _PENDING = STATUSES.index("completed"), STATUSES.index("pending")
BILLING_TYPES = {"deduct": _USAGE, "refund": _REFUND}
_DAY_MS = 86_400_000
_CHUNK = 65_536  # items formatted at once while building a blob
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Window:
    """Served records ``seq[lo:hi]`` (ranks into :attr:`View.served`), newest first; a page
    reads it in either direction."""

    seq: Sequence[int]
    lo: int
    hi: int

    def __len__(self) -> int:
        return self.hi - self.lo

    def at(self, k: int, ascending: bool) -> int:
        return self.seq[self.hi - 1 - k] if ascending else self.seq[self.lo + k]

    def page(self, first: int, size: int, ascending: bool) -> Sequence[int]:
        if not ascending:
            return self.seq[self.lo + first : min(self.hi, self.lo + first + size)]
        stop = self.hi - first
        if stop <= self.lo:
            return ()
        return self.seq[max(self.lo, stop - size) : stop][::-1]

    def without_newest(self, n: int) -> Window:
        return Window(self.seq, min(self.hi, self.lo + n), self.hi)

    def oldest(self, n: int) -> Window:
        return Window(self.seq, max(self.lo, self.hi - n), self.hi)

    def only(self, view: View, ids: set[str]) -> Window:
        record_id, served = view.record_id, view.served
        kept = array("l", [k for k in self.seq[self.lo : self.hi]
                           if record_id(served[k]).removesuffix(REFUND_SUFFIX) in ids])
        return Window(kept, 0, len(kept))


class View:
    """What the current API serves of one dataset: the dataset positions of its served records
    (newest first; a record's rank in :attr:`served` indexes everything else), their times
    negated for bisecting, the ranks of each billing type, and the items' JSON text.

    The items' text is built once per dataset and fault variant (price sign, key field), as one
    blob like the legacy one: a page is then a slice of it, and a walk of a million records
    costs about what the legacy walk costs. Building it is the price of the first request
    (about 5 us a record)."""

    def __init__(self, dataset: Dataset) -> None:
        self.columns = columns = dataset.columns()  # shared, not copied; the dataset itself is not kept
        self._lock = threading.Lock()
        self.served = array("l", [
            i for i, (t, s) in enumerate(zip(columns.type, columns.status))
            if (t == _USAGE or t == _REFUND) and (s == _COMPLETED or s == _PENDING)
        ])
        negated = array("q", [-columns.ts[i] for i in self.served])
        self._ranks: dict[str | None, tuple[Sequence[int], array]] = {None: (range(len(self.served)), negated)}
        self._blobs: dict[tuple[str, str], tuple[memoryview, array]] = {}
        self._parts: dict[tuple[str, str], dict[tuple[int, ...], tuple[str, str, str]]] = {}
        self._days: dict[int, str] = {}

    def window(self, billing_type: str | None, start_ms: int | None, end_ms: int | None) -> Window:
        """Served records with ``start_ms <= created_at < end_ms``, newest first."""
        ranks, negated = self._ranks_of(billing_type)
        lo = 0 if end_ms is None else bisect_right(negated, -end_ms)
        hi = len(ranks) if start_ms is None else bisect_right(negated, -start_ms)
        return Window(ranks, lo, max(lo, hi))

    def _ranks_of(self, billing_type: str | None) -> tuple[Sequence[int], array]:
        with self._lock:
            found = self._ranks.get(billing_type)
            if found is None:
                code, (_, negated) = BILLING_TYPES[billing_type or ""], self._ranks[None]
                types, served = self.columns.type, self.served
                keep = array("l", [k for k, i in enumerate(served) if types[i] == code])
                found = self._ranks[billing_type] = keep, array("q", [negated[k] for k in keep])
            return found

    def items_json(self, ranks: Sequence[int], price_sign: str, key_field: str,
                   malformed: dict[str, str] | None, absurd: str | None) -> bytes:
        """The items of the served records ``ranks`` as the inside of a JSON array."""
        blob, offsets = self._blob(price_sign, key_field)
        if malformed or absurd:
            return ",".join(self._damaged_item(k, price_sign, key_field, malformed or {}, absurd)
                            for k in ranks).encode("utf-8")
        if isinstance(ranks, range) and ranks.step == 1:
            # neighbours are neighbours in the blob: one slice, commas included
            return bytes(blob[offsets[ranks.start] : offsets[ranks.stop] - 1]) if ranks else b""
        return b",".join([blob[offsets[k] : offsets[k + 1] - 1] for k in ranks])

    def _damaged_item(self, k: int, price_sign: str, key_field: str, malformed: dict[str, str],
                      absurd: str | None) -> str:
        record_id, text = self.item(self.served[k], price_sign, key_field)
        if record_id in malformed or record_id == absurd:
            return _damaged(text, malformed.get(record_id), record_id == absurd, price_sign)
        return text

    def _blob(self, price_sign: str, key_field: str) -> tuple[memoryview, array]:
        """Every served item's text followed by a comma, and where each starts (built once, by
        chunks: a million items never sit in memory as a million strings)."""
        with self._lock:
            found = self._blobs.get((price_sign, key_field))
            if found is None:
                blob, offsets = bytearray(), array("q", [0])
                for k in range(0, len(self.served), _CHUNK):
                    texts, part = self._chunk(self.served[k : k + _CHUNK], price_sign, key_field)
                    lengths = (len(t) for t in texts) if part.isascii() else (len(t.encode("utf-8")) for t in texts)
                    ends = accumulate(lengths, initial=len(blob))
                    next(ends)  # the start, already the last offset
                    offsets.extend(ends)
                    blob += part
                # slices of a memoryview are not copies: a page joins a hundred of them
                found = self._blobs[(price_sign, key_field)] = memoryview(blob), offsets
            return found

    def _chunk(self, positions: Sequence[int], price_sign: str, key_field: str) -> tuple[list[str], bytes]:
        c = self.columns
        base = c.offsets[positions[0]]
        legacy = c.blob[base : c.offsets[positions[-1] + 1]].decode("utf-8")
        texts = self._texts(positions, price_sign, key_field, legacy, base)
        return texts, "".join(texts).encode("utf-8")

    def record_id(self, i: int) -> str:
        """The id of the record at dataset position ``i``, read from its legacy text (``{"id":"…",``)."""
        blob, start = self.columns.blob, self.columns.offsets[i] + 7
        return blob[start : blob.index(b'"', start)].decode("utf-8")

    def item(self, i: int, price_sign: str, key_field: str) -> tuple[str, str]:
        """(record id, item JSON text) of dataset position ``i``."""
        c = self.columns
        line = c.blob[c.offsets[i] : c.offsets[i + 1]].decode("utf-8")
        return self.record_id(i), self._texts([i], price_sign, key_field, line, c.offsets[i])[0][:-1]

    def _texts(self, positions: Sequence[int], price_sign: str, key_field: str, legacy: str, base: int) -> list[str]:
        """The item texts (each followed by a comma) of the records at ``positions``, whose legacy
        JSON text ``legacy`` holds from blob offset ``base`` on.

        The id and ``created_at`` are read from the legacy text (its first and last fields), and
        ``updated_at`` is ``created_at`` plus 2 to 4 seconds, computed on the text: this loop
        runs once per record of a million-record dataset, so no datetime and no dict per item."""
        c = self.columns
        offsets, types, statuses, models, amounts, stamps = c.offsets, c.type, c.status, c.model, c.amount, c.ts
        parts_of = self._parts.setdefault((price_sign, key_field), {})
        crc, buckets = zlib.crc32, _KEY_OF_BUCKET
        out: list[str] = []
        append = out.append
        for i in positions:
            line = legacy[offsets[i] - base : offsets[i + 1] - base - 1]
            rid = line[7 : line.index('"', 7)]
            charge = rid.removesuffix(REFUND_SUFFIX)  # a reversal's refund: the charge's prediction and key
            created = line[-26:-2]
            shape = (types[i], statuses[i], models[i], amounts[i], buckets[crc(charge.encode()) % 10])
            parts = parts_of.get(shape) or self._make_parts(shape, price_sign, key_field)
            seconds = int(created[17:19]) + 2 + stamps[i] % 3
            updated = (created[:17] + f"{seconds:02d}" + created[19:] if seconds < 60
                       else self._stamp(stamps[i] + (seconds - int(created[17:19])) * 1000))
            tail = rid[4:] if rid.startswith("txn_") else rid
            prediction = charge[4:] if charge.startswith("txn_") else charge
            append(
                f'{{"uuid":"{rid}",{parts[0]}"created_at":"{created}","updated_at":"{updated}",'
                f'"order":{{"uuid":"ord_{tail}",{parts[1]}"prediction":{{"uuid":"pred_{prediction}",{parts[2]},'
            )
        return out

    def _stamp(self, ms: int) -> str:
        """``2024-01-15T10:30:00.123Z`` without strftime (once a minute or so it is needed)."""
        day, ms = divmod(ms, _DAY_MS)
        text = self._days.get(day)
        if text is None:
            text = self._days[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        hours, ms = divmod(ms, 3_600_000)
        minutes, ms = divmod(ms, 60_000)
        seconds, ms = divmod(ms, 1000)
        return f"{text}{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}Z"

    def _make_parts(
        self, shape: tuple[int, int, int, int, int], price_sign: str, key_field: str
    ) -> tuple[str, str, str]:
        """The texts shared by every item of one shape (type, status, model, amount, key),
        between the per-record fields."""
        type_, status, model, amount, key = shape
        deduct = type_ == _USAGE
        price = _price_text(self.columns.amount_texts[amount], deduct, price_sign)
        name, _, key_id = API_KEYS[key]
        done = status == _COMPLETED
        outcome = "processing" if not done else ("completed" if deduct else "failed")
        model_text = "null" if model < 0 else f'"{MODEL_NAMES[model]}"'
        parts = (
            f'"billing_type":"{"deduct" if deduct else "refund"}","price":{price},',
            f'"state":"{"done" if done else "pre"}","price":{price},"origin_price":{price},'
            f'"status":{1 if done else 0},"ak_id":"{key_id}"}},',
            f'"model_uuid":{model_text},"status":"{outcome}"}},'
            f'"access_key_name":"{name}","{key_field}":"{key_id}"}}',
        )
        self._parts[(price_sign, key_field)][shape] = parts
        return parts


def _price_text(signed: str, deduct: bool, price_sign: str) -> str:
    """The item's price from the legacy signed amount text, per :attr:`Faults.price_sign`."""
    positive = signed.lstrip("-")
    if price_sign == "positive":
        return positive
    if price_sign == "negative" or (price_sign == "signed" and deduct):
        return "-" + positive
    if price_sign == "signed":
        return positive
    raise ValueError(f"Faults.price_sign must be positive, negative or signed, not {price_sign!r}")


def _damaged(text: str, broken: str | None, absurd: bool, price_sign: str) -> str:
    """An item with the ``malformed`` fault (``price`` -> "abc", ``created_at`` -> "not-a-date",
    any other top-level field dropped) or the ``absurd_price`` fault applied."""
    item = json.loads(text, parse_float=Decimal)
    if absurd:
        price = _price_text(ABSURD_PRICE, item["billing_type"] == "deduct", price_sign)
        item["price"] = item["order"]["price"] = item["order"]["origin_price"] = Decimal(price)
    if broken in ("price", "amount"):
        item["price"] = "abc"
    elif broken == "created_at":
        item["created_at"] = "not-a-date"
    elif broken is not None:
        item.pop(broken, None)
    return json_text(item)


def warm(dataset: Dataset) -> None:
    """Build the dataset's view and the default items' blob now: a server serving the current
    API does it when it starts, so no client's first request waits seconds for a big dataset
    (nor do its concurrent requests queue behind that one)."""
    view_of(dataset)._blob("positive", "access_key_id")


_VIEWS: dict[int, View] = {}  # by id of a live dataset: forgotten when the dataset is collected
_VIEWS_LOCK = threading.Lock()


def current_dataset(dataset: Dataset) -> Dataset:
    """``dataset`` as the current generation shows it: ``dataset`` itself unless some of its
    records are reversed charges (:attr:`~.data.Dataset.reversals`); then a dataset where each of
    those is the charge as it stood before its reversal (completed, same price) plus a completed
    ``refund`` of that price, same model, created at the reversal instant, id the charge's plus
    :data:`REFUND_SUFFIX`. Its balance is the legacy one (the refund gives back what the reversal
    did); its usage counts the charge on its day, as the records served do. Built once per dataset."""
    if not dataset.reversals:
        return dataset
    with _CURRENT_LOCK:
        found = _CURRENT.get(id(dataset))
        if found is not None:
            return found
    reversals = dataset.reversals
    records: list[Record] = []
    for record in dataset.records:
        at = reversals.get(record.id)
        if at is None:
            records.append(record)
            continue
        records.append(replace(record, status="completed"))
        records.append(Record(
            id=record.id + REFUND_SUFFIX, type="refund", amount=-record.amount, currency=record.currency,
            status="completed", created_at=_EPOCH + timedelta(milliseconds=at), model=record.model,
        ))
    built = dataset_from_records(records, dataset.months, dataset.seed, dataset.opening_balance)
    with _CURRENT_LOCK:
        found = _CURRENT.get(id(dataset))
        if found is None:
            found = _CURRENT[id(dataset)] = built
            weakref.finalize(dataset, _CURRENT.pop, id(dataset), None)
        return found


_CURRENT: dict[int, Dataset] = {}  # by id of a live dataset with reversals
_CURRENT_LOCK = threading.Lock()


def view_of(dataset: Dataset) -> View:
    """The dataset's :class:`View` (of :func:`current_dataset`), built once (a benchmark walks a
    million records through it)."""
    shown = current_dataset(dataset)
    with _VIEWS_LOCK:
        found = _VIEWS.get(id(dataset))
        if found is None:
            found = _VIEWS[id(dataset)] = View(shown)
            # no lock in the callback: it may run in a thread that holds the lock (a collection)
            weakref.finalize(dataset, _VIEWS.pop, id(dataset), None)
        return found
