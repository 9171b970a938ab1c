"""Pages on disk while a fetch runs, so a killed or failed fetch resumes where it stopped.

Each page is one file of JSON lines (numbers exactly as received), written to a temporary name
and renamed, so a page file is either complete or absent. ``key.json`` records what the pages
belong to: the base URL, the window and query, the server's page size and total, and a salted
hash (HMAC-SHA256) of the API key, never the key. A store is resumed only by a fetch that matches
all of it within :data:`MAX_AGE_SECONDS` of its start (a resume is for an interrupted run, not
for yesterday's data); otherwise it is discarded, since its pages may belong to another account,
server or moment.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DataError
from . import jsonexact

_KEY = "key.json"
MAX_AGE_SECONDS = 24 * 3600

# salt (hex) -> HMAC-SHA256 of the API key under that salt, hex; see BillingClient.key_fingerprint
Fingerprint = Callable[[str], str]


class PageStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self, key: dict[str, Any], fingerprint: Fingerprint) -> set[int]:
        """Start or resume a fetch for ``key`` with the API key behind ``fingerprint``.

        Returns the page numbers already stored (none unless everything matches).
        """
        if self._resumable(key, fingerprint):
            return set(self.pages())
        self.remove()
        self.folder.mkdir(parents=True, exist_ok=True)
        salt = secrets.token_hex(16)
        _atomic_write(self.folder / _KEY, json.dumps({"key": key, "salt": salt, "api_key_hmac": fingerprint(salt)}))
        return set()

    def save(self, page: int, items: list[Any]) -> list[str]:
        """Store a page's records; returns their JSON text, one line each."""
        try:
            lines = [jsonexact.dumps(item) for item in items]
        except ValueError as exc:
            raise DataError(f"page {page}: {exc}") from None
        _atomic_write(self._path(page), "".join(line + "\n" for line in lines))
        return lines

    def pages(self) -> list[int]:
        return sorted(int(p.name[5:14]) for p in self.folder.glob("page-" + "[0-9]" * 9 + ".jsonl"))

    def lines(self, page: int) -> list[str]:
        """A stored page's lines, read whole (UnicodeDecodeError when it is not UTF-8)."""
        lines = self._path(page).read_text(encoding="utf-8").split("\n")
        if lines[-1] == "":
            lines.pop()  # what the last newline ends
        return lines

    def remove(self) -> None:
        if self.folder.is_symlink():
            self.folder.unlink()
        else:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _resumable(self, key: dict[str, Any], fingerprint: Fingerprint) -> bool:
        path = self.folder / _KEY
        if self.folder.is_symlink() or path.is_symlink():
            return False
        try:
            age = time.time() - path.stat().st_mtime
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored["key"] != key or not -60 <= age <= MAX_AGE_SECONDS:
                return False
            return hmac.compare_digest(str(stored["api_key_hmac"]).encode(), fingerprint(str(stored["salt"])).encode())
        except (OSError, ValueError, KeyError, TypeError):  # unreadable: start afresh
            return False

    def _path(self, page: int) -> Path:
        return self.folder / f"page-{page:09d}.jsonl"  # MAX_RECORDS pages of one record still fit


def _atomic_write(path: Path, text: str) -> None:
    temporary = f"{path}.tmp"
    # A lone surrogate (JSON may escape one; UTF-8 cannot hold it) is written back as its JSON
    # escape, so the page stays valid and record validation names the record (records.py).
    data = text.encode("utf-8", errors="backslashreplace")
    # os-level calls: each system call gives up the GIL and must take it back (a page is one write)
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # as open() does
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(handle, view):]
    finally:
        os.close(handle)
    os.replace(temporary, path)
