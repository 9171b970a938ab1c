"""Validation of one raw billing record (a dict from :mod:`jsonexact`) into a typed row.

The same check runs on records fetched from the API and on records read back from a source
archive, so an export and a re-render from the archive accept exactly the same data.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, NamedTuple

from .errors import DataError
from .jsonexact import Number
from .money import parse_amount


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


_TEXT_FIELDS = ("type", "currency", "status")


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
    for key in _TEXT_FIELDS:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip() or isinstance(value, Number):
            raise DataError(f"{name}: field {key!r} is missing or not a non-empty string")
    amount = raw.get("amount")
    if not isinstance(amount, Number):
        raise DataError(f"{name}: field 'amount' must be a JSON number, got {_describe(amount)}")
    try:
        micros, text = parse_amount(amount)
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
    )


def _optional_text(raw: dict[str, Any], key: str, name: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or isinstance(value, Number):
        raise DataError(f"{name}: field {key!r} must be a string, got {_describe(value)}")
    return value


def _parse_instant(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or isinstance(value, Number):
        raise DataError(f"{name}: field 'created_at' must be an ISO 8601 string, got {_describe(value)}")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise DataError(f"{name}: field 'created_at' is not ISO 8601: {value[:40]!r}") from None
    if instant.tzinfo is None:  # the API documents UTC timestamps
        return instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Number):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return type(value).__name__
