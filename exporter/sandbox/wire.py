"""What every sandbox endpoint answers with: the envelope, exact JSON numbers, error pages.

Shared by the legacy endpoints (:mod:`.server`) and the current ones (:mod:`.current`), so
neither imports the other's handlers.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from http import HTTPStatus
from collections.abc import Callable
from typing import Any, NamedTuple

CENT = Decimal("0.01")
MILLI = Decimal("0.001")


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class BadParam(ValueError):
    """A query parameter or body field the API would reject with 400."""


Route = tuple[str, Callable[[Any, Any], Response], bool]
"""(method, handler(server, parameters), counted with the billings requests for the "every Nth" faults)."""


def json_text(value: Any) -> str:
    """Compact JSON where a Decimal is written as its exact number text, never via float."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    return json.dumps(value)


def envelope(code: int, message: str, data: Any = None, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = json_text({"code": code, "message": message, "data": data}).encode("utf-8")
    return Response(code, body, headers=headers)


def html(status: int) -> Response:
    body = f"<html><body><h1>{status} {phrase(status)}</h1></body></html>".encode("utf-8")
    return Response(status, body, content_type="text/html")


def error(status: int, as_html: bool) -> Response:
    return html(status) if as_html else envelope(status, phrase(status).lower())


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def millis(value: Decimal) -> Decimal:
    """Three decimals, half up: how the current usage_stats rounds its amounts."""
    return value.quantize(MILLI, rounding=ROUND_HALF_UP)


def parse_body(body: bytes) -> dict[str, Any]:
    """A POST's JSON object (numbers with a fraction as Decimal); no body is ``{}``."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise BadParam("invalid JSON body") from None
    if not isinstance(value, dict):
        raise BadParam("invalid JSON body: expected an object")
    return value


def body_fields(body: dict[str, Any]) -> dict[str, str]:
    """A POST body's fields as the request log keeps them: scalars as text, lists comma-joined."""
    return {str(k): _log_text(v) for k, v in body.items() if not isinstance(v, dict)}


def _log_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_log_text(v) for v in value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)
