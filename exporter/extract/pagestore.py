"""Pages on disk while a fetch runs, so a killed or failed fetch resumes where it stopped.

The pages are appended to one log, ``pages.log``: each page a frame, a header line
``page <number> <lines> <bytes> <crc32>`` then its records' JSON lines (numbers exactly as
received), written with one system call. A frame cut short (the run killed mid-write) or
damaged fails its length or checksum: it and whatever follows are dropped, and the log is cut
back to the last whole frame before anything is appended. One file, not a file per page: on
this project's machine creating a small file costs about 0.4 ms of CPU, an append 0.02 ms, and
a walk of 2,000 pages did little else on the thread that stores them (docs/api.md, "Client").

``key.json`` records what the pages belong to: the base URL, the window and query, the server's
page size and total, and a salted hash (HMAC-SHA256) of the API key, never the key. A store is
resumed only by a fetch that matches all of it within :data:`MAX_AGE_SECONDS` of its start (a
resume is for an interrupted run, not for yesterday's data); otherwise it is discarded, since
its pages may belong to another account, server or moment.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import shutil
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import DataError
from . import jsonexact

_KEY = "key.json"
LOG = "pages.log"
MAX_AGE_SECONDS = 24 * 3600

# salt (hex) -> HMAC-SHA256 of the API key under that salt, hex; see BillingClient.key_fingerprint
Fingerprint = Callable[[str], str]


class _Frame(NamedTuple):
    """Where a stored page's lines sit in the log."""

    offset: int
    size: int


class PageStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._frames: dict[int, _Frame] = {}
        self._log: int | None = None  # the log's descriptor while the store is open
        self._end = 0  # where the next frame goes

    def open(self, key: dict[str, Any], fingerprint: Fingerprint) -> set[int]:
        """Start or resume a fetch for ``key`` with the API key behind ``fingerprint``.

        Returns the page numbers already stored (none unless everything matches).
        """
        self.close()
        if self._resumable(key, fingerprint):
            log = os.open(self.folder / LOG, os.O_RDWR)
            self._frames, self._end = _scan(log)
            os.ftruncate(log, self._end)  # a torn last frame goes; appends follow the whole ones
        else:
            self.remove()
            self.folder.mkdir(parents=True, exist_ok=True)
            salt = secrets.token_hex(16)
            _atomic_write(self.folder / _KEY, json.dumps({"key": key, "salt": salt, "api_key_hmac": fingerprint(salt)}))
            log = os.open(self.folder / LOG, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
            self._frames, self._end = {}, 0
        self._log = log
        return set(self._frames)

    def save(self, page: int, items: list[Any]) -> list[str]:
        """Store a page's records; returns their JSON text, one line each."""
        try:
            lines = [jsonexact.dumps(item) for item in items]
        except ValueError as exc:
            raise DataError(f"page {page}: {exc}") from None
        # A lone surrogate (JSON may escape one; UTF-8 cannot hold it) is written back as its JSON
        # escape, so the page stays valid and record validation names the record (records.py).
        payload = "".join(line + "\n" for line in lines).encode("utf-8", errors="backslashreplace")
        header = f"page {page} {len(lines)} {len(payload)} {zlib.crc32(payload):08x}\n".encode("ascii")
        _write_all(self._opened(), header + payload, self._end)
        self._frames[page] = _Frame(self._end + len(header), len(payload))
        self._end += len(header) + len(payload)
        return lines

    def pages(self) -> list[int]:
        return sorted(self._frames)

    def lines(self, page: int) -> list[str]:
        """A stored page's lines (UnicodeDecodeError when it is not UTF-8)."""
        frame = self._frames[page]
        lines = os.pread(self._opened(), frame.size, frame.offset).decode("utf-8").split("\n")
        if lines[-1] == "":
            lines.pop()  # what the last newline ends
        return lines

    def close(self) -> None:
        if self._log is not None:
            os.close(self._log)
            self._log = None

    def remove(self) -> None:
        self.close()
        self._frames, self._end = {}, 0
        if self.folder.is_symlink():
            self.folder.unlink()
        else:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _opened(self) -> int:
        if self._log is None:
            raise RuntimeError("the page store is not open")
        return self._log

    def _resumable(self, key: dict[str, Any], fingerprint: Fingerprint) -> bool:
        path = self.folder / _KEY
        if self.folder.is_symlink() or path.is_symlink() or (self.folder / LOG).is_symlink():
            return False
        try:
            age = time.time() - path.stat().st_mtime
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored["key"] != key or not -60 <= age <= MAX_AGE_SECONDS or not (self.folder / LOG).is_file():
                return False
            return hmac.compare_digest(str(stored["api_key_hmac"]).encode(), fingerprint(str(stored["salt"])).encode())
        except (OSError, ValueError, KeyError, TypeError):  # unreadable: start afresh
            return False


def stored_pages(folder: Path) -> set[int]:
    """The page numbers whose frames are whole in ``folder``'s log (none without a log)."""
    try:
        log = os.open(folder / LOG, os.O_RDONLY)
    except FileNotFoundError:
        return set()
    try:
        return set(_scan(log)[0])
    finally:
        os.close(log)


def _scan(log: int) -> tuple[dict[int, _Frame], int]:
    """The whole frames from the log's start (a later copy of a page wins) and where they end."""
    frames: dict[int, _Frame] = {}
    end = 0
    with os.fdopen(os.dup(log), "rb") as reader:
        for page, frame in _whole_frames(reader):
            frames[page] = frame
            end = frame.offset + frame.size
    return frames, end


def _whole_frames(reader: Any) -> Iterator[tuple[int, _Frame]]:
    """(page, frame) of each whole frame from the reader's position, until one is not."""
    offset = 0
    while True:
        header = reader.readline(100)
        try:
            word, page, count, size, crc = header.decode("ascii").split()
            number, lines, length = int(page), int(count), int(size)
        except ValueError:  # the end, a torn header or something else: the whole frames end here
            return
        payload = reader.read(length)
        if (word != "page" or not header.endswith(b"\n") or len(payload) != length or payload.count(b"\n") != lines
                or f"{zlib.crc32(payload):08x}" != crc):
            return
        yield number, _Frame(offset + len(header), length)
        offset += len(header) + length


def _write_all(handle: int, data: bytes, offset: int) -> None:
    # os-level calls: each system call gives up the GIL and must take it back (a frame is one write)
    view = memoryview(data)
    while view:
        written = os.pwrite(handle, view, offset)
        view, offset = view[written:], offset + written


def _atomic_write(path: Path, text: str) -> None:
    temporary = f"{path}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # as open() does
    try:
        _write_all(handle, text.encode("utf-8"), 0)
    finally:
        os.close(handle)
    os.replace(temporary, path)
