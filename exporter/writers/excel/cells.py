"""Cells and tables for the workbook's small sheets: real numbers and dates, text never a formula.

Every amount is a numeric cell made exactly from micros (``Decimal``, never float arithmetic),
every date a real date cell, and every piece of text from the data a plain string, so a model
named ``=cmd|' /C calc'!A0`` stays text (openpyxl would otherwise store any ``=…`` as a formula;
docs/booking.md, "CSV and spreadsheet safety").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import pandas as pd
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.page import PageMargins
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ..sanitize import FORMULA_TRIGGERS, excel_text


AMOUNT_FORMAT = "#,##0.0000;-#,##0.0000"  # per record / per model: sub-cent amounts matter
TOTAL_FORMAT = "#,##0.00"
COUNT_FORMAT = "#,##0"
SHARE_FORMAT = "0.00%"
# The Summary: money to the cent, changes with their sign, a unit cost to 2-4 decimals
MONEY_FORMAT = "#,##0.00"
CHANGE_FORMAT = "+#,##0.00;-#,##0.00;0.00"
PERCENT_FORMAT = "0.0%"
CHANGE_PERCENT_FORMAT = "+0.0%;-0.0%;0.0%"
PRICE_FORMAT = "#,##0.00##"
DAYS_FORMAT = '#,##0 "days"'
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss.000"

MAX_CELL_CHARS = 32_767
WIDTH_SAMPLE = 1_000
MAX_WIDTH = 60
FONT_NAME = "Calibri"  # the workbook's default: a font without a name prints as a serif in LibreOffice
BOLD = Font(name=FONT_NAME, bold=True)
TITLE_FONT = Font(name=FONT_NAME, bold=True, size=14)
SECTION_FONT = Font(name=FONT_NAME, bold=True, size=12)
_XML_INVALID = re.compile("[\ud800-\udfff\ufffe\uffff]")  # control chars: excel_text

Kind = Literal["text", "int", "amount", "total", "share", "date", "datetime", "cents"]
FORMATS: dict[str, str] = {
    "int": COUNT_FORMAT,
    "amount": AMOUNT_FORMAT,
    "total": TOTAL_FORMAT,
    "share": SHARE_FORMAT,
    "date": DATE_FORMAT,
    "datetime": DATETIME_FORMAT,
    "cents": TOTAL_FORMAT,
}
FIXED_WIDTHS = {"date": 12, "datetime": 25}


# --------------------------------------------------------------------------- cells and tables


def clean_text(text: str) -> str:
    """Text as a cell can hold it: no control characters or XML-invalid code points, ≤ 32,767 chars.

    CR LF and a bare CR become LF, which Excel uses inside a cell (XML readers drop CRs anyway).
    """
    text = _XML_INVALID.sub("", excel_text(str(text).replace("\r\n", "\n").replace("\r", "\n")))
    return text[:MAX_CELL_CHARS]


def put_text(ws: Worksheet, row: int, column: int, text: str, *, bold: bool = False) -> Cell:
    """A plain string cell, whatever it starts with: never a formula."""
    cell = ws.cell(row=row, column=column)
    value = clean_text(text)
    cell.value = value
    cell.data_type = "s"  # openpyxl stores any str starting with "=" as a formula otherwise
    if value.startswith(FORMULA_TRIGGERS):
        cell.quotePrefix = True  # and it stays text if someone edits the cell
    if bold:
        cell.font = BOLD
    return cell


def put_paragraph(ws: Worksheet, row: int, text: str, last_column: int, width: float) -> Cell:
    """Text wrapped across columns 1..``last_column`` (``width`` characters in all), the row as tall
    as its lines: a long line would otherwise spill past the print area or shrink the page."""
    cell = put_text(ws, row, 1, text)
    cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=last_column)
    per_line = max(1, int(width))  # a width unit is a digit: most text runs narrower
    lines = sum(max(1, -(-len(part) // per_line)) for part in str(cell.value).split("\n"))
    if lines > 1:
        ws.row_dimensions[row].height = 15 * lines
    return cell


def put(ws: Worksheet, row: int, column: int, value: Any, kind: Kind, *, bold: bool = False) -> Cell:
    if kind == "text" or isinstance(value, str):
        return put_text(ws, row, column, "" if value is None else value, bold=bold)
    cell = ws.cell(row=row, column=column, value=value)
    if value is not None and kind in FORMATS:
        cell.number_format = FORMATS[kind]
    if bold:
        cell.font = BOLD
    return cell


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind


def write_table(
    ws: Worksheet,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    totals: Sequence[Sequence[Any]] = (),
    *,
    total_kinds: dict[int, Kind] | None = None,
) -> None:
    """Header, rows and bold totals rows from A1; frozen header, autofilter over header + rows.

    The totals rows sit below the filtered range, so sorting the table leaves them in place.
    ``total_kinds`` overrides a column's kind in the totals rows (e.g. 2 decimals for a sum).
    """
    for col, column in enumerate(columns, 1):
        put_text(ws, 1, col, column.header, bold=True)
    for r, values in enumerate(rows, 2):
        for col, (value, column) in enumerate(zip(values, columns), 1):
            put(ws, r, col, value, column.kind)
    last = len(rows) + 1
    kinds = [total_kinds.get(i, c.kind) if total_kinds else c.kind for i, c in enumerate(columns)]
    for r, values in enumerate(totals, last + 1):
        for col, (value, kind) in enumerate(zip(values, kinds), 1):
            put(ws, r, col, value, kind, bold=True)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{last}"
    size_columns(ws, columns, [*rows[:WIDTH_SAMPLE], *totals])


def size_columns(ws: Worksheet, columns: Sequence[Column], sample: Iterable[Sequence[Any]]) -> None:
    widths = [len(c.header) for c in columns]
    for values in sample:
        for i, (value, column) in enumerate(zip(values, columns)):
            widths[i] = max(widths[i], display_width(value, column.kind))
    for i, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = min(width + 2, MAX_WIDTH)


def display_width(value: Any, kind: Kind) -> int:
    if value is None:
        return 0
    if kind in FIXED_WIDTHS:
        return FIXED_WIDTHS[kind]
    if isinstance(value, str):
        return max((len(line) for line in value.splitlines()), default=0)
    if kind in ("amount", "total", "cents"):
        return len(f"{value:,.4f}") + 1
    if kind == "share":
        return 8
    return len(f"{value:,}") if isinstance(value, int) else len(str(value))


def print_setup(ws: Worksheet, *, landscape: bool, title_rows: bool = True, one_page: bool = False) -> None:
    """Prints one page wide (``one_page``: and one page tall), header row repeated on every page.

    ``fitToHeight`` 0 means "as many pages as it takes" to Excel and LibreOffice alike.
    """
    setup = ws.page_setup
    setup.orientation = "landscape" if landscape else "portrait"
    setup.fitToWidth = 1
    setup.fitToHeight = 1 if one_page else 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(left=0.5, right=0.5, top=0.6, bottom=0.6, header=0.3, footer=0.3)
    if title_rows:
        ws.print_title_rows = "1:1"
    ws.oddFooter.center.text = "&A, page &P of &N"
    ws.oddFooter.center.size = 8


def cents_decimal(amount: int) -> Decimal:
    return Decimal(int(amount)) / 100


def ratio(numerator: int, denominator: int, places: str) -> Decimal:
    if not denominator:
        return Decimal(0)
    return (Decimal(int(numerator)) / Decimal(int(denominator))).quantize(Decimal(places), ROUND_HALF_UP)


def naive_utc(instant: datetime) -> datetime:
    """Excel has no time zones: UTC wall time, said in the header."""
    if instant.tzinfo is None:
        return instant
    return instant.astimezone(timezone.utc).replace(tzinfo=None)


def as_date(value: Any) -> date:
    return pd.Timestamp(value).date()


