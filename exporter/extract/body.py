"""Reading one response body within bounds: a deadline for the whole answer and a size cap.

``requests`` alone bounds each socket read, not the whole body (a server trickling a byte every
few seconds never trips a read timeout), and would inflate a gzip body whole (1 MB of gzip can
hold 1 GiB). Here the body is read in pieces as they arrive, each read waiting at most until
the request's deadline, and decoded incrementally, failing as soon as it outgrows the cap.
"""

from __future__ import annotations

import time
import zlib
from typing import Any, Protocol

from ..errors import ApiError

MAX_BODY_BYTES = 64 * 1024 * 1024  # decoded size of one answer; a page of 1,000 records is well under 1 MiB
_PIECE = 64 * 1024
_SLACK = 0.5  # seconds a read may overrun the deadline before its timeout is tightened (saves a syscall a read)


class DeadlineExceeded(Exception):
    """The whole answer did not arrive before the request's deadline (a transient failure)."""


class _TooLarge(Exception):
    pass


class _Decoder(Protocol):
    def feed(self, data: bytes, room: int) -> bytes: ...

    def finish(self) -> None: ...


def read_body(raw: Any, encoding: str | None, deadline: float, read_timeout: float,
              limit: int = MAX_BODY_BYTES) -> bytes:
    """The decoded body of ``raw`` (a streamed urllib3 response) by ``deadline`` (``time.monotonic``).

    Raises DeadlineExceeded, ApiError (too large, undecodable) or urllib3's own read errors.
    """
    decoder = _decoder(encoding)
    body = bytearray()
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    timeout = read_timeout  # what the socket's reads wait at most now
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded
            if sock is not None and remaining < timeout - _SLACK:  # no single read outlives the deadline
                timeout = remaining
                sock.settimeout(timeout)
            piece = raw.read1(_PIECE, decode_content=False)
            if not piece:
                break
            body += decoder.feed(piece, limit - len(body))
        decoder.finish()
    except _TooLarge:
        raise ApiError(f"the answer is larger than {limit:,} bytes once decoded: refusing it") from None
    finally:
        if sock is not None and timeout != read_timeout:
            sock.settimeout(read_timeout)
    return bytes(body)


class _Identity:
    def feed(self, data: bytes, room: int) -> bytes:
        if len(data) > room:
            raise _TooLarge
        return data

    def finish(self) -> None:
        pass


class _Inflate:
    """gzip (possibly several members) or zlib-wrapped deflate, decoded at most ``room`` bytes at a time."""

    def __init__(self, wbits: int) -> None:
        self.wbits = wbits
        self.stream = zlib.decompressobj(wbits)

    def feed(self, data: bytes, room: int) -> bytes:
        out = b""
        try:
            while data:
                piece = self.stream.decompress(data, room - len(out) + 1)
                out += piece
                if len(out) > room:
                    raise _TooLarge
                data = self.stream.unused_data if self.stream.eof else b""
                if data:  # a further gzip member
                    self.stream = zlib.decompressobj(self.wbits)
        except zlib.error:
            raise ApiError("the answer's compressed body cannot be decoded") from None
        return out

    def finish(self) -> None:
        if not self.stream.eof:
            raise ApiError("the answer's compressed body ends early")


def _decoder(encoding: str | None) -> _Decoder:
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return _Identity()
    if name in ("gzip", "x-gzip"):
        return _Inflate(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return _Inflate(zlib.MAX_WBITS)
    raise ApiError("the answer uses a Content-Encoding this client did not ask for")
