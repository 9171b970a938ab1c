"""The Summary sheet: the month on one printed page, spend positive, money to the cent.

Top to bottom: account and period; per currency the headline (AI spend, change vs the previous
period, top-ups, closing credit, runway), the top models and, when records name API keys, the
top keys (at most ``TOP_KEYS`` rows and "Other", so the page still holds it); what was left out;
then the charts. Every figure comes from :mod:`exporter.writers.figures`. The charts' day and month series
sit right of the print area (columns I onward), labelled, so the printed page holds only the report.
"""

from __future__ import annotations

from decimal import Decimal
from collections.abc import Sequence
from typing import Any

from openpyxl.chart import BarChart, Reference
from openpyxl.chart.label import DataLabelList
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ...report import Report
from ...money import micros_to_decimal, round_to_cents
from ..figures import (
    NO_KEY,
    CurrencyFigures,
    Figures,
    compute,
    late_changes_text,
    left_out_text,
    money,
    period_text,
    signed_money,
)
from .cells import (
    CHANGE_FORMAT, CHANGE_PERCENT_FORMAT, COUNT_FORMAT, DATE_FORMAT, DAYS_FORMAT, FONT_NAME, MONEY_FORMAT,
    PERCENT_FORMAT, PRICE_FORMAT, cents_decimal, naive_utc, print_setup, put_paragraph, put_text,
)

_WIDTHS = {"A": 42, "B": 14, "C": 10, "D": 10, "E": 11, "F": 14, "G": 10}
_LAST_COLUMN = "G"
_DATA_COLUMN = 9  # column I: the chart series, outside the print area
_ROW_CM = 0.53  # a default row (15 pt) in centimetres, to place the charts and end the print area
_FULL_CM, _LEFT_CM = 21.8, 12.6  # columns A-G, and A-C less a gap: chart widths that line up with the table
_NOTE = Font(name=FONT_NAME, color="595959", italic=True)
_TITLE = Font(name=FONT_NAME, bold=True, size=16)
_SECTION = Font(name=FONT_NAME, bold=True, size=12)
_BOLD = Font(name=FONT_NAME, bold=True)
_ITALIC = Font(name=FONT_NAME, italic=True)
_HEADER_FILL = PatternFill("solid", fgColor="F2F2F2")
_THIN = Side(style="thin", color="808080")
_DASH = "–"  # a figure that cannot be known from what the books hold


def write_summary(ws: Worksheet, report: Report) -> None:
    figures = compute(report)
    ws.title = "Summary"
    ws.sheet_view.showGridLines = False
    for letter, width in _WIDTHS.items():
        ws.column_dimensions[letter].width = width

    put_text(ws, 1, 1, "WaveSpeedAI spend report").font = _TITLE
    _label(ws, 2, "Account", figures.account)
    _label(ws, 3, "Period", f"{figures.label} ({period_text(figures)})")
    row = 5
    if not figures.currencies:
        put_text(ws, row, 1, "No completed records in this period.", bold=True)
        row += 2
    model_rows = []
    for currency in figures.currencies:
        row = _headline(ws, row, figures, currency)
        row, rows = _models(ws, row + 1, figures, currency)
        model_rows.append(rows)
        if currency.keys:
            row = _keys(ws, row + 1, currency)
        row += 1
    put_paragraph(ws, row, left_out_text(figures.left_out), 7, sum(_WIDTHS.values()))
    late = late_changes_text(figures.late_changes)
    if late:
        row += 1
        put_paragraph(ws, row, late, 7, sum(_WIDTHS.values()))
    generated = naive_utc(report.context.generated_at).strftime("%Y-%m-%d %H:%M UTC")
    note = f"wavespeed-export {report.context.tool_version}, {generated}. How the figures were obtained: Details sheet."
    put_paragraph(ws, row + 1, note, 7, sum(_WIDTHS.values())).font = _NOTE
    row += 3
    data_column = _DATA_COLUMN
    for currency, rows in zip(figures.currencies, model_rows):
        row, data_column = _charts(ws, row, data_column, currency, figures, rows)
    ws.print_area = f"A1:{_LAST_COLUMN}{max(row - 1, 1)}"
    print_setup(ws, landscape=False, title_rows=False, one_page=True)
    ws.print_options.horizontalCentered = True


def _label(ws: Worksheet, row: int, label: str, value: str) -> None:
    put_text(ws, row, 1, label, bold=True)
    put_text(ws, row, 2, value)


def _number(ws: Worksheet, row: int, column: int, value: Any, number_format: str, *, font: Font | None = None) -> None:
    """A numeric cell, or a right-aligned dash when the value is unknown (never a made-up 0)."""
    if value is None:
        cell = put_text(ws, row, column, _DASH)
        cell.alignment = Alignment(horizontal="right")
    else:
        cell = ws.cell(row=row, column=column, value=value)
        cell.number_format = number_format
    if font is not None:
        cell.font = font


def _section(ws: Worksheet, row: int, title: str) -> int:
    put_text(ws, row, 1, title).font = _SECTION
    for column in range(1, 8):
        ws.cell(row=row, column=column).border = Border(bottom=_THIN)
    return row + 1


def _headline(ws: Worksheet, row: int, figures: Figures, c: CurrencyFigures) -> int:
    """AI spend, change, top-ups, closing credit and runway: one line each, value in column B."""
    row = _section(ws, row, f"This period ({c.currency})")
    _line(ws, row, "AI spend this period", c.spend_micros, MONEY_FORMAT, bold=True,
          note=f"usage {money(c.usage_micros)} less {money(c.refunded_micros)} refunded tasks; "
               f"{c.tasks:,} tasks")
    row += 1
    if c.shows_late_spend:
        _line(ws, row, "AI spend with late changes", c.spend_with_late_micros, MONEY_FORMAT,
              note=f"plus {signed_money(c.late_spend_micros)} of late changes to closed periods")
        row += 1
    if figures.previous_label is None or c.previous_spend_micros is None:
        _line(ws, row, "Change vs previous period", None, CHANGE_FORMAT, note="no earlier period in the books")
    else:
        _line(ws, row, f"Change vs {figures.previous_label}", c.change_micros, CHANGE_FORMAT,
              note=f"{figures.previous_label}: {money(c.previous_spend_micros)}", note_column=4)
        _number(ws, row, 3, c.change_ratio, CHANGE_PERCENT_FORMAT)
    row += 1
    _line(ws, row, "Top-ups", c.topups_micros, MONEY_FORMAT, note=c.topups_note)
    row += 1
    rollforward = c.rollforward
    if rollforward is None or rollforward.closing_micros is None:
        _line(ws, row, "Closing credit balance", None, MONEY_FORMAT, note="roll-forward not available")
    else:
        opening = _DASH if rollforward.opening_micros is None else money(rollforward.opening_micros)
        _line(ws, row, "Closing credit balance", rollforward.closing_micros, MONEY_FORMAT,
              note=f"opening {opening} ({rollforward.opening_source})")
    row += 1
    runway = c.runway_days
    if runway is None:
        why = "needs the closing balance" if c.closing_micros is None else "spend under 0.01 a day: no rate to run down at"
        _line(ws, row, "Runway", None, DAYS_FORMAT, note=why)
    else:
        put_text(ws, row, 1, "Runway")
        _number(ws, row, 2, runway, DAYS_FORMAT)
        put_text(ws, row, 3, f"at {money(c.average_daily_micros)} a day (average over {c.days} days)").font = _NOTE
    return row + 1


def _line(
    ws: Worksheet, row: int, label: str, micros: int | None, number_format: str, *,
    bold: bool = False, note: str = "", note_column: int = 3,
) -> None:
    """A headline line: label, the amount to the cent in column B (a dash when unknown), a note."""
    put_text(ws, row, 1, label, bold=bold)
    _number(ws, row, 2, _to_cents(micros), number_format, font=_BOLD if bold else None)
    if note:
        put_text(ws, row, note_column, note).font = _NOTE


def _header_row(ws: Worksheet, row: int, headers: Sequence[str]) -> int:
    """A table's header row (numbers' headers right-aligned over them); returns the next row."""
    for column, header in enumerate(headers, 1):
        cell = put_text(ws, row, column, header, bold=True)
        cell.fill = _HEADER_FILL
        if column > 1:
            cell.alignment = Alignment(horizontal="right")
    return row + 1


_TABLE_HEADERS = ("Model", "Spend", "Share", "Tasks", "Unit cost", "Change", "Change %")


def _models(ws: Worksheet, row: int, figures: Figures, c: CurrencyFigures) -> tuple[int, tuple[int, int]]:
    """Top models, "Other", refunded tasks and the total, which is the headline AI spend.

    Returns the next free row and the sheet rows of the model lines (what the chart plots).
    """
    title = f"Top models ({c.currency}, {c.model_count:,} model{'s' if c.model_count != 1 else ''})"
    row = _section(ws, row, title)
    headers = list(_TABLE_HEADERS if c.compares else _TABLE_HEADERS[:5])
    if c.compares and figures.previous_label is not None:
        headers[5] = f"vs {figures.previous_label}"
    row = _header_row(ws, row, headers)
    cents = c.table_cents()
    first = row
    for line, line_cents in zip(c.models, cents):
        label = put_text(ws, row, 1, line.label)
        if line.other:
            label.font = _ITALIC
        _number(ws, row, 2, cents_decimal(line_cents), MONEY_FORMAT)
        _number(ws, row, 3, line.share, PERCENT_FORMAT)
        _number(ws, row, 4, line.tasks, COUNT_FORMAT)
        _number(ws, row, 5, line.unit_cost, PRICE_FORMAT)
        if c.compares:
            _number(ws, row, 6, _to_cents(line.change_micros), CHANGE_FORMAT)
            _number(ws, row, 7, line.change_ratio, CHANGE_PERCENT_FORMAT)
        row += 1
    chart_rows = (first, row - 1)
    if c.refunded_micros:
        put_text(ws, row, 1, "Refunded tasks").font = _NOTE
        _number(ws, row, 2, cents_decimal(cents[-1]), MONEY_FORMAT)
        if c.compares:
            _number(ws, row, 6, _to_cents(c.refunded_change_micros), CHANGE_FORMAT)
        row += 1
    put_text(ws, row, 1, "AI spend", bold=True)
    _number(ws, row, 2, cents_decimal(sum(cents)), MONEY_FORMAT, font=_BOLD)
    _number(ws, row, 4, c.tasks, COUNT_FORMAT, font=_BOLD)
    if c.compares:
        _number(ws, row, 6, _to_cents(c.change_micros), CHANGE_FORMAT, font=_BOLD)
        _number(ws, row, 7, c.change_ratio, CHANGE_PERCENT_FORMAT, font=_BOLD)
    for column in range(1, 8):
        ws.cell(row=row, column=column).border = Border(top=_THIN)
    return row + 1, chart_rows


_KEY_HEADERS = ("API key", "AI spend", "Share", "Tasks", "Refunded")


def _keys(ws: Worksheet, row: int, c: CurrencyFigures) -> int:
    """Spend per API key (after refunded tasks), "Other", and the total, which is the headline AI spend."""
    title = f"By API key ({c.currency}, {c.key_count:,} key{'s' if c.key_count != 1 else ''})"
    row = _section(ws, row, title)
    row = _header_row(ws, row, _KEY_HEADERS)
    cents = c.key_cents()
    for line, line_cents in zip(c.keys, cents):
        label = put_text(ws, row, 1, line.label)
        if line.other or line.label == NO_KEY:
            label.font = _ITALIC
        _number(ws, row, 2, cents_decimal(line_cents), MONEY_FORMAT)
        _number(ws, row, 3, line.share, PERCENT_FORMAT)
        _number(ws, row, 4, line.tasks, COUNT_FORMAT)
        _number(ws, row, 5, _to_cents(line.refunded_micros), MONEY_FORMAT)
        row += 1
    put_text(ws, row, 1, "AI spend", bold=True)
    _number(ws, row, 2, cents_decimal(sum(cents)), MONEY_FORMAT, font=_BOLD)
    _number(ws, row, 4, c.tasks, COUNT_FORMAT, font=_BOLD)
    for column in range(1, 8):
        ws.cell(row=row, column=column).border = Border(top=_THIN)
    return row + 1


def _to_cents(micros: int | None) -> Decimal | None:
    """Micros -> the Decimal value of its cents (ROUND_HALF_UP, money.round_to_cents)."""
    return None if micros is None else cents_decimal(round_to_cents(micros))


# --------------------------------------------------------------------------- charts


def _charts(
    ws: Worksheet, row: int, data_column: int, c: CurrencyFigures, figures: Figures, model_rows: tuple[int, int]
) -> tuple[int, int]:
    """Spend by model (full width), then daily usage and, with the books' history, spend by month.

    Returns the row under the charts and the next free column for chart series.
    """
    first, last = model_rows
    by_model = _bar_chart("bar", f"Spend by model ({c.currency})", _FULL_CM, max(6.0, 0.55 * (last - first + 1) + 2))
    by_model.x_axis.scaling.orientation = "maxMin"  # biggest on top, as in the table
    by_model.add_data(Reference(ws, min_col=2, min_row=first, max_row=last), titles_from_data=False)
    by_model.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last))
    by_model.dataLabels = DataLabelList(showVal=True, showSerName=False, showCatName=False, showLegendKey=False)
    by_model.y_axis.crosses = "max"  # the amount axis under the bars, not above them
    ws.add_chart(by_model, f"A{row}")
    row += _rows(by_model.height) + 1

    daily_first, daily_last = _series(ws, data_column, f"Daily usage ({c.currency})", c.daily, DATE_FORMAT)
    width = _LEFT_CM if c.monthly else _FULL_CM
    daily = _bar_chart("col", f"Daily usage ({c.currency})", width, 6.5)
    daily.add_data(Reference(ws, min_col=data_column + 1, min_row=daily_first, max_row=daily_last),
                   titles_from_data=False)
    daily.set_categories(Reference(ws, min_col=data_column, min_row=daily_first, max_row=daily_last))
    daily.x_axis.number_format = "d"
    daily.x_axis.title = f"{figures.first_day.isoformat()} to {figures.last_day.isoformat()}"
    ws.add_chart(daily, f"A{row}")
    if c.monthly:
        labels = tuple((label, micros) for label, micros in c.monthly)
        month_first, month_last = _series(ws, data_column + 3, f"AI spend by period ({c.currency})", labels, "@")
        monthly = _bar_chart("col", f"AI spend by period ({c.currency})", _FULL_CM - _LEFT_CM - 0.4, 6.5)
        monthly.add_data(Reference(ws, min_col=data_column + 4, min_row=month_first, max_row=month_last),
                         titles_from_data=False)
        monthly.set_categories(Reference(ws, min_col=data_column + 3, min_row=month_first, max_row=month_last))
        ws.add_chart(monthly, f"D{row}")
    return row + _rows(6.5) + 1, data_column + 6


def _bar_chart(kind: str, title: str, width: float, height: float) -> BarChart:
    chart = BarChart()
    chart.type = kind
    chart.title = title
    chart.legend = None
    chart.gapWidth = 40
    chart.y_axis.number_format = MONEY_FORMAT
    chart.y_axis.scaling.min = 0  # spend is positive: bars grow from zero
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.width, chart.height = width, height
    return chart


def _series(ws: Worksheet, column: int, title: str, points: Any, key_format: str) -> tuple[int, int]:
    """A labelled two-column series (key, amount) from row 1 of ``column``; its first and last rows."""
    put_text(ws, 1, column, title, bold=True)
    ws.column_dimensions[get_column_letter(column)].width = 12
    ws.column_dimensions[get_column_letter(column + 1)].width = 12
    for offset, (key, micros) in enumerate(points, 2):
        cell = put_text(ws, offset, column, key) if isinstance(key, str) else ws.cell(row=offset, column=column, value=key)
        if not isinstance(key, str):
            cell.number_format = key_format
        ws.cell(row=offset, column=column + 1, value=micros_to_decimal(micros)).number_format = MONEY_FORMAT
    return 2, max(2, len(points) + 1)


def _rows(height_cm: float) -> int:
    return int(height_cm / _ROW_CM) + 1
