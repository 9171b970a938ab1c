"""JSON whose numbers stay exact: decimals are read as ``Decimal``, integers as ``int``, never float.

The billing API sends amounts such as ``-0.0025`` as JSON numbers; through ``float`` they would
change. :func:`dumps` writes a ``Decimal`` back with the digits it was read with, so records the
API sent in plain decimal notation (``-0.0025``, ``100.00``) are archived with the same text.
"""

from __future__ import annotations

import json
from decimal import Decimal
from json.encoder import encode_basestring as _encode_str  # type: ignore[attr-defined]
from typing import Any


class NotFiniteError(ValueError):
    """The text is JSON but for a NaN or Infinity, which JSON does not have."""


def _reject_constant(name: str) -> Any:
    raise NotFiniteError(f"{name}, which is not a JSON number")


# Decimal is implemented in C: it costs little more than float here (a str subclass costs 2x).
_decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def is_number(value: Any) -> bool:
    """True for a JSON number as :func:`loads` returns it (a bool is not one)."""
    return type(value) is Decimal or type(value) is int


def loads(text: str | bytes) -> Any:
    """Parse one JSON document; NaN and Infinity are rejected."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return _decode(text)


def _decode(text: str) -> Any:
    try:
        return _decoder.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class LineError(ValueError):
    """A line of a batch is not one valid JSON value; ``index`` is its 0-based position."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"line {index}: {reason}")
        self.index, self.reason = index, reason


def loads_lines(lines: list[str]) -> list[Any]:
    """Parse one JSON document per line, decoding the whole batch in one call (the fast path).

    Raises LineError for the first line that is not valid JSON.
    """
    try:
        values = _decode("[" + ",".join(lines) + "]")
    except ValueError:
        values = None
    if values is not None and len(values) == len(lines):
        return values
    for index, line in enumerate(lines):  # slow path: find the culprit (or a line holding two values)
        try:
            _decode(line)
        except ValueError as exc:
            raise LineError(index, str(exc)) from None
    raise LineError(len(lines) - 1, "the lines do not hold one JSON value each")


def dumps(value: Any) -> str:
    """Serialise compactly; a ``Decimal`` is written as a bare number with its own digits.

    ValueError for a value nested too deeply to write (the decoder takes a little more).
    """
    try:
        return _dumps(value)
    except RecursionError:
        raise ValueError("a value nested too deeply to write back as JSON") from None


_CONSTANTS = {None: "null", True: "true", False: "false"}


def _dumps(value: Any) -> str:
    # once per stored record (pagestore.py): lists, not generators, and strings written inline
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is dict:
        return "{" + ",".join([_encode_str(str(k)) + ":" + (_encode_str(v) if type(v) is str else _dumps(v))
                               for k, v in value.items()]) + "}"
    if kind is Decimal:
        return str(value)
    if kind is int:
        return int.__repr__(value)
    if value is None or kind is bool:
        return _CONSTANTS[value]
    if kind is list or kind is tuple:
        return "[" + ",".join([_dumps(v) for v in value]) + "]"
    return json.dumps(value, ensure_ascii=False)
