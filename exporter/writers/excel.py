"""The workbook an accountant opens: Summary, By Model, By Day, Transactions, Journal.

Every amount is a numeric cell made exactly from micros (``Decimal``, never float arithmetic),
every date a real date cell, and every piece of text from the data a plain string, so a model
named ``=cmd|' /C calc'!A0`` stays text (openpyxl would otherwise store any ``=…`` as a formula).

The small sheets are built with openpyxl. The detail (a busy month has a million records) is
not: openpyxl holds one object per cell, and even its write-only mode manages only ~70k cells/s.
openpyxl writes the workbook with a header-only placeholder for each detail sheet (so it still
owns the styles, the frozen pane, the autofilter and its defined name); the zip is then copied
and each placeholder's ``<sheetData>`` is filled with rows streamed from the frame's columns,
formatted a chunk at a time: inline strings, exact decimal text for amounts, Excel serial
numbers for dates. The detail continues on ``Transactions (2)``… past :data:`MAX_SHEET_ROWS`.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO, Any, Literal
from xml.etree import ElementTree

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.chart import BarChart, Reference, Series
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ..models import Report
from ..money import MICROS_PER_UNIT, micros_to_decimal
from .text import FORMULA_TRIGGERS, excel_text

__all__ = ["MAX_SHEET_ROWS", "ExcelWriter", "clean_text"]

MAX_SHEET_ROWS = 1_048_576
"""Rows per worksheet, header included (Excel's limit); tests lower it to check the split."""

DETAIL_TITLE = "Transactions"
AMOUNT_FORMAT = "#,##0.0000;-#,##0.0000"  # per record / per model: sub-cent amounts matter
TOTAL_FORMAT = "#,##0.00"
COUNT_FORMAT = "#,##0"
SHARE_FORMAT = "0.00%"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss.000"

MAX_CELL_CHARS = 32_767
CHART_MAX_MODELS = 20  # more bars than this are unreadable; the table has them all
_CHUNK_ROWS = 50_000  # detail rows formatted per step: bounds memory, keeps numpy busy
_WIDTH_SAMPLE = 1_000
_MAX_WIDTH = 60
_BOLD = Font(bold=True)
_TITLE_FONT = Font(bold=True, size=14)
_SECTION_FONT = Font(bold=True, size=12)
_XML_INVALID = re.compile("[\ud800-\udfff\ufffe\uffff]")  # control chars: excel_text
_UNIX_EPOCH_SERIAL = 25_569  # 1970-01-01 in Excel's 1900 date system
_US_PER_DAY = 86_400_000_000
_US_PER_SECOND = 1_000_000

Kind = Literal["text", "int", "amount", "total", "share", "date", "datetime", "cents"]
_FORMATS: dict[str, str] = {
    "int": COUNT_FORMAT,
    "amount": AMOUNT_FORMAT,
    "total": TOTAL_FORMAT,
    "share": SHARE_FORMAT,
    "date": DATE_FORMAT,
    "datetime": DATETIME_FORMAT,
    "cents": TOTAL_FORMAT,
}
_FIXED_WIDTHS = {"date": 12, "datetime": 25}


class ExcelWriter:
    """``wavespeed_<label>.xlsx``: the month in one workbook, with real numbers and dates."""

    def write(self, report: Report, folder: Path) -> list[Path]:
        path = Path(folder) / f"wavespeed_{report.window.label}.xlsx"
        workbook = Workbook()
        workbook.properties.creator = f"wavespeed-export {report.tool_version}"
        workbook.properties.title = f"WaveSpeedAI billing {report.window.label}"
        _write_summary(workbook.active, report)
        _write_by_model(workbook.create_sheet("By Model"), report.by_model)
        _write_by_day(workbook.create_sheet("By Day"), report.by_day)
        details = _add_detail_placeholders(workbook, report.transactions)
        rows = _DetailRows(report.transactions, _register_styles(workbook))
        if report.journal:
            _write_journal(workbook.create_sheet("Journal"), report)
        skeleton = io.BytesIO()
        workbook.save(skeleton)
        partial = path.with_name(path.name + ".part")
        try:
            _fill_details(skeleton.getvalue(), partial, details, rows)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return [path]


# --------------------------------------------------------------------------- cells and tables


def clean_text(text: str) -> str:
    """Text as a cell can hold it: no control characters or XML-invalid code points, ≤ 32,767 chars.

    CR LF and a bare CR become LF, which Excel uses inside a cell (XML readers drop CRs anyway).
    """
    text = _XML_INVALID.sub("", excel_text(str(text).replace("\r\n", "\n").replace("\r", "\n")))
    return text[:MAX_CELL_CHARS]


def _put_text(ws: Worksheet, row: int, column: int, text: str, *, bold: bool = False) -> Cell:
    """A plain string cell, whatever it starts with: never a formula."""
    cell = ws.cell(row=row, column=column)
    value = clean_text(text)
    cell.value = value
    cell.data_type = "s"  # openpyxl stores any str starting with "=" as a formula otherwise
    if value.startswith(FORMULA_TRIGGERS):
        cell.quotePrefix = True  # and it stays text if someone edits the cell
    if bold:
        cell.font = _BOLD
    return cell


def _put(ws: Worksheet, row: int, column: int, value: Any, kind: Kind, *, bold: bool = False) -> Cell:
    if kind == "text" or isinstance(value, str):
        return _put_text(ws, row, column, "" if value is None else value, bold=bold)
    cell = ws.cell(row=row, column=column, value=value)
    if value is not None and kind in _FORMATS:
        cell.number_format = _FORMATS[kind]
    if bold:
        cell.font = _BOLD
    return cell


@dataclass(frozen=True)
class _Column:
    header: str
    kind: Kind


def _write_table(
    ws: Worksheet,
    columns: Sequence[_Column],
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
        _put_text(ws, 1, col, column.header, bold=True)
    for r, values in enumerate(rows, 2):
        for col, (value, column) in enumerate(zip(values, columns), 1):
            _put(ws, r, col, value, column.kind)
    last = len(rows) + 1
    kinds = [total_kinds.get(i, c.kind) if total_kinds else c.kind for i, c in enumerate(columns)]
    for r, values in enumerate(totals, last + 1):
        for col, (value, kind) in enumerate(zip(values, kinds), 1):
            _put(ws, r, col, value, kind, bold=True)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{last}"
    _size_columns(ws, columns, [*rows[:_WIDTH_SAMPLE], *totals])


def _size_columns(ws: Worksheet, columns: Sequence[_Column], sample: Iterable[Sequence[Any]]) -> None:
    widths = [len(c.header) for c in columns]
    for values in sample:
        for i, (value, column) in enumerate(zip(values, columns)):
            widths[i] = max(widths[i], _display_width(value, column.kind))
    for i, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = min(width + 2, _MAX_WIDTH)


def _display_width(value: Any, kind: Kind) -> int:
    if value is None:
        return 0
    if kind in _FIXED_WIDTHS:
        return _FIXED_WIDTHS[kind]
    if isinstance(value, str):
        return max((len(line) for line in value.splitlines()), default=0)
    if kind in ("amount", "total", "cents"):
        return len(f"{value:,.4f}") + 1
    if kind == "share":
        return 8
    return len(f"{value:,}") if isinstance(value, int) else len(str(value))


def _cents(amount: int) -> Decimal:
    return Decimal(int(amount)) / 100


def _ratio(numerator: int, denominator: int, places: str) -> Decimal:
    if not denominator:
        return Decimal(0)
    return (Decimal(int(numerator)) / Decimal(int(denominator))).quantize(Decimal(places), ROUND_HALF_UP)


def _naive_utc(instant: datetime) -> datetime:
    """Excel has no time zones: UTC wall time, said in the header."""
    if instant.tzinfo is None:
        return instant
    return instant.astimezone(timezone.utc).replace(tzinfo=None)


def _day(value: Any) -> date:
    return pd.Timestamp(value).date()


# --------------------------------------------------------------------------- Summary


def _write_summary(ws: Worksheet, report: Report) -> None:
    """Key figures, one block under the other; tables with their headers and totals rows."""
    ws.title = "Summary"
    window, stats = report.window, report.stats
    _put_text(ws, 1, 1, "WaveSpeedAI billing export").font = _TITLE_FONT
    period: list[tuple[str, Any, Kind]] = [
        ("Period", window.label, "text"),
        ("First day", window.first_day, "date"),
        ("Last day", window.last_day, "date"),
        ("Time zone", window.tz_name, "text"),
        ("Start (UTC)", _naive_utc(window.start), "datetime"),
        ("End (UTC, exclusive)", _naive_utc(window.end), "datetime"),
    ]
    row = 3
    for label, value, kind in period:
        _put_text(ws, row, 1, label, bold=True)
        _put(ws, row, 2, value, kind)
        row += 1

    row = _section(ws, row + 1, "Totals (completed records)")
    row = _block_header(ws, row, ("Currency", "Type", "Count", "Amount"))
    for currency, group in report.totals.groupby("currency", sort=True):
        for rec in group.itertuples(index=False):
            _put_text(ws, row, 1, rec.currency)
            _put_text(ws, row, 2, rec.type)
            _put(ws, row, 3, int(rec.count), "int")
            _put(ws, row, 4, micros_to_decimal(rec.amount_micros), "total")
            row += 1
        _put_text(ws, row, 1, str(currency), bold=True)
        _put_text(ws, row, 2, "net", bold=True)
        _put(ws, row, 3, int(group["count"].sum()), "int", bold=True)
        _put(ws, row, 4, micros_to_decimal(int(group["amount_micros"].sum())), "total", bold=True)
        row += 1

    row = _section(ws, row + 1, "Records by type and status (all records)")
    row = _block_header(ws, row, ("Type", "Status", "Count"))
    for rec in report.status_counts.itertuples(index=False):
        _put_text(ws, row, 1, rec.type)
        _put_text(ws, row, 2, rec.status)
        _put(ws, row, 3, int(rec.count), "int")
        row += 1
    _put_text(ws, row, 1, "Total", bold=True)
    _put(ws, row, 3, int(report.status_counts["count"].sum()), "int", bold=True)
    row += 1

    row = _section(ws, row + 1, "Extraction")
    for label, value in (
        ("Source", stats.source),
        ("Server total", "not reported" if stats.server_total is None else stats.server_total),
        ("Unique fetched", stats.unique_fetched),
        ("Duplicates dropped", stats.duplicates_dropped),
        ("Pages", stats.pages),
        ("In period", stats.in_period),
    ):
        _put_text(ws, row, 1, label, bold=True)
        _put(ws, row, 2, value, "int")
        row += 1

    if report.reconciliation is not None:
        row = _write_reconciliation(ws, row + 1, report.reconciliation)

    row = _section(ws, row + 1, "Warnings")
    for warning in report.warnings or ["none"]:
        _put_text(ws, row, 1, warning)
        row += 1

    generated = _naive_utc(report.generated_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    _put_text(ws, row + 1, 1, f"Generated by wavespeed-export {report.tool_version} at {generated}")
    ws.column_dimensions["A"].width = 26
    for letter, width in (("B", 22), ("C", 14), ("D", 16), ("E", 16), ("F", 14)):
        ws.column_dimensions[letter].width = width


def _section(ws: Worksheet, row: int, title: str) -> int:
    _put_text(ws, row, 1, title).font = _SECTION_FONT
    return row + 1


def _block_header(ws: Worksheet, row: int, headers: Sequence[str]) -> int:
    for col, header in enumerate(headers, 1):
        _put_text(ws, row, col, header, bold=True)
    return row + 1


def _write_reconciliation(ws: Worksheet, row: int, frame: pd.DataFrame) -> int:
    """Exported vs provider figures per model; a missing figure stays an empty cell."""
    row = _section(ws, row, "Reconciliation")
    row = _block_header(ws, row, ("Model", "Currency", "Exported", "Provider", "Difference", "Status"))
    for rec in frame.itertuples(index=False):
        _put_text(ws, row, 1, str(rec.model))
        _put_text(ws, row, 2, str(rec.currency))
        for col, micros in ((3, rec.exported_micros), (4, rec.provider_micros), (5, rec.difference_micros)):
            _put(ws, row, col, None if pd.isna(micros) else micros_to_decimal(int(micros)), "amount")
        _put_text(ws, row, 6, str(rec.status))
        row += 1
    return row


# --------------------------------------------------------------------------- By Model, By Day

_BY_MODEL_COLUMNS = (
    _Column("model", "text"),
    _Column("currency", "text"),
    _Column("count", "int"),
    _Column("amount", "amount"),
    _Column("share", "share"),
    _Column("average price", "amount"),
)


def _write_by_model(ws: Worksheet, by_model: pd.DataFrame) -> None:
    """Completed usage per model, largest spend first (most negative), a total per currency."""
    frame = by_model.sort_values(["currency", "amount_micros", "model"], kind="stable", ignore_index=True)
    rows = [
        (
            str(r.model), str(r.currency), int(r.count), micros_to_decimal(r.amount_micros),
            Decimal(r.share), Decimal(r.average),
        )
        for r in frame.itertuples(index=False)
    ]
    totals = []
    for currency, group in frame.groupby("currency", sort=True):
        count, amount = int(group["count"].sum()), int(group["amount_micros"].sum())
        average = _ratio(amount, count * MICROS_PER_UNIT, "0.000001")
        share = Decimal(1 if amount else 0)
        totals.append((f"Total {currency}", str(currency), count, micros_to_decimal(amount), share, average))
    _write_table(ws, _BY_MODEL_COLUMNS, rows, totals, total_kinds={3: "total"})
    _chart_by_model(ws, frame)


def _chart_by_model(ws: Worksheet, frame: pd.DataFrame) -> None:
    """One horizontal bar chart per currency: the biggest spenders, at most CHART_MAX_MODELS."""
    anchor_row = 2
    for currency, positions in frame.groupby("currency", sort=True).indices.items():
        first = int(positions[0]) + 2  # sheet row of the currency's first model
        last = first + min(len(positions), CHART_MAX_MODELS) - 1
        chart = BarChart()
        chart.type = "bar"
        chart.title = f"Usage spend per model ({currency})"
        chart.legend = None
        chart.y_axis.title = f"amount ({currency})"
        chart.y_axis.number_format = TOTAL_FORMAT
        chart.x_axis.scaling.orientation = "maxMin"  # biggest spender on top, as in the table
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        chart.add_data(Reference(ws, min_col=4, min_row=first, max_row=last), titles_from_data=False)
        chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last))
        chart.height = max(7.5, 0.6 * (last - first + 1) + 3)
        chart.width = 18
        ws.add_chart(chart, f"H{anchor_row}")
        anchor_row += int(chart.height * 2) + 2


_BY_DAY_COLUMNS = (
    _Column("date", "date"),
    _Column("currency", "text"),
    _Column("top-ups", "amount"),
    _Column("usage", "amount"),
    _Column("net", "amount"),
    _Column("count", "int"),
)


def _write_by_day(ws: Worksheet, by_day: pd.DataFrame) -> None:
    """Completed records per local day, grouped by currency (one block each), a total per currency."""
    frame = by_day.assign(currency=by_day["currency"].astype("str"))
    frame = frame.sort_values(["currency", "date"], kind="stable", ignore_index=True)
    rows = [
        (
            _day(r.date), r.currency, micros_to_decimal(r.topups_micros), micros_to_decimal(r.usage_micros),
            micros_to_decimal(r.net_micros), int(r.count),
        )
        for r in frame.itertuples(index=False)
    ]
    totals = [
        (
            f"Total {currency}", currency, micros_to_decimal(int(group["topups_micros"].sum())),
            micros_to_decimal(int(group["usage_micros"].sum())), micros_to_decimal(int(group["net_micros"].sum())),
            int(group["count"].sum()),
        )
        for currency, group in frame.groupby("currency", sort=True)
    ]
    _write_table(ws, _BY_DAY_COLUMNS, rows, totals, total_kinds={0: "text", 2: "total", 3: "total", 4: "total"})
    _chart_by_day(ws, frame)


def _chart_by_day(ws: Worksheet, frame: pd.DataFrame) -> None:
    """Column chart of top-ups and usage over the days, one per currency block."""
    anchor_row = 2
    for currency, positions in frame.groupby("currency", sort=True).indices.items():
        first, last = int(positions[0]) + 2, int(positions[-1]) + 2
        chart = BarChart()
        chart.type = "col"
        chart.title = f"Top-ups and usage per day ({currency})"
        chart.y_axis.title = f"amount ({currency})"
        chart.y_axis.number_format = TOTAL_FORMAT
        chart.x_axis.number_format = DATE_FORMAT
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        for col in (3, 4):
            values = Reference(ws, min_col=col, min_row=first, max_row=last)
            chart.series.append(Series(values, title=str(ws.cell(1, col).value)))
        chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last))
        chart.width = 24
        ws.add_chart(chart, f"I{anchor_row}")
        anchor_row += 18


# --------------------------------------------------------------------------- Journal

_JOURNAL_COLUMNS = (
    _Column("journal no.", "text"),
    _Column("date", "date"),
    _Column("account", "text"),
    _Column("debit", "cents"),
    _Column("credit", "cents"),
    _Column("class", "text"),
    _Column("memo", "text"),
    _Column("name", "text"),
    _Column("currency", "text"),
)


def _write_journal(ws: Worksheet, report: Report) -> None:
    """The entries the QuickBooks files carry, one row per line; debits equal credits per currency."""
    rows: list[tuple[Any, ...]] = []
    sums: dict[str, list[int]] = {}
    for entry in report.journal:
        for line in entry.lines:
            cents = int(line.amount_cents)
            debit = _cents(cents) if cents > 0 else None
            credit = _cents(-cents) if cents < 0 else None
            memo = line.memo or entry.memo
            rows.append(
                (entry.number, entry.date, line.account, debit, credit, line.klass, memo, line.name, entry.currency)
            )
            total = sums.setdefault(entry.currency, [0, 0])
            total[0 if cents > 0 else 1] += abs(cents)
    totals = [
        (f"Total {currency}", None, "", _cents(debit), _cents(credit), "", "", "", currency)
        for currency, (debit, credit) in sorted(sums.items())
    ]
    _write_table(ws, _JOURNAL_COLUMNS, rows, totals)


# --------------------------------------------------------------------------- Transactions (streamed)

_DETAIL_HEADERS = (
    "id", "created_at (UTC)", "date", "type", "status", "model", "payment_method", "currency", "amount",
)
_DETAIL_SOURCES = (  # the frame column behind each header
    "id", "created_at", "date", "type", "status", "model", "payment_method", "currency", "amount_micros",
)
_DETAIL_LAST_COLUMN = get_column_letter(len(_DETAIL_HEADERS))
_ZIP_LEVEL = 1  # 1M rows: 2.9 s / 77 MiB at level 1, 4.8 s / 64 MiB at level 6 (uuid ids)
_ZIP64_THRESHOLD = 2**31 - 2**24  # zipfile must know up front when a member may pass 2 GiB
_DIMENSION = re.compile(r'<dimension ref="[^"]*"')
# Text that cannot go into the XML as it is: markup, CR, control and invalid code points, or
# a leading formula trigger / surrounding whitespace (quote-prefix style, xml:space).
_NEEDS_CARE = re.compile(
    "[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]|^[=+\\-@\\s]|\\s\\Z"
)
_PLAIN_TEXT = ' t="inlineStr"><is><t>%s</t></is></c>'


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


def _add_detail_placeholders(workbook: Workbook, frame: pd.DataFrame) -> list[_DetailSheet]:
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
            _put_text(ws, 1, col, header, bold=True)
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{_DETAIL_LAST_COLUMN}{stop - start + 1}"
        for col, width in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(col)].width = width
        sheets.append(_DetailSheet(title, start, stop))
    return sheets


def _register_styles(workbook: Workbook) -> _DetailStyles:
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
            width = _FIXED_WIDTHS["datetime" if column == "created_at" else "date"]
        elif column == "amount_micros":
            largest = int(series.abs().max()) if len(series) else 0
            width = _display_width(-micros_to_decimal(largest), "amount")
        else:
            if isinstance(series.dtype, pd.CategoricalDtype):
                values = pd.Series(series.cat.categories, dtype="str")
            else:
                values = pd.concat([series.head(_WIDTH_SAMPLE), series.tail(_WIDTH_SAMPLE)]).astype("str")
            width = int(values.str.len().max()) if len(values) else 0
        widths.append(min(max(width, len(header)) + 2, _MAX_WIDTH))
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


def _fill_details(skeleton: bytes, target: Path, details: list[_DetailSheet], rows: _DetailRows) -> None:
    """Copy openpyxl's package to ``target``, streaming the rows into each detail placeholder."""
    with zipfile.ZipFile(io.BytesIO(skeleton)) as source, zipfile.ZipFile(
        target, "w", zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL
    ) as out:
        members = _sheet_members(source)
        streamed = {members[sheet.title]: sheet for sheet in details}
        for info in source.infolist():
            sheet = streamed.get(info.filename)
            if sheet is None:
                out.writestr(info.filename, source.read(info))
            else:
                _stream_sheet(out, info.filename, source.read(info).decode("utf-8"), sheet, rows)


def _stream_sheet(out: zipfile.ZipFile, name: str, placeholder: str, sheet: _DetailSheet, rows: _DetailRows) -> None:
    head, end_tag, tail = placeholder.partition("</sheetData>")
    if not end_tag or not _DIMENSION.search(head):
        raise RuntimeError(f"unexpected placeholder XML for {sheet.title!r}: no sheetData or dimension")
    last = sheet.stop - sheet.start + 1
    head = _DIMENSION.sub(f'<dimension ref="A1:{_DETAIL_LAST_COLUMN}{last}"', head, count=1)
    big = (sheet.stop - sheet.start) * rows.max_row_bytes > _ZIP64_THRESHOLD
    with out.open(name, "w", force_zip64=big) as handle:
        handle.write(head.encode("utf-8"))
        _write_overlapped(handle, (chunk.encode("utf-8") for chunk in rows.xml(sheet.start, sheet.stop)))
        handle.write((end_tag + tail).encode("utf-8"))


def _write_overlapped(handle: IO[bytes], chunks: Iterator[bytes]) -> None:
    """Compress one chunk while the next is formatted: zlib releases the GIL, so two cores work.

    One write is in flight at a time, so the zip member sees its chunks in order.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[int] | None = None
        for chunk in chunks:
            if pending is not None:
                pending.result()
            pending = pool.submit(handle.write, chunk)
        if pending is not None:
            pending.result()


def _text_fragment(value: Any, quoted_style: int) -> str:
    """What follows ``<c r="A2"`` for a text cell: inline string, escaped; ``/>`` when empty."""
    text = clean_text(value)
    if not text:
        return "/>"
    style = f' s="{quoted_style}"' if text.startswith(FORMULA_TRIGGERS) else ""
    space = ' xml:space="preserve"' if text != text.strip() else ""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'{style} t="inlineStr"><is><t{space}>{escaped}</t></is></c>'


def _coded_fragments(series: pd.Series, quoted_style: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, fragments): each distinct value is escaped once; code -1 (missing) is an empty cell."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
    else:
        codes, uniques = pd.factorize(series)
    fragments = [_text_fragment(value, quoted_style) for value in uniques]
    return codes, np.array([*fragments, "/>"], dtype=object)


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
    return np.where((serials > 0) & (serials <= 60), serials - 1, serials)


class _DetailRows:
    """The transactions frame's columns, prepared once and turned into ``<row>`` XML chunk by chunk.

    A row looks like (wrapped here)::

        <row r="2"><c r="A2" t="inlineStr"><is><t>txn_0000001</t></is></c>
        <c r="B2" s="5"><v>45306.4375</v></c><c r="C2" s="6"><v>45306</v></c> …
        <c r="I2" s="7"><v>-0.0025</v></c></row>
    """

    def __init__(self, frame: pd.DataFrame, styles: _DetailStyles) -> None:
        self.ids = frame["id"].to_numpy(dtype=object)
        self.created = _datetime_serials(frame["created_at"])
        self.dates = _date_serials(frame["date"])
        self.texts = [
            _coded_fragments(frame[column], styles.quoted)
            for column in ("type", "status", "model", "payment_method", "currency")
        ]
        codes, uniques = pd.factorize(frame["amount_micros"])
        self.amount_codes = codes
        self.amounts = np.array([str(micros_to_decimal(int(m))) for m in uniques], dtype=object)
        self.quoted = styles.quoted
        self.template = (
            '<row r="%s"><c r="A%s"%s'
            f'<c r="B%s" s="{styles.datetime}"><v>%s</v></c>'
            f'<c r="C%s" s="{styles.date}"><v>%s</v></c>'
            '<c r="D%s"%s<c r="E%s"%s<c r="F%s"%s<c r="G%s"%s<c r="H%s"%s'
            f'<c r="I%s" s="{styles.amount}"><v>%s</v></c></row>'
        )
        longest_id = int(frame["id"].astype("str").str.len().max()) if len(frame) else 0
        self.max_row_bytes = 400 + 4 * (  # UTF-8 needs at most 4 bytes a character
            max(longest_id, 1) + sum(max(len(f) for f in fragments) for _, fragments in self.texts)
        )

    def xml(self, start: int, stop: int) -> Iterator[str]:
        """``<row>`` elements for frame rows [start, stop), numbered from sheet row 2."""
        care, plain, quoted = _NEEDS_CARE.search, _PLAIN_TEXT, self.quoted
        for lo in range(start, stop, _CHUNK_ROWS):
            hi = min(lo + _CHUNK_ROWS, stop)
            numbers = np.arange(lo - start + 2, hi - start + 2).astype(str).tolist()
            ids = [
                _text_fragment(v, quoted) if care(v) or len(v) > MAX_CELL_CHARS else plain % v
                for v in self.ids[lo:hi].tolist()
            ]
            created = self.created[lo:hi].astype(str).tolist()
            dates = self.dates[lo:hi].astype(str).tolist()
            texts = [fragments.take(codes[lo:hi]).tolist() for codes, fragments in self.texts]
            amounts = self.amounts.take(self.amount_codes[lo:hi]).tolist()
            yield "".join(
                map(
                    self.template.__mod__,
                    zip(
                        numbers, numbers, ids, numbers, created, numbers, dates,
                        numbers, texts[0], numbers, texts[1], numbers, texts[2], numbers, texts[3],
                        numbers, texts[4], numbers, amounts,
                    ),
                )
            )
