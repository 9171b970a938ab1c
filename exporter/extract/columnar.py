"""Records become columns once, in C: JSON lines -> the records frame (records.RECORD_COLUMNS) with pyarrow.

pyarrow's JSON reader parses a block of archive lines against an explicit schema (no inference,
no float: amounts as ``decimal128``), and every check of :func:`records.parse_records` runs on
whole columns: the distinct values of the few-valued fields (type, status, currency, model, ...)
in Python, the rest (ids, timestamps, amounts) in Arrow's kernels.

The reader only ever says yes when the per-record path (:mod:`jsonexact` + ``parse_records``)
would return exactly the same frame. Whenever it cannot vouch for that (a record that is not
plainly valid, JSON that Python and pyarrow's parser could read differently: NaN, a carriage
return, a line that is not one object, very deep nesting, invalid UTF-8), :func:`block_columns`
returns None and the caller reads the data through the per-record path, which names the first
offending record and field with the messages and exit codes it always had. Valid data never
takes that path; bad data costs a second read, once, on the way to an error.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..money import parse_amount
from .records import OPTIONAL_KEY_FIELDS, RECORD_COLUMNS

_CURRENCY = re.compile(r"[A-Z]{3}")  # as records._CURRENCY
_REQUIRED_TEXT = ("type", "status", "currency")
_OPTIONAL_TEXT = ("model", "payment_method", *OPTIONAL_KEY_FIELDS)
# exact: 18 digits, 6 after the point; anything finer or larger fails here and is judged by
# the per-record path (which names it: "more than 6 decimal places", "too large")
AMOUNT_TYPE = pa.decimal128(18, 6)
SCHEMA = pa.schema(
    [("id", pa.string()), ("created_at", pa.string()), *((key, pa.string()) for key in _REQUIRED_TEXT),
     *((key, pa.string()) for key in _OPTIONAL_TEXT), ("amount", AMOUNT_TYPE)]
)
_PARSE = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False)
# A block is parsed on the caller's thread: the archive's blocks are parsed on threads of their own
# (archive.PARSERS), and pages on the fetch's. Arrow's own pool on top of those made the 1M read
# slower (1.14 against 1.06 s, medians of 7; docs/performance.md).
_READ = pj.ReadOptions(use_threads=False)
# Every character str.strip() removes (str.isspace): an id made only of these is blank. RE2's \s
# is ASCII only, so they are listed (tests/test_columnar.py checks the list against Python's).
PY_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_BLANK = "^[" + PY_SPACE + "]*$"
# the amount's own text, for its precision (0.0090 is written back as 0.0090): JSON's number grammar,
# matched where the line's one "amount" starts (found by a plain substring search: RE2 scanning
# each whole line for it took 2.5 times as long)
_AMOUNT_KEY = '"amount"'
_AMOUNT_TEXT = r'^"amount"\s*:\s*(?P<a>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*[,}]'
_STAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"
# Longer lines are checked for what Python's decoder refuses and pyarrow's takes: nesting beyond
# the recursion limit, integers of more than 4,300 digits (int's limit). Records are ~200-350 bytes.
_LONG_LINE = 512


def block_columns(data: bytes) -> pa.Table | None:
    """Whole JSON lines (``data`` ends with a newline) -> a table of the record columns, or None
    when the per-record path must judge them (see the module's docstring)."""
    try:
        return _block_columns(data)
    except (pa.ArrowException, UnicodeDecodeError):  # pyarrow refused something: the per-record path says what
        return None


def _block_columns(data: bytes) -> pa.Table | None:
    lines = _lines(data)
    if lines is None:
        return None
    table = pj.read_json(pa.BufferReader(data), read_options=_READ, parse_options=_PARSE)
    if table.num_rows != len(lines):
        return None
    columns: dict[str, Any] = {}
    for key in ("id", "created_at", *_REQUIRED_TEXT, "amount"):
        column = table.column(key)
        if column.null_count:
            return None
        columns[key] = column
    if pc.any(pc.match_substring_regex(columns["id"], _BLANK)).as_py():
        return None
    for key in _REQUIRED_TEXT:
        if not all(value.strip() for value in pc.unique(columns[key]).to_pylist()):
            return None
    if not all(_CURRENCY.fullmatch(code) for code in pc.unique(columns["currency"]).to_pylist()):
        return None
    for key in _OPTIONAL_TEXT:
        columns[key] = pc.fill_null(table.column(key), "")
    amounts = _amounts(data, lines, columns.pop("amount"))
    instants = _instants(columns["created_at"])
    if amounts is None or instants is None:
        return None
    columns["amount"], columns["amount_micros"] = amounts
    columns["created_at"] = instants
    # pandas keeps text as large_string: converted here, a block at a time, so the frame takes the
    # blocks' arrays as they are (no copy of the whole month at the end)
    return pa.table({name: _contiguous(columns[name]) for name in RECORD_COLUMNS})


def _contiguous(column: pa.Array | pa.ChunkedArray | np.ndarray) -> pa.Array:
    if isinstance(column, np.ndarray):
        return pa.array(column)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return pc.cast(column, pa.large_string()) if pa.types.is_string(column.type) else column


def _lines(data: bytes) -> pa.StringArray | None:
    """The lines as one Arrow string array over ``data`` (no copy), or None unless they are plain.

    Plain: one JSON object per line, as the archive writes them: every newline sits between ``}``
    and ``{`` (never inside one JSON value) and the last ends the data; no carriage return
    (Python's text reading splits lines there too), no NaN/Infinity (pyarrow's parser takes them,
    Python's json refuses them), valid UTF-8, not nested too deep.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10)
    if (not len(ends) or ends[-1] != len(raw) - 1 or raw[0] != ord("{") or (raw[ends - 1] != ord("}")).any()
            or (raw[ends[:-1] + 1] != ord("{")).any() or b"\r" in data or _holds(raw, b"NaN") or _holds(raw, b"Infinity")):
        return None
    offsets = np.zeros(len(ends) + 1, dtype=np.int64)
    offsets[1:] = ends + 1
    lines = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    lines.validate(full=True)  # UTF-8, as gzip.open(..., "rt", encoding="utf-8") would decode it (else ArrowInvalid)
    long = pc.filter(lines, pc.greater(pc.binary_length(lines), _LONG_LINE))
    if len(long):
        depth = pc.add(pc.count_substring(long, "["), pc.count_substring(long, "{"))
        if pc.max(depth).as_py() > _LONG_LINE // 2 or pc.any(pc.match_substring_regex(long, "[0-9]{400}")).as_py():
            return None
    return lines


def _holds(raw: np.ndarray, word: bytes) -> bool:
    """Whether ``word`` occurs in the bytes: its first byte's places, then the rest there (numpy, no GIL)."""
    at = np.flatnonzero(raw[: len(raw) - len(word) + 1] == word[0])
    for offset in range(1, len(word)):
        at = at[raw[at + offset] == word[offset]]
    return bool(len(at))


def _amounts(data: bytes, lines: pa.Array, values: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray] | None:
    """(plain decimal text with the source's precision, int64 micros), or None.

    The text is the number as written on the line (the line's one ``"amount"``: every line has
    one and the block as many as lines); its micros must equal pyarrow's decimal of the record's
    own ``amount`` field, so the text is that field's.
    """
    at = pc.find_substring(lines, _AMOUNT_KEY).to_numpy()
    if (at < 0).any() or data.count(_AMOUNT_KEY.encode()) != len(lines):
        return None
    found = pc.extract_regex(_lines_from(lines, at), _AMOUNT_TEXT)
    if found.null_count:
        return None
    texts = pc.dictionary_encode(found.field("a"))
    parsed = []
    for text in texts.dictionary.to_pylist():  # prices repeat: a month has few distinct amounts
        try:
            parsed.append(parse_amount(text))
        except ValueError:
            return None
    micros_of = np.array([micros for micros, _ in parsed], dtype=np.int64)
    micros = micros_of[texts.indices.to_numpy(zero_copy_only=False)]
    if not np.array_equal(micros, _decimal_micros(values)):
        return None
    plain = pa.DictionaryArray.from_arrays(texts.indices, pa.array([text for _, text in parsed], pa.string()))
    return plain.dictionary_decode(), micros


def _lines_from(lines: pa.LargeStringArray, at: np.ndarray) -> pa.LargeStringArray:
    """Each line's text from byte ``at`` of it on, to where the next one's starts (the last: to the
    end): a view of the same data, no copy. A match anchored at the start never reaches past its
    line's closing ``}``."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset: lines.offset + len(lines) + 1]
    starts = offsets.copy()
    starts[:-1] += at
    return pa.LargeStringArray.from_buffers(len(lines), pa.py_buffer(starts), lines.buffers()[2])


def _decimal_micros(values: pa.ChunkedArray) -> np.ndarray:
    """A decimal128(18, 6) column's unscaled integers (micros) as int64: the low 64 bits of each."""
    array = values.combine_chunks()
    words = np.frombuffer(array.buffers()[1], dtype="<i8")[2 * array.offset: 2 * (array.offset + len(array))]
    return words[0::2].copy()  # 18 digits fit in 63 bits: the high word is only the sign


def _instants(stamps: pa.ChunkedArray) -> pd.Series | None:
    """created_at as UTC datetime64, read as the per-record path reads it, or None if one is not ISO 8601."""
    if _in_milliseconds(stamps):
        return pc.cast(stamps, pa.timestamp("us", "UTC"))
    if pc.any(pc.ends_with(stamps, "z")).as_py():  # ISO 8601's lowercase z: Python is given "Z" too
        stamps = pc.replace_substring_regex(stamps, "z$", "Z")
    if pc.all(pc.match_substring_regex(stamps, _STAMP)).as_py():  # the API's own form: Arrow's parser
        return pc.cast(stamps, pa.timestamp("us", "UTC"))  # 2024-02-30: ArrowInvalid, the per-record path says which
    instants = pd.to_datetime(pd.Series(stamps, dtype="str"), format="ISO8601", utc=True, errors="coerce")
    if instants.isna().any() or instants.dtype != "datetime64[us, UTC]":
        return None  # not ISO 8601 to pandas (Python may still read it), or finer than micros
    return pa.array(instants.dt.tz_convert(None).to_numpy(), pa.timestamp("us", "UTC"))  # UTC values


_MILLIS_FORM = np.frombuffer(b"0000-00-00T00:00:00.000Z", dtype=np.uint8)
_MILLIS_DIGITS = _MILLIS_FORM == ord("0")


def _in_milliseconds(stamps: pa.ChunkedArray) -> bool:
    """Whether every stamp is ``YYYY-MM-DDTHH:MM:SS.mmmZ``, the form the API writes (one case of
    :data:`_STAMP`): checked as a table of 24 bytes a row, with no regular expression (a third of
    the time; the calendar is Arrow's cast's to judge, as for the rest of _STAMP)."""
    array = stamps.combine_chunks()
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset: array.offset + len(array) + 1]
    width = len(_MILLIS_FORM)
    if not len(array) or (np.diff(offsets) != width).any():  # a null is 0 bytes long: not the form either
        return False
    rows = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]].reshape(-1, width)
    digits = rows[:, _MILLIS_DIGITS] - ord("0")  # uint8: anything below "0" wraps past 9
    return bool((digits <= 9).all() and (rows[:, ~_MILLIS_DIGITS] == _MILLIS_FORM[~_MILLIS_DIGITS]).all())


def encode_categories(table: pa.Table, names: tuple[str, ...]) -> pa.Table:
    """A block's ``names`` columns dictionary-encoded (a month of records holds a few dozen distinct values)."""
    for name in names:
        table = table.set_column(table.schema.get_field_index(name), name, pc.dictionary_encode(table.column(name)))
    return table


def sorted_categorical(dictionary: pa.Array, indices: np.ndarray) -> pd.Categorical:
    """Dictionary-encoded text as ``astype("category")`` makes it: categories sorted (code point
    order, as Python sorts str, and of dtype str), codes remapped to them."""
    order = pc.sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    categories = pd.Index(dictionary.take(pa.array(order)).to_pylist(), dtype="str")
    return pd.Categorical.from_codes(rank[indices], categories=categories)


def to_frame(tables: list[pa.Table]) -> pd.DataFrame:
    """The records frame of the blocks' tables, with the per-record path's dtypes (a dictionary-
    encoded column, :func:`encode_categories`, as a pandas category).

    Each column is the blocks' arrays as they are (one chunk per block, already pandas' types):
    the list is emptied, so the frame holds the only reference to the blocks' memory.
    """
    table = pa.concat_tables(tables).unify_dictionaries()
    tables.clear()
    columns: dict[str, Any] = {}
    for name in RECORD_COLUMNS:
        column = table.column(name)
        if name == "created_at":
            columns[name] = column.to_pandas()
        elif name == "amount_micros":
            columns[name] = column.to_numpy()
        elif pa.types.is_dictionary(column.type):
            indices = np.concatenate([chunk.indices.to_numpy(zero_copy_only=False) for chunk in column.chunks])
            columns[name] = sorted_categorical(column.chunk(0).dictionary, indices)
        else:
            columns[name] = pd.Series(column, dtype="str")
    return pd.DataFrame(columns, columns=RECORD_COLUMNS)
