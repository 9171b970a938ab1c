"""Validation of raw billing records (dicts from :mod:`jsonexact`) into typed rows or columns.

The same checks run on records fetched from the API and on records read back from a source
archive, so an export and a re-render from the archive accept exactly the same data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from decimal import Decimal
from operator import itemgetter
from typing import Any, NamedTuple, cast

import numpy as np
import pandas as pd

from ..errors import DataError
from ..money import parse_amount
from .jsonexact import is_number


class Row(NamedTuple):
    """A validated record. ``amount`` is exact decimal text, ``amount_micros`` the same in micros."""

    id: str
    created_at: datetime  # timezone-aware UTC
    type: str
    status: str
    model: str  # "" when absent
    payment_method: str  # "" when absent
    currency: str
    amount: str
    amount_micros: int
    api_key_name: str = ""  # the API key that ran the task (current API only); "" when absent
    api_key_id: str = ""


_TEXT_FIELDS = ("type", "currency", "status")
OPTIONAL_KEY_FIELDS = ("api_key_name", "api_key_id")  # absent from legacy records and old archives
_CURRENCY = re.compile(r"[A-Z]{3}")  # an ISO 4217 code; anything else is not a currency

# receives the positions of records whose created_at names no time zone (read as UTC)
ZonelessCallback = Callable[[list[int]], None]


def parse_record(raw: Any, where: str) -> Row:
    """Check one record and return its row; ``where`` (e.g. "page 3, item 7") names it if it has no id.

    Raises DataError naming the record and the field.
    """
    if not isinstance(raw, dict):
        raise DataError(f"{where}: a record must be a JSON object, got {type(raw).__name__}")
    record_id = raw.get("id")
    if not isinstance(record_id, str) or not record_id.strip():
        raise DataError(f"{where}: field 'id' is missing or not a non-empty string")
    name = f"record {record_id!r} ({where})"
    _check_unicode(record_id, "id", name)
    for key in _TEXT_FIELDS:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{name}: field {key!r} is missing or not a non-empty string")
        _check_unicode(value, key, name)
    if not _CURRENCY.fullmatch(raw["currency"]):
        raise DataError(f"{name}: field 'currency' must be three capital letters (ISO 4217), got {_describe(raw['currency'])}")
    amount = raw.get("amount")
    if not is_number(amount):
        raise DataError(f"{name}: field 'amount' must be a JSON number, got {_describe(amount)}")
    try:
        micros, text = parse_amount(cast("Decimal | int", amount))
    except ValueError as exc:
        raise DataError(f"{name}: field 'amount' {exc}") from None
    created_at = _parse_instant(raw.get("created_at"), name)
    return Row(
        record_id,
        created_at,
        raw["type"],
        raw["status"],
        _optional_text(raw, "model", name),
        _optional_text(raw, "payment_method", name),
        raw["currency"],
        text,
        micros,
        *(_optional_text(raw, key, name) for key in OPTIONAL_KEY_FIELDS),
    )


def _optional_text(raw: dict[str, Any], key: str, name: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{name}: field {key!r} must be a string, got {_describe(value)}")
    _check_unicode(value, key, name)
    return value


def _check_unicode(value: str, key: str, name: str) -> None:
    """JSON can escape a lone surrogate (``"\\ud800"``), which no UTF-8 file can hold: refuse it here."""
    if not encodable([value]):
        raise DataError(f"{name}: field {key!r} is not valid Unicode text (a lone surrogate): {value[:40]!r}")


def encodable(texts: Iterable[str]) -> bool:
    """True when every text can be written as UTF-8 (one C-speed pass over them all)."""
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_instant(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise DataError(f"{name}: field 'created_at' must be an ISO 8601 string, got {_describe(value)}")
    try:  # ISO 8601 allows a lowercase z, which pandas (the fast path) reads and Python does not
        instant = datetime.fromisoformat(value[:-1] + "Z" if value.endswith("z") else value)
    except ValueError:
        raise DataError(f"{name}: field 'created_at' is not ISO 8601: {value[:40]!r}") from None
    if instant.tzinfo is None:  # the API documents UTC timestamps; parse_records reports these
        return instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc)


def zoneless(stamps: list[str]) -> list[int]:
    """Positions of the (valid ISO 8601) timestamps that carry no zone or offset.

    The API writes ``...Z``: one C-level pass over the last characters settles the usual case;
    only stamps ending otherwise (an offset, or none) are parsed again to tell.
    """
    if set(map(itemgetter(-1), stamps)) <= {"Z", "z"}:
        return []
    return [i for i, stamp in enumerate(stamps) if stamp[-1] not in "Zz" and _naive(stamp)]


def _naive(stamp: str) -> bool:
    try:
        return datetime.fromisoformat(stamp).tzinfo is None
    except ValueError:
        return True  # pandas read it, Python cannot: no zone Python can see


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if is_number(value):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return type(value).__name__


RECORD_COLUMNS = [
    "id", "created_at", "type", "status", "model", "payment_method", "currency", "amount", "amount_micros",
    *OPTIONAL_KEY_FIELDS,
]


def parse_records(raws: list[Any], where: Callable[[int], str], on_zoneless: ZonelessCallback | None = None) -> pd.DataFrame:
    """Validate many records at once into columns (``RECORD_COLUMNS``, created_at as UTC datetime64).

    The fast path checks whole columns, parses each distinct amount once and the timestamps in one
    vectorised call; on anything unexpected the records go through :func:`parse_record` one by one,
    which names the first bad record and field. ``where(i)`` names record ``i`` (e.g. its page).
    ``on_zoneless`` receives the positions of records whose created_at has no zone (read as UTC).
    """
    columns = _fast_columns(raws) if raws else _EMPTY_COLUMNS
    if columns is None:
        rows = [parse_record(raw, where(i)) for i, raw in enumerate(raws)]  # raises on the first bad one
        columns = {name: [getattr(row, name) for row in rows] for name in RECORD_COLUMNS}
        columns["created_at"] = pd.to_datetime(pd.Series(columns["created_at"], dtype=object), utc=True)
    if on_zoneless is not None and raws:
        positions = zoneless([raw["created_at"] for raw in raws])
        if positions:
            on_zoneless(positions)
    frame = pd.DataFrame(columns, columns=RECORD_COLUMNS)
    frame["amount_micros"] = frame["amount_micros"].astype("int64")
    return frame


_EMPTY_COLUMNS: dict[str, Any] = {
    **{name: pd.Series([], dtype="str") for name in RECORD_COLUMNS},
    "created_at": pd.Series([], dtype="datetime64[us, UTC]"),
    "amount_micros": pd.Series([], dtype="int64"),
}


def _fast_columns(raws: list[Any]) -> dict[str, Any] | None:
    """Columns when every record is plainly valid, else None (the slow path then explains why)."""
    if not all(type(raw) is dict for raw in raws):
        return None
    ids = [raw.get("id") for raw in raws]
    if not all(type(value) is str and value.strip() for value in ids) or not encodable(ids):
        return None
    columns: dict[str, Any] = {"id": ids}
    for key in _TEXT_FIELDS:
        values = [raw.get(key) for raw in raws]
        if set(map(type, values)) != {str}:
            return None  # types first: set() of a list or an object would raise
        distinct = set(values)
        if not all(value.strip() for value in distinct) or not encodable(distinct):
            return None
        columns[key] = values
    if not all(_CURRENCY.fullmatch(code) for code in set(columns["currency"])):
        return None
    for key in ("model", "payment_method", *OPTIONAL_KEY_FIELDS):
        values = [raw.get(key) for raw in raws]
        if not set(map(type, values)) <= {str, type(None)}:
            return None
        distinct = set(values)
        distinct.discard(None)
        if not encodable(distinct):
            return None
        columns[key] = ["" if value is None else value for value in values]
    amounts = [raw.get("amount") for raw in raws]
    if not {type(number) for number in amounts} <= {Decimal, int}:
        return None
    texts = list(map(str, amounts))  # by text, not value: 0.0090 keeps its digits next to 0.009
    parsed: dict[str, tuple[int, str]] = {}
    for text in set(texts):  # prices repeat: a month has few distinct amounts
        try:
            parsed[text] = parse_amount(text)
        except ValueError:
            return None
    columns["amount"] = [parsed[text][1] for text in texts]
    columns["amount_micros"] = np.fromiter((parsed[text][0] for text in texts), dtype=np.int64, count=len(texts))
    stamps = [raw.get("created_at") for raw in raws]
    if not all(type(value) is str for value in stamps):
        return None
    instants = pd.to_datetime(pd.Series(stamps, dtype=object), format="ISO8601", utc=True, errors="coerce")
    if instants.isna().any():
        return None
    columns["created_at"] = instants
    return columns
