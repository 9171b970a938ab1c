"""Cells as Arrow string columns: a million rows of CSV or SpreadsheetML without a Python object per row.

A writer turns each column of the transactions frame into one Arrow string array of its cells
(text judged in Python once per distinct value, or only for the rare values a vectorised test
flags), :func:`join_cells` joins the cells and the literal markup between them element-wise in C, and
:func:`joined_bytes` hands the rows' concatenated UTF-8 to the file without copying it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TEXT = pa.large_string()


def strings(values: pd.Series | np.ndarray | list[str] | pa.Array | pa.ChunkedArray) -> pa.LargeStringArray:
    """A column of text as one contiguous Arrow large_string array (no copy for an Arrow-backed str column)."""
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(array, pa.DictionaryArray):
        array = array.dictionary_decode()
    result: pa.LargeStringArray = array if array.type == TEXT else pc.cast(array, TEXT)
    return result


def chunked_strings(values: pd.Series) -> pa.ChunkedArray:
    """A column of text as Arrow large_string chunks, as the frame holds them: no copy of a million
    ids; a writer takes a slice at a time (``strings(column.slice(start, length))``)."""
    array = pa.array(values, from_pandas=True)
    chunked = array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])
    return chunked if chunked.type == TEXT else chunked.cast(TEXT)


def categories(column: pd.Series, render: Callable[[str], str], missing: str) -> tuple[np.ndarray, pa.LargeStringArray]:
    """(codes, cells): each distinct value rendered once; ``cells.take(codes)`` is the column's cells
    (a missing value: ``missing``)."""
    categorical = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    cells = strings([render(str(value)) for value in categorical.cat.categories] + [missing])
    codes = categorical.cat.codes.to_numpy()
    return np.where(codes < 0, len(cells) - 1, codes), cells


def patched(cells: pa.LargeStringArray, values: pa.LargeStringArray, flagged: pa.BooleanArray,
            render: Callable[[str], str]) -> pa.LargeStringArray:
    """``cells`` with each flagged row's cell replaced by ``render`` of its value (Python, for the few)."""
    if not pc.any(flagged).as_py():
        return cells
    fixes = strings([render(value) for value in pc.filter(values, flagged).to_pylist()])
    result: pa.LargeStringArray = pc.replace_with_mask(cells, flagged, fixes)
    return result


def join_cells(parts: Sequence[pa.Array | str]) -> pa.LargeStringArray:
    """Element-wise concatenation of the parts: arrays (one cell per row) and literal text."""
    pieces = [pa.scalar(part, TEXT) if isinstance(part, str) else part for part in parts]
    result: pa.LargeStringArray = pc.binary_join_element_wise(*pieces, pa.scalar("", TEXT))
    return result


def joined_bytes(array: pa.LargeStringArray) -> memoryview:
    """The UTF-8 of every element, one after another: a view of the array's data buffer."""
    if array.null_count:
        raise ValueError("a cell is missing: every row must have every cell")
    if not len(array):
        return memoryview(b"")
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)
    start, stop = int(offsets[array.offset]), int(offsets[array.offset + len(array)])
    return memoryview(array.buffers()[2])[start:stop]


def number_text(values: np.ndarray) -> pa.LargeStringArray:
    """Integers as decimal text."""
    return strings(pc.cast(pa.array(values), TEXT))


def float_text(values: np.ndarray) -> pa.LargeStringArray:
    """Floats as numpy's ``astype(str)`` writes them (the shortest text that reads back the same).

    Arrow's cast writes the same digits, but no ``.0`` on a whole number and its own exponent
    form: those values (whole, or outside 1e-4..1e15 where either may use an exponent) are
    written by numpy.
    """
    cells = strings(pc.cast(pa.array(values), TEXT))
    magnitude = np.abs(values)
    odd = (values == np.trunc(values)) | ~((magnitude >= 1e-4) & (magnitude < 1e15))
    if odd.any():
        cells = pc.replace_with_mask(cells, pa.array(odd), strings(values[odd].astype(str).tolist()))
    return cells


def day_text(days: np.ndarray) -> pa.LargeStringArray:
    """Days since 1970-01-01 as ``YYYY-MM-DD`` (numpy's ``datetime_as_string``, once per distinct day)."""
    return _fixed_width(_day_table(days)[days - days.min()] if len(days) else np.empty(0, "S10"))


def _clock_table() -> np.ndarray:
    """``THH:MM:SS`` (bytes) of every second of a day, in order: built from columns (an f-string
    each cost 50 ms at every start)."""
    two = np.array([f"{n:02d}" for n in range(60)], dtype="S2")
    hours, of_hour = np.divmod(np.arange(86_400), 3_600)
    parts = np.empty(86_400, dtype=[("t", "S1"), ("h", "S2"), ("c1", "S1"), ("m", "S2"), ("c2", "S1"), ("s", "S2")])
    parts["t"], parts["c1"], parts["c2"] = b"T", b":", b":"
    parts["h"], parts["m"], parts["s"] = two[hours], two[of_hour // 60], two[of_hour % 60]
    return parts.view("S9")


_CLOCK = _clock_table()
_MILLIS = np.array([f".{ms:03d}Z" for ms in range(1000)], dtype="S5")
_INSTANT = np.dtype([("day", "S10"), ("clock", "S9"), ("millis", "S5")])


def instant_text(millis: np.ndarray) -> pa.LargeStringArray:
    """Milliseconds since 1970-01-01 as ``YYYY-MM-DDTHH:MM:SS.mmmZ``, as numpy's ``datetime_as_string``
    (unit ms) with a Z writes them, from tables: of the days spanned, the seconds of a day, the milliseconds."""
    out = np.empty(len(millis), dtype=_INSTANT)
    if len(millis):
        days, of_day = np.divmod(millis, 86_400_000)
        seconds, ms = np.divmod(of_day, 1_000)
        out["day"] = _day_table(days)[days - days.min()]
        out["clock"] = _CLOCK[seconds]
        out["millis"] = _MILLIS[ms]
    return _fixed_width(out)


def _day_table(days: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD`` (bytes) of every day from the first to the last of ``days``; years 0001-9999 only."""
    span = np.arange(int(days.min()), int(days.max()) + 1).astype("datetime64[D]")
    table = np.datetime_as_string(span, unit="D")
    if span[0] < np.datetime64("0001-01-01") or (np.char.str_len(table) != 10).any():
        raise ValueError("a date outside the years 0001-9999")
    return table.astype("S10")


def _fixed_width(cells: np.ndarray) -> pa.LargeStringArray:
    """Fixed-width ASCII records (one numpy element each) as an Arrow string array over the same bytes."""
    width = cells.dtype.itemsize
    offsets = np.arange(0, (len(cells) + 1) * width, width, dtype=np.int64)
    data = pa.py_buffer(np.ascontiguousarray(cells).view(np.uint8))
    return pa.LargeStringArray.from_buffers(len(cells), pa.py_buffer(offsets), data)
