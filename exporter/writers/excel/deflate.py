"""Deflate on both cores: the detail sheet's XML (~460 MB for a million rows) compressed in pieces.

Each piece is compressed on its own (the deflate releases the GIL) with the 32 KiB before it as its
preset dictionary and ends on a sync flush, so the pieces, one after another, are one valid
deflate stream (RFC 1951), back-references reaching into the piece before as usual; the last
ends the stream. The deflate and its level are :mod:`exporter.deflate_backend`'s (ISA-L's level 1
where installed: docs/performance.md, "Deflate").
"""

from __future__ import annotations

import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

from ...deflate_backend import raw_compressor

_WINDOW = 32 * 1024  # deflate's distance limit: all a piece can refer back to
_IN_FLIGHT = 2  # pieces being compressed at once (one a worker): bounds the memory held


def _piece(data: memoryview, before: bytes, last: bool) -> bytes:
    compressor = raw_compressor(before)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelDeflate:
    """A raw deflate compressor (``compress``/``flush``, as zipfile uses zlib's) that compresses the
    pieces it is given on worker threads; ``compress`` returns whatever finished, in order."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._pending: deque[Future[bytes]] = deque()
        self._held: memoryview | None = None  # the last piece: compressed once it is known not to be the last
        self._before = b""

    def compress(self, data: bytes | memoryview) -> bytes:
        view = memoryview(data).cast("B")
        if not len(view):
            return b""
        out = self._submit(last=False) if self._held is not None else b""
        self._held = view
        return out

    def flush(self) -> bytes:
        try:
            if self._held is None:  # nothing was written: an empty stream
                return raw_compressor().flush()
            return self._submit(last=True) + self._drain(0)
        finally:
            self._pool.shutdown()

    def _submit(self, last: bool) -> bytes:
        assert self._held is not None
        piece, self._held = self._held, None
        self._pending.append(self._pool.submit(_piece, piece, self._before, last))
        self._before = bytes(piece[-_WINDOW:])
        return self._drain(_IN_FLIGHT)

    def _drain(self, keep: int) -> bytes:
        """The compressed pieces that finished (waiting while more than ``keep`` are in flight), in order."""
        out = []
        while self._pending and (len(self._pending) > keep or self._pending[0].done()):
            out.append(self._pending.popleft().result())
        return b"".join(out)


def use_parallel_deflate(member: IO[bytes]) -> None:
    """Have a zip member opened for writing (``ZipFile.open(name, "w")``, ZIP_DEFLATED) compress
    with :class:`ParallelDeflate`: zipfile still counts the sizes and the CRC of what is written."""
    if getattr(member, "_compressor", None) is None:
        raise RuntimeError("the zip member has no compressor to replace (not ZIP_DEFLATED?)")
    setattr(member, "_compressor", ParallelDeflate())
