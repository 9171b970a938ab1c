"""JSON with exact numbers: every JSON number is kept as its literal text.

The billing API sends amounts such as ``-0.0025`` as JSON numbers. Reading them through
``float`` would change them; reading them as :class:`Number` (a ``str`` subclass holding the
literal) keeps them exactly, and :func:`dumps` writes them back unchanged, so the source archive
holds the records exactly as received.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring as _encode_str  # type: ignore[attr-defined]
from typing import Any


class Number(str):
    """The literal text of a JSON number, e.g. ``Number("-0.0025")``."""

    __slots__ = ()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_float=Number, parse_int=Number, parse_constant=_reject_constant)


def loads(text: str | bytes) -> Any:
    """Parse JSON; numbers become :class:`Number`, NaN/Infinity are rejected."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return _decoder.decode(text)


def dumps(value: Any) -> str:
    """Serialise compactly; :class:`Number` values are written as bare numbers."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is Number:
        return str.__str__(value)
    if kind is dict:
        return "{" + ",".join(_encode_str(str(k)) + ":" + dumps(v) for k, v in value.items()) + "}"
    if kind is list or kind is tuple:
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, Number):
        return str.__str__(value)
    return json.dumps(value, ensure_ascii=False)
