"""The detail sheets, streamed: a busy month has a million records.

openpyxl holds one object per cell, and even its write-only mode manages only ~70k cells/s. So
openpyxl writes the workbook with a header-only placeholder for each detail sheet (it still owns
the styles, the frozen pane, the autofilter and its defined name); the zip is then copied and each
placeholder's ``<sheetData>`` is filled with rows streamed from the frame's columns, formatted a
chunk at a time: inline strings, exact decimal text for amounts, Excel serial numbers for dates.
The detail continues on ``Transactions (2)``… past :data:`MAX_SHEET_ROWS`.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from ...extract.columnar import PY_SPACE
from ...money import micros_to_decimal
from ..sanitize import FORMULA_TRIGGERS
from ..text_columns import categories, chunked_strings, float_text, join_cells, joined_bytes, number_text, patched, strings
from .deflate import use_parallel_deflate
from .cells import (
    AMOUNT_FORMAT, DATE_FORMAT, DATETIME_FORMAT, FIXED_WIDTHS, MAX_CELL_CHARS, MAX_WIDTH, WIDTH_SAMPLE,
    clean_text, display_width, print_setup, put_text,
)

MAX_SHEET_ROWS = 1_048_576
"""Rows per worksheet, header included (Excel's limit); tests lower it to check the split."""
DETAIL_TITLE = "Transactions"
_CHUNK_ROWS = 8_192  # detail rows formatted per step (~3.7 MB of XML): bounds memory, keeps the kernels busy
_FORMATTERS = 2  # chunks formatted at once
_UNIX_EPOCH_SERIAL = 25_569  # 1970-01-01 in Excel's 1900 date system
_US_PER_DAY = 86_400_000_000
_US_PER_SECOND = 1_000_000

# --------------------------------------------------------------------------- Transactions (streamed)

_DETAIL_HEADERS = (
    "id", "created_at (UTC)", "date", "type", "status", "model", "payment_method", "currency", "amount",
)
_DETAIL_SOURCES = (  # the frame column behind each header
    "id", "created_at", "date", "type", "status", "model", "payment_method", "currency", "amount_micros",
)
_DETAIL_LAST_COLUMN = get_column_letter(len(_DETAIL_HEADERS))
_ZIP64_THRESHOLD = 2**31 - 2**24  # zipfile must know up front when a member may pass 2 GiB
_DIMENSION = re.compile(r'<dimension ref="[^"]*"')
# Text that cannot go into the XML as it is (RE2, on Arrow's UTF-8: no surrogates there): markup,
# CR, control and invalid code points, or a leading formula trigger / surrounding whitespace
# (quote-prefix style, xml:space; Python's whitespace, as str.strip and re's \s know it).
_NEEDS_CARE = (r"[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{fffe}\x{ffff}]|^[=+\-@" + PY_SPACE + "]|["
               + PY_SPACE + r"]\z")
_PLAIN_START, _PLAIN_END = ' t="inlineStr"><is><t>', "</t></is></c>"


@dataclass(frozen=True)
class _DetailSheet:
    """One detail sheet: its title and the slice [start, stop) of the frame's rows it holds."""

    title: str
    start: int
    stop: int


@dataclass(frozen=True)
class _DetailStyles:
    """Indices into the workbook's cellXfs, registered through openpyxl so the stylesheet has them."""

    datetime: int
    date: int
    amount: int
    quoted: int  # text that starts like a formula: Excel's quote prefix


def _detail_titles(count: int) -> Iterator[str]:
    yield DETAIL_TITLE
    for n in range(2, count + 1):
        yield f"{DETAIL_TITLE} ({n})"


def add_detail_placeholders(workbook: Workbook, frame: pd.DataFrame) -> list[_DetailSheet]:
    """Header-only sheets with the final autofilter, frozen pane and widths; rows come later."""
    per_sheet = MAX_SHEET_ROWS - 1
    if per_sheet < 1:
        raise ValueError(f"MAX_SHEET_ROWS must leave room for a data row, got {MAX_SHEET_ROWS}")
    total = len(frame)
    count = max(1, -(-total // per_sheet))
    widths = _detail_widths(frame)
    sheets = []
    for n, title in enumerate(_detail_titles(count)):
        start, stop = n * per_sheet, min((n + 1) * per_sheet, total)
        ws = workbook.create_sheet(title)
        for col, header in enumerate(_DETAIL_HEADERS, 1):
            put_text(ws, 1, col, header, bold=True)
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{_DETAIL_LAST_COLUMN}{stop - start + 1}"
        for col, width in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(col)].width = width
        print_setup(ws, landscape=True)  # kept by the streaming: it sits after <sheetData>
        sheets.append(_DetailSheet(title, start, stop))
    return sheets


def register_styles(workbook: Workbook) -> _DetailStyles:
    """Style indices for the streamed cells: set on a scratch sheet's cells, which is then dropped."""
    scratch = workbook.create_sheet("scratch")
    ids = []
    for col, fmt in enumerate((DATETIME_FORMAT, DATE_FORMAT, AMOUNT_FORMAT), 1):
        cell = scratch.cell(row=1, column=col, value=0)
        cell.number_format = fmt
        ids.append(cell.style_id)
    quoted = scratch.cell(row=1, column=4, value="x")
    quoted.quotePrefix = True
    ids.append(quoted.style_id)
    workbook.remove(scratch)
    return _DetailStyles(*ids)


def _detail_widths(frame: pd.DataFrame) -> list[float]:
    """Column widths from category lengths, a sample of ids and the largest amount; no cell scan."""
    widths: list[float] = []
    for header, column in zip(_DETAIL_HEADERS, _DETAIL_SOURCES):
        series = frame[column]
        if column in ("created_at", "date"):
            width = FIXED_WIDTHS["datetime" if column == "created_at" else "date"]
        elif column == "amount_micros":
            largest = int(series.abs().max()) if len(series) else 0
            width = display_width(-micros_to_decimal(largest), "amount")
        else:
            if isinstance(series.dtype, pd.CategoricalDtype):
                values = pd.Series(series.cat.categories, dtype="str")
            else:
                values = pd.concat([series.head(WIDTH_SAMPLE), series.tail(WIDTH_SAMPLE)]).astype("str")
            width = int(values.str.len().max()) if len(values) else 0
        widths.append(min(max(width, len(header)) + 2, MAX_WIDTH))
    return widths


def _sheet_members(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet title -> zip member name, from workbook.xml and its relationships."""
    ns = {
        "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        "p": "http://schemas.openxmlformats.org/package/2006/relationships",
    }
    targets = {
        rel.get("Id"): rel.get("Target", "")
        for rel in ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels")).findall("p:Relationship", ns)
    }
    members = {}
    for sheet in ElementTree.fromstring(archive.read("xl/workbook.xml")).iterfind("m:sheets/m:sheet", ns):
        target = targets[sheet.get(f"{{{ns['r']}}}id")]
        members[sheet.get("name", "")] = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return members


def fill_details(skeleton: bytes, target: Path, details: list[_DetailSheet], rows: DetailRows) -> None:
    """Copy openpyxl's package to ``target``, streaming the rows into each detail placeholder."""
    with zipfile.ZipFile(io.BytesIO(skeleton)) as source, zipfile.ZipFile(
        target, "w", zipfile.ZIP_DEFLATED, compresslevel=1  # the small members: zipfile's zlib, its fastest
    ) as out:
        members = _sheet_members(source)
        streamed = {members[sheet.title]: sheet for sheet in details}
        for info in source.infolist():
            sheet = streamed.get(info.filename)
            if sheet is None:
                out.writestr(info.filename, source.read(info))
            else:
                _stream_sheet(out, info.filename, source.read(info).decode("utf-8"), sheet, rows)


def _stream_sheet(out: zipfile.ZipFile, name: str, placeholder: str, sheet: _DetailSheet, rows: DetailRows) -> None:
    head, end_tag, tail = placeholder.partition("</sheetData>")
    if not end_tag or not _DIMENSION.search(head):
        raise RuntimeError(f"unexpected placeholder XML for {sheet.title!r}: no sheetData or dimension")
    last = sheet.stop - sheet.start + 1
    head = _DIMENSION.sub(f'<dimension ref="A1:{_DETAIL_LAST_COLUMN}{last}"', head, count=1)
    big = (sheet.stop - sheet.start) * rows.max_row_bytes > _ZIP64_THRESHOLD
    with out.open(name, "w", force_zip64=big) as handle:
        use_parallel_deflate(handle)  # formatting goes on while both cores compress
        handle.write(head.encode("utf-8"))
        for chunk in rows.xml(sheet.start, sheet.stop):
            handle.write(chunk)
        handle.write((end_tag + tail).encode("utf-8"))


def _text_fragment(value: Any, quoted_style: int) -> str:
    """What follows ``<c r="A2"`` for a text cell: inline string, escaped; ``/>`` when empty."""
    text = clean_text(value)
    if not text:
        return "/>"
    style = f' s="{quoted_style}"' if text.startswith(FORMULA_TRIGGERS) else ""
    space = ' xml:space="preserve"' if text != text.strip() else ""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'{style} t="inlineStr"><is><t{space}>{escaped}</t></is></c>'


def _datetime_serials(series: pd.Series) -> np.ndarray:
    """Excel serial days of each instant's UTC wall time, computed as openpyxl's ``to_excel`` does."""
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    micros = series.to_numpy(dtype="datetime64[us]").astype(np.int64)
    days, of_day = np.divmod(micros, _US_PER_DAY)
    seconds, fraction = np.divmod(of_day, _US_PER_SECOND)
    return _leap_bug(days + _UNIX_EPOCH_SERIAL) + (seconds + fraction / 1e6) / 86_400


def _date_serials(series: pd.Series) -> np.ndarray:
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_localize(None)
    days = series.to_numpy(dtype="datetime64[D]").astype(np.int64)
    return _leap_bug(days + _UNIX_EPOCH_SERIAL)


def _leap_bug(serials: np.ndarray) -> np.ndarray:
    """Excel counts 1900-02-29; days before 1900-03-01 are one lower (as openpyxl writes them)."""
    if not len(serials) or serials.min() > 60:  # every day after 1900-02-28: a month of records, always
        return serials
    return np.where((serials > 0) & (serials <= 60), serials - 1, serials)


class DetailRows:
    """The transactions frame's columns, prepared once as Arrow cell arrays and joined into ``<row>``
    XML chunk by chunk (:mod:`..text_columns`): no Python object per row.

    A row looks like (wrapped here)::

        <row r="2"><c r="A2" t="inlineStr"><is><t>txn_0000001</t></is></c>
        <c r="B2" s="5"><v>45306.4375</v></c><c r="C2" s="6"><v>45306</v></c> …
        <c r="I2" s="7"><v>-0.0025</v></c></row>
    """

    def __init__(self, frame: pd.DataFrame, styles: _DetailStyles) -> None:
        self.quoted = styles.quoted
        self.ids = chunked_strings(frame["id"])
        self.created = _datetime_serials(frame["created_at"])
        self.dates = _date_serials(frame["date"])
        self.texts = [  # (codes, each distinct value's cell once: a few dozen strings)
            categories(frame[column], self._text, "/>")
            for column in ("type", "status", "model", "payment_method", "currency")
        ]
        codes, uniques = pd.factorize(frame["amount_micros"])
        self.amounts = (codes, strings([str(micros_to_decimal(int(m))) for m in uniques]))
        self.styles = styles
        longest_id = pc.max(pc.utf8_length(self.ids)).as_py() or 0
        self.max_row_bytes = 400 + 4 * (  # UTF-8 needs at most 4 bytes a character
            max(longest_id, 1) + sum(pc.max(pc.utf8_length(cells)).as_py() or 0 for _, cells in self.texts)
        )

    def _text(self, value: str) -> str:
        return _text_fragment(value, self.quoted)

    def xml(self, start: int, stop: int) -> Iterator[memoryview]:
        """UTF-8 ``<row>`` elements for frame rows [start, stop), numbered from sheet row 2, a chunk
        at a time; the next chunk is formatted on a second thread meanwhile (Arrow's kernels release the GIL)."""
        with ThreadPoolExecutor(max_workers=_FORMATTERS) as pool:
            pending: deque[Future[memoryview]] = deque()
            for lo in range(start, stop, _CHUNK_ROWS):
                pending.append(pool.submit(self._chunk, start, lo, min(lo + _CHUNK_ROWS, stop)))
                if len(pending) >= _FORMATTERS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _chunk(self, start: int, lo: int, hi: int) -> memoryview:
        styles = self.styles
        n = number_text(np.arange(lo - start + 2, hi - start + 2))
        ids = strings(self.ids.slice(lo, hi - lo))
        care = pc.or_(pc.match_substring_regex(ids, _NEEDS_CARE), pc.greater(pc.utf8_length(ids), MAX_CELL_CHARS))
        ids = patched(join_cells([_PLAIN_START, ids, _PLAIN_END]), ids, care, self._text)
        type_, status, model, method, currency = (cells.take(codes[lo:hi]) for codes, cells in self.texts)
        created, dates = float_text(self.created[lo:hi]), number_text(self.dates[lo:hi])
        amounts = self.amounts[1].take(self.amounts[0][lo:hi])
        return joined_bytes(join_cells([
            '<row r="', n, '"><c r="A', n, '"', ids,
            '<c r="B', n, f'" s="{styles.datetime}"><v>', created, '</v></c>',
            '<c r="C', n, f'" s="{styles.date}"><v>', dates, '</v></c>',
            '<c r="D', n, '"', type_, '<c r="E', n, '"', status, '<c r="F', n, '"', model,
            '<c r="G', n, '"', method, '<c r="H', n, '"', currency,
            '<c r="I', n, f'" s="{styles.amount}"><v>', amounts, '</v></c></row>',
        ]))
