"""The audit trail: the period's records exactly as received, and what is needed to re-render.

``source/billings.jsonl.gz`` holds one record per line, numbers written back exactly as the API
sent them. ``source/closed.jsonl.gz`` (when the books hold closed periods to re-check) holds what
the API returned for those periods at the time, the evidence of the late changes posted.
``source/context.json`` holds the window, the extraction figures, the provider's usage summary,
the exported usage of the provider's days it is compared with, and the provider's balance, so
``export --from-source`` rebuilds every file offline. They are read back only when they match the
size and sha256 the pack's ``manifest.json`` lists for them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import queue
import shutil
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa

from .books.recheck import Recheck
from .deflate_backend import ERRORS as DEFLATE_ERRORS, gunzip_reader
from .extract import USAGE_COLUMNS, jsonexact
from .errors import ConfigError, DataError, os_reason
from .models import CATEGORY_COLUMNS, ExtractionStats, ProviderBalance
from .money import CURRENCY_CODE, format_micros, parse_amount
from .pack import MANIFEST_NAME, listed
from .period import Window, label_fits
from .extract.columnar import block_columns, encode_categories, to_frame
from .extract.records import parse_records

ARCHIVE_NAME = "billings.jsonl.gz"
CLOSED_NAME = "closed.jsonl.gz"
CONTEXT_NAME = "context.json"


@dataclass(frozen=True)
class SourceContext:
    window: Window
    stats: ExtractionStats
    provider_usage: Any  # the /usage answer's data (jsonexact numbers), or None if unavailable
    warnings: list[str]
    provider_balance: ProviderBalance | None = None
    # what the provider's summary is compared with: completed usage of the provider's UTC days
    # (extract.USAGE_COLUMNS); None in a context written before it was recorded
    provider_days_usage: pd.DataFrame | None = None
    recheck: Recheck | None = None  # the closed days re-read for late changes, and why


class ArchiveWriter:
    """Appends records' JSON text to ``billings.jsonl.gz``; the same lines give the same bytes.

    Blocks of lines are compressed in order on a thread of their own (zlib works without the
    GIL), a few blocks queued at most: the run goes on (the usage summary, the balance) while the
    last blocks are compressed, and :meth:`close` waits for them.
    """

    BLOCK_LINES = 10_000
    QUEUED_BLOCKS = 16  # about 30 MB of lines waiting, at most

    def __init__(self, folder: Path, name: str = ARCHIVE_NAME) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / name
        self._file = open(self.path, "wb")
        # mtime=0 and no file name in the gzip header keep the bytes reproducible
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._file, mtime=0, compresslevel=6)
        self._buffer: list[str] = []
        self._blocks: queue.Queue[bytes | None] = queue.Queue(self.QUEUED_BLOCKS)
        self._failure: BaseException | None = None  # what compressing raised (a full disk), raised by close()
        self._compressor = threading.Thread(target=self._compress, name="archive", daemon=True)
        self._compressor.start()
        self.lines = 0  # records written, checked against the records exported

    def write(self, line: str) -> None:
        self._buffer.append(line)
        self.lines += 1
        if len(self._buffer) >= self.BLOCK_LINES:
            self._flush()

    def close(self) -> None:
        try:
            self._flush()
            self._blocks.put(None)
            self._compressor.join()
            if self._failure is not None:
                raise self._failure
        finally:
            self._gzip.close()
            self._file.close()

    def _flush(self) -> None:
        if self._buffer:
            self._blocks.put(("\n".join(self._buffer) + "\n").encode("utf-8"))
            self._buffer.clear()

    def _compress(self) -> None:
        while (block := self._blocks.get()) is not None:
            if self._failure is None:  # after a failure the blocks are only taken off the queue
                try:
                    self._gzip.write(block)
                except BaseException as exc:
                    self._failure = exc


def write_context(folder: Path, context: SourceContext) -> Path:
    """``context.json``: the window, extraction figures, warnings and the provider's usage answer."""
    window = context.window
    payload = {
        "window": {"first_day": window.first_day.isoformat(), "last_day": window.last_day.isoformat(),
                   "time_zone": window.tz_name, "label": window.label},
        "stats": asdict(context.stats),
        "warnings": context.warnings,
        "provider_usage": context.provider_usage,  # numbers kept exactly as the API sent them
        "provider_balance": _balance_json(context.provider_balance),
    }
    if context.provider_days_usage is not None:
        payload["provider_days_usage"] = _usage_rows(context.provider_days_usage)
    if context.recheck is not None:
        payload["recheck"] = context.recheck.to_json()
    path = folder / CONTEXT_NAME
    # a lone surrogate in the API's text is kept as its JSON escape (UTF-8 cannot hold it; the
    # usage summary's model names are then refused by parse_provider_usage, naming the field)
    try:
        text = jsonexact.dumps(payload)
    except ValueError as exc:
        raise DataError(f"usage summary: {exc}") from None
    path.write_text(text + "\n", encoding="utf-8", errors="backslashreplace")
    return path


def _balance_json(balance: ProviderBalance | None) -> dict[str, Any] | None:
    if balance is None:
        return None
    return {
        "balance": format_micros(balance.balance_micros), "currency": balance.currency,
        "read_at": balance.read_at.isoformat(), "records_after": balance.after_records,
        "net_after": None if balance.after_net_micros is None else format_micros(balance.after_net_micros),
        "skipped": balance.skipped,
    }


def _balance_from(data: Any) -> ProviderBalance | None:
    if data is None:
        return None
    net = data["net_after"]
    currency = data["currency"]
    if not isinstance(currency, str) or not CURRENCY_CODE.fullmatch(currency):
        raise DataError(f"archived context: provider_balance field 'currency' must be three capital letters "
                        f"(ISO 4217), got {str(currency)[:20]!r}")
    return ProviderBalance(
        balance_micros=parse_amount(str(data["balance"]))[0], currency=currency,
        read_at=datetime.fromisoformat(data["read_at"]), after_records=int(data["records_after"]),
        after_net_micros=None if net is None else parse_amount(str(net))[0], skipped=str(data["skipped"]),
    )


def read_archive(folder: Path, chunk: int = 50_000, *, name: str = ARCHIVE_NAME, verify: bool = True,
                 categories: bool = False) -> pd.DataFrame:
    """Every archived record, validated as columns (records.RECORD_COLUMNS), in archive order.

    With ``categories`` the few-valued text columns (models.CATEGORY_COLUMNS) are pandas
    categories, encoded a block at a time: a million records' text is never held as text.

    With ``verify`` the file's bytes are hashed as they are read and must match the manifest.
    The archive is parsed into columns by pyarrow (extract/columnar.py); when that reader cannot
    vouch for the data (a bad record, damage, JSON it could read differently) the per-record
    reader reads it, naming the first offending record or the damage.
    """
    path = folder / name
    expected = listed(folder, name) if verify else None
    encoded = CATEGORY_COLUMNS if categories else ()
    frame = _read_columnar(path, expected, encoded)
    if frame is None:
        frame = read_archive_per_record(path, expected, chunk)
        frame = frame.astype(dict.fromkeys(encoded, "category")) if encoded else frame
    return frame


# of decompressed lines per pyarrow parse: bounds the memory beside the columns (a 1M-record read
# peaks ~70 MiB lower at 4 MiB than at 16 MiB, in the same time)
BLOCK_BYTES = 4 << 20
_UNREADABLE: tuple[type[Exception], ...] = (OSError, EOFError, *DEFLATE_ERRORS)  # left to the per-record reader to name
PARSERS = 2  # blocks parsed at once: the cores of the machine this was measured on


def _read_columnar(path: Path, expected: tuple[int, str] | None, encoded: tuple[str, ...]) -> pd.DataFrame | None:
    """The archive's records frame by the columnar reader, or None to leave it to the per-record one
    (which then reports whatever is wrong first, as it always did).

    The next block is read (gunzip and hash, which release the GIL) on one thread while blocks
    are parsed on ``PARSERS`` others (pyarrow's kernels release it too), in order.
    """
    tables: list[pa.Table] = []
    parsing: deque[Future[pa.Table | None]] = deque()

    def parsed(keep: int) -> bool:
        """Collect the parsed blocks, in order, until at most ``keep`` are in flight; False on a refusal."""
        while len(parsing) > keep:
            table = parsing.popleft().result()
            if table is None:
                return False
            tables.append(table)
        return True

    try:
        with open(path, "rb") as raw, gunzip_reader(hashed := _HashingReader(raw)) as unzipped, \
                ThreadPoolExecutor(max_workers=1) as ahead, ThreadPoolExecutor(max_workers=PARSERS) as parsers:
            blocks = _line_blocks(unzipped)
            pending = ahead.submit(next, blocks, None)
            while (data := pending.result()) is not None:
                pending = ahead.submit(next, blocks, None)
                if not data or not parsed(PARSERS - 1):
                    return None
                parsing.append(parsers.submit(_parse_block, data, encoded))
            if not parsed(0) or not tables:
                return None  # no records: the per-record reader's case
            if expected is not None:
                hashed.read(-1)  # whatever gzip did not need still counts
    except _UNREADABLE:
        return None
    if expected is not None:
        _check(path, expected, hashed.size, hashed.digest.hexdigest())
    frame = to_frame(tables)
    pa.default_memory_pool().release_unused()  # the parser's working memory, back to the system
    return frame


def _parse_block(data: bytes, encoded: tuple[str, ...]) -> pa.Table | None:
    table = block_columns(data)
    table = None if table is None else encode_categories(table, encoded)
    # the parser's working memory goes back from this thread's own heap (the allocator keeps one a
    # thread): the 1M-record render's peak is a few MiB lower (487 against 494 MiB, medians of 5)
    pa.default_memory_pool().release_unused()
    return table


def _line_blocks(unzipped: gzip.GzipFile) -> Iterator[bytes]:
    """The decompressed archive in blocks of whole lines; an empty block for a last line without
    its newline (the per-record reader's case)."""
    rest = b""
    while piece := unzipped.read(BLOCK_BYTES):
        data = rest + piece if rest else piece
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut] if cut < len(data) else data
        rest = data[cut:]
    if rest:
        yield b""


def read_archive_per_record(path: Path, expected: tuple[int, str] | None, chunk: int = 50_000) -> pd.DataFrame:
    """The archive read record by record (:mod:`jsonexact`, ``parse_records``): the reference the
    columnar reader must equal, and the reader that explains bad data."""
    name = path.name
    frames: list[pd.DataFrame] = []
    first = 1  # line number of the chunk's first line
    try:
        with open(path, "rb") as raw, gzip.open(hashed := _HashingReader(raw), "rt", encoding="utf-8") as handle:
            while lines := list(islice(handle, chunk)):
                try:
                    raws = jsonexact.loads_lines(lines)
                except jsonexact.LineError as exc:
                    raise DataError(f"{path}: line {first + exc.index} is not valid JSON ({exc.reason})") from None
                frames.append(parse_records(raws, _line_namer(name, first)))
                first += len(lines)
            if expected is not None:
                hashed.read(-1)  # whatever gzip did not need still counts
                _check(path, expected, hashed.size, hashed.digest.hexdigest())
    except (EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is damaged ({_damage(exc)}); export the period from the API again") from None
    except OSError as exc:
        raise ConfigError(f"[[from_source]]: cannot read {path}: {os_reason(exc)}") from None
    return pd.concat(frames, ignore_index=True) if frames else parse_records([], str)


def _damage(exc: Exception) -> str:
    if isinstance(exc, EOFError):
        return "the file is truncated"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: {exc.reason}"
    return f"not a valid gzip file: {exc}"


def copy_archive(folder: Path, to: Path, name: str = ARCHIVE_NAME) -> Path:
    """Copy an archive into ``to``, checking the copy's bytes against the manifest as they are written."""
    expected = listed(folder, name)
    to.mkdir(parents=True, exist_ok=True)
    source, copy = folder / name, to / name
    with open(source, "rb") as raw, open(copy, "wb") as out:
        hashed = _HashingReader(raw)
        shutil.copyfileobj(hashed, out, 1 << 20)
    _check(source, expected, hashed.size, hashed.digest.hexdigest())
    return copy


def verified(folder: Path, name: str) -> Path:
    """``<folder>/<name>``, once its bytes are checked against the manifest (DataError if changed)."""
    path = folder / name
    expected = listed(folder, name)
    data = path.read_bytes()
    _check(path, expected, len(data), hashlib.sha256(data).hexdigest())
    return path


class _HashingReader:
    """A binary file that hashes (sha256) and counts whatever is read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.size, self.digest = raw, 0, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.size += len(data)
        self.digest.update(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = self.raw.readinto(view)  # type: ignore[attr-defined]
        self.size += count
        self.digest.update(view[:count])
        return count

    def seek(self, offset: int) -> int:
        raise io.UnsupportedOperation("a hashed read goes forward only")


def _check(path: Path, expected: tuple[int, str], size: int, digest: str) -> None:
    if (size, digest) != expected:
        raise DataError(f"{path} does not match the size and sha256 in the pack's {MANIFEST_NAME}: it was changed after the export")


def _line_namer(name: str, first: int) -> Callable[[int], str]:
    return lambda i: f"{name} line {first + i}"


def read_context(folder: Path, *, verify: bool = True) -> SourceContext:
    """The archived context; with ``verify`` its bytes must match the pack's manifest."""
    path = folder / CONTEXT_NAME
    try:
        text = path.read_bytes()
        if verify:
            _check(path, listed(folder, CONTEXT_NAME), len(text), hashlib.sha256(text).hexdigest())
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
            server_total=None if s["server_total"] is None else _count(s["server_total"]),
            unique_fetched=_count(s["unique_fetched"]), duplicates_dropped=_count(s["duplicates_dropped"]),
            pages=_count(s["pages"]), in_period=_count(s["in_period"]), api=str(s.get("api", "legacy")),
        )
        usage = data.get("provider_days_usage")
        return SourceContext(window, stats, data.get("provider_usage"), [str(w) for w in data.get("warnings", [])],
                             provider_days_usage=None if usage is None else _usage_frame(usage),
                             provider_balance=_balance_from(data.get("provider_balance")),
                             recheck=Recheck.from_json(data["recheck"]) if "recheck" in data else None)
    except FileNotFoundError:
        raise ConfigError(f"[[from_source]]: {path} does not exist (give the source/ folder of an export)") from None
    except OSError as exc:
        raise ConfigError(f"[[from_source]]: cannot read {path}: {os_reason(exc)}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a valid source context ({type(exc).__name__}: {exc})") from None


def _usage_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"model": str(model), "currency": str(currency), "count": int(count), "amount": format_micros(micros)}
        for model, currency, count, micros in zip(frame["model"], frame["currency"], frame["count"], frame["amount_micros"])
    ]


def _usage_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """context.json's ``provider_days_usage`` back to a frame (ValueError/KeyError/TypeError if malformed)."""
    if not isinstance(rows, list):
        raise TypeError("provider_days_usage must be a list")
    frame = pd.DataFrame(
        [(str(r["model"]), str(r["currency"]), int(r["count"]), parse_amount(str(r["amount"]))[0]) for r in rows],
        columns=USAGE_COLUMNS,
    )
    return frame.astype({"model": "str", "currency": "str", "count": "int64", "amount_micros": "int64"})


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
    raise ConfigError(f"[[from_source]]: no {ARCHIVE_NAME} in {path}")
