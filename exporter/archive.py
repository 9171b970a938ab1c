"""The audit trail: the period's records exactly as received, and what is needed to re-render.

``source/billings.jsonl.gz`` holds one record per line, numbers written back exactly as the API
sent them. ``source/context.json`` holds the window, the extraction figures and the provider's
usage summary, so ``export --from-source`` rebuilds every file offline. Both are read back only
when they match the size and sha256 the pack's ``manifest.json`` lists for them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from itertools import islice
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import pandas as pd

from .extract import jsonexact
from .errors import ConfigError, DataError
from .models import ExtractionStats
from .period import Window, label_fits
from .extract.records import parse_records

ARCHIVE_NAME = "billings.jsonl.gz"
CONTEXT_NAME = "context.json"
MANIFEST_NAME = "manifest.json"  # the pack's manifest (writers/manifest.py), beside source/


@dataclass(frozen=True)
class SourceContext:
    window: Window
    stats: ExtractionStats
    provider_usage: Any  # the /usage answer's data (jsonexact numbers), or None if unavailable
    warnings: list[str]


class ArchiveWriter:
    """Appends records' JSON text to ``billings.jsonl.gz``; the same lines give the same bytes."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / ARCHIVE_NAME
        self._file = open(self.path, "wb")
        # mtime=0 and no file name in the gzip header keep the bytes reproducible
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._file, mtime=0, compresslevel=6)
        self._buffer: list[str] = []
        self.lines = 0  # records written, checked against the records exported

    def write(self, line: str) -> None:
        self._buffer.append(line)
        self.lines += 1
        if len(self._buffer) >= 10_000:
            self._flush()

    def close(self) -> None:
        self._flush()
        self._gzip.close()
        self._file.close()

    def _flush(self) -> None:
        if self._buffer:
            self._gzip.write(("\n".join(self._buffer) + "\n").encode("utf-8"))
            self._buffer.clear()


def write_context(folder: Path, context: SourceContext) -> Path:
    """``context.json``: the window, extraction figures, warnings and the provider's usage answer."""
    window = context.window
    payload = {
        "window": {"first_day": window.first_day.isoformat(), "last_day": window.last_day.isoformat(),
                   "time_zone": window.tz_name, "label": window.label},
        "stats": asdict(context.stats),
        "warnings": context.warnings,
        "provider_usage": context.provider_usage,  # numbers kept exactly as the API sent them
    }
    path = folder / CONTEXT_NAME
    try:
        text = jsonexact.dumps(payload)
    except ValueError as exc:
        raise DataError(f"usage summary: {exc}") from None
    path.write_text(text + "\n", encoding="utf-8")
    return path


def read_archive(folder: Path, chunk: int = 50_000, *, verify: bool = True) -> pd.DataFrame:
    """Every archived record, validated as columns (records.RECORD_COLUMNS), in archive order.

    With ``verify`` the file's bytes are hashed as they are read and must match the manifest.
    """
    path = folder / ARCHIVE_NAME
    expected = _manifest_entry(folder, ARCHIVE_NAME) if verify else None
    frames: list[pd.DataFrame] = []
    first = 1  # line number of the chunk's first line
    with open(path, "rb") as raw:
        hashed = _HashingReader(raw)
        with gzip.open(hashed, "rt", encoding="utf-8") as handle:
            while lines := list(islice(handle, chunk)):
                try:
                    raws = jsonexact.loads_lines(lines)
                except jsonexact.LineError as exc:
                    raise DataError(f"{path}: line {first + exc.index} is not valid JSON ({exc.reason})") from None
                frames.append(parse_records(raws, _line_namer(first)))
                first += len(lines)
        if expected is not None:
            hashed.read(-1)  # whatever gzip did not need still counts
            _check(path, expected, hashed.size, hashed.digest.hexdigest())
    return pd.concat(frames, ignore_index=True) if frames else parse_records([], str)


def copy_archive(folder: Path, to: Path) -> Path:
    """Copy the archive into ``to``, checking the copy's bytes against the manifest as they are written."""
    expected = _manifest_entry(folder, ARCHIVE_NAME)
    to.mkdir(parents=True, exist_ok=True)
    source, copy = folder / ARCHIVE_NAME, to / ARCHIVE_NAME
    with open(source, "rb") as raw, open(copy, "wb") as out:
        hashed = _HashingReader(raw)
        shutil.copyfileobj(hashed, out, 1 << 20)
    _check(source, expected, hashed.size, hashed.digest.hexdigest())
    return copy


class _HashingReader:
    """A binary file that hashes (sha256) and counts whatever is read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.size, self.digest = raw, 0, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.size += len(data)
        self.digest.update(data)
        return data

    def seek(self, offset: int) -> int:
        raise io.UnsupportedOperation("a hashed read goes forward only")


def _manifest_entry(folder: Path, name: str) -> tuple[int, str]:
    """(size, sha256) the pack's manifest lists for ``<folder>/<name>``; DataError when it cannot say."""
    manifest = folder.parent / MANIFEST_NAME
    listed = f"{folder.name}/{name}"
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        entry = next(f for f in files if isinstance(f, dict) and f.get("name") == listed)
        size, digest = entry["size"], entry["sha256"]
    except FileNotFoundError:
        raise DataError(f"{folder / name} cannot be verified: no {MANIFEST_NAME} in {folder.parent}") from None
    except StopIteration:
        raise DataError(f"{folder / name} cannot be verified: {manifest} does not list {listed}") from None
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{folder / name} cannot be verified: {manifest} is not a valid manifest") from None
    if type(size) is not int or not isinstance(digest, str):
        raise DataError(f"{folder / name} cannot be verified: {manifest} is not a valid manifest")
    return size, digest


def _check(path: Path, expected: tuple[int, str], size: int, digest: str) -> None:
    if (size, digest) != expected:
        raise DataError(f"{path} does not match the size and sha256 in the pack's {MANIFEST_NAME}: it was changed after the export")


def _line_namer(first: int) -> Callable[[int], str]:
    return lambda i: f"{ARCHIVE_NAME} line {first + i}"


def read_context(folder: Path, *, verify: bool = True) -> SourceContext:
    """The archived context; with ``verify`` its bytes must match the pack's manifest."""
    path = folder / CONTEXT_NAME
    try:
        text = path.read_bytes()
        if verify:
            _check(path, _manifest_entry(folder, CONTEXT_NAME), len(text), hashlib.sha256(text).hexdigest())
        data = jsonexact.loads(text)
        w = data["window"]
        window = Window(date.fromisoformat(w["first_day"]), date.fromisoformat(w["last_day"]), w["time_zone"], w["label"])
        ZoneInfo(window.tz_name)  # an unknown or path-like zone name fails here, not later
        if not label_fits(window.label, window.first_day, window.last_day):
            raise DataError(f"{path}: the period label {window.label!r} is not the label of "
                            f"{window.first_day}..{window.last_day} (YYYY-MM, YYYY-MM-DD_YYYY-MM-DD or YYYY-Qn)")
        s = data["stats"]
        stats = ExtractionStats(
            source=str(s["source"]),
            server_total=None if s["server_total"] is None else int(s["server_total"]),
            unique_fetched=int(s["unique_fetched"]), duplicates_dropped=int(s["duplicates_dropped"]),
            pages=int(s["pages"]), in_period=int(s["in_period"]),
        )
        return SourceContext(window, stats, data.get("provider_usage"), [str(w) for w in data.get("warnings", [])])
    except FileNotFoundError:
        raise ConfigError(f"--from-source: {path} does not exist (give the source/ folder of an export)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a valid source context ({type(exc).__name__}: {exc})") from None


def resolve_source_folder(path: Path) -> Path:
    """Accept the pack folder, its source/ folder, or the archive file itself."""
    if path.is_file():
        return path.parent
    if (path / "source" / ARCHIVE_NAME).exists():
        return path / "source"
    if (path / ARCHIVE_NAME).exists():
        return path
    raise ConfigError(f"--from-source: no {ARCHIVE_NAME} in {path}")
