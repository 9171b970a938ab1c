"""The audit trail: the period's records exactly as received, and what is needed to re-render.

``source/billings.jsonl.gz`` holds one record per line, numbers written back exactly as the API
sent them. ``source/context.json`` holds the window, the extraction figures and the provider's
usage summary, so ``export --from-source`` rebuilds every file offline.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd

from .extract import jsonexact
from .errors import ConfigError, DataError, os_reason
from .models import ExtractionStats
from .period import Window
from .extract.records import parse_records

ARCHIVE_NAME = "billings.jsonl.gz"
CONTEXT_NAME = "context.json"


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

    def write(self, line: str) -> None:
        self._buffer.append(line)
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
    # a lone surrogate in the API's text is kept as its JSON escape (UTF-8 cannot hold it; the
    # usage summary's model names are then refused by parse_provider_usage, naming the field)
    path.write_text(jsonexact.dumps(payload) + "\n", encoding="utf-8", errors="backslashreplace")
    return path


def read_archive(folder: Path, chunk: int = 50_000) -> pd.DataFrame:
    """Every archived record, validated as columns (records.RECORD_COLUMNS), in archive order."""
    path = folder / ARCHIVE_NAME
    frames: list[pd.DataFrame] = []
    first = 1  # line number of the chunk's first line
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            while lines := list(islice(handle, chunk)):
                try:
                    raws = jsonexact.loads_lines(lines)
                except jsonexact.LineError as exc:
                    raise DataError(f"{path}: line {first + exc.index} is not valid JSON ({exc.reason})") from None
                frames.append(parse_records(raws, _line_namer(first)))
                first += len(lines)
    except (EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is damaged ({_damage(exc)}); export the period from the API again") from None
    except OSError as exc:
        raise ConfigError(f"--from-source: cannot read {path}: {os_reason(exc)}") from None
    return pd.concat(frames, ignore_index=True) if frames else parse_records([], str)


def _damage(exc: Exception) -> str:
    if isinstance(exc, EOFError):
        return "the file is truncated"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: {exc.reason}"
    return f"not a valid gzip file: {exc}"


def _line_namer(first: int) -> Callable[[int], str]:
    return lambda i: f"{ARCHIVE_NAME} line {first + i}"


def read_context(folder: Path) -> SourceContext:
    path = folder / CONTEXT_NAME
    try:
        data = jsonexact.loads(path.read_bytes())
        w = data["window"]
        window = Window(date.fromisoformat(w["first_day"]), date.fromisoformat(w["last_day"]), w["time_zone"], w["label"])
        s = data["stats"]
        stats = ExtractionStats(
            source=str(s["source"]),
            server_total=None if s["server_total"] is None else _count(s["server_total"]),
            unique_fetched=_count(s["unique_fetched"]), duplicates_dropped=_count(s["duplicates_dropped"]),
            pages=_count(s["pages"]), in_period=_count(s["in_period"]),
        )
        return SourceContext(window, stats, data.get("provider_usage"), [str(w) for w in data.get("warnings", [])])
    except FileNotFoundError:
        raise ConfigError(f"--from-source: {path} does not exist (give the source/ folder of an export)") from None
    except OSError as exc:
        raise ConfigError(f"--from-source: cannot read {path}: {os_reason(exc)}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a valid source context ({type(exc).__name__}: {exc})") from None


def _count(value: Any) -> int:
    """A count as written by :func:`write_context`: a JSON integer (int() of 1e999999999 would not end)."""
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a count, got {str(value)[:40]}")
    return value


def resolve_source_folder(path: Path) -> Path:
    """Accept the pack folder, its source/ folder, or the archive file itself."""
    if path.is_file():
        return path.parent
    if (path / "source" / ARCHIVE_NAME).exists():
        return path / "source"
    if (path / ARCHIVE_NAME).exists():
        return path
    raise ConfigError(f"--from-source: no {ARCHIVE_NAME} in {path}")
