"""Pages on disk while a fetch runs, so a killed or failed fetch resumes where it stopped.

Each page is one file of JSON lines (numbers exactly as received), written to a temporary name
and renamed, so a page file is either complete or absent. ``key.json`` records what the pages
belong to (the query and the server's page size and total); a store whose key no longer matches
the first page's answer is discarded, since the pages would have shifted.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import jsonexact

_KEY = "key.json"


class PageStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self, key: dict[str, Any]) -> set[int]:
        """Start or resume a fetch for ``key``; returns the page numbers already stored."""
        key_path = self.folder / _KEY
        if key_path.exists():
            try:
                same = json.loads(key_path.read_text(encoding="utf-8")) == key
            except ValueError:
                same = False
            if same:
                return set(self.pages())
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(key_path, json.dumps(key, sort_keys=True))
        return set()

    def save(self, page: int, items: list[Any]) -> list[str]:
        """Store a page's records; returns their JSON text, one line each."""
        lines = [jsonexact.dumps(item) for item in items]
        _atomic_write(self._path(page), "".join(line + "\n" for line in lines))
        return lines

    def pages(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.folder.glob("page-*.jsonl"))

    def lines(self, page: int) -> Iterator[str]:
        with open(self._path(page), encoding="utf-8") as handle:
            for line in handle:
                yield line.rstrip("\n")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _path(self, page: int) -> Path:
        return self.folder / f"page-{page:06d}.jsonl"


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    # A lone surrogate (JSON may escape one; UTF-8 cannot hold it) is written back as its JSON
    # escape, so the page stays valid and record validation names the record (records.py).
    temporary.write_text(text, encoding="utf-8", errors="backslashreplace")
    os.replace(temporary, path)
