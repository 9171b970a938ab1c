"""The consolidated CSV files and workbook: the accounts' tables one after another, an
``account`` column first; the workbook's Accounts sheet sets the accounts side by side.

The CSV rows are each account's own (:mod:`..csv_files` lays them out), so a row of an account
reads exactly as in its pack; the workbook's By Model and By Day sheets are the accounts' (with
:mod:`..excel.sheets`), their totals summing every account.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from ...report import Consolidated
from ...money import micros_to_decimal
from ..csv_files import (
    BY_DAY_HEADER,
    BY_MODEL_HEADER,
    by_day_cells,
    by_model_cells,
    write_rows,
    write_transactions,
)
from ..excel.cells import (
    CHANGE_FORMAT,
    CHANGE_PERCENT_FORMAT,
    COUNT_FORMAT,
    FONT_NAME,
    MONEY_FORMAT,
    PERCENT_FORMAT,
    print_setup,
    put_text,
)
from ..excel.sheets import write_by_day, write_by_model
from ..sanitize import neutralize
from .figures import (
    AccountLine,
    CurrencyTotal,
    change_ratio,
    side_by_side,
    top_models,
    with_account,
)

_TITLE = Font(name=FONT_NAME, bold=True, size=16)
_SECTION = Font(name=FONT_NAME, bold=True, size=12)
_NOTE = Font(name=FONT_NAME, color="595959", italic=True)
_HEADER_FILL = PatternFill("solid", fgColor="F2F2F2")
_DASH = "–"  # a figure that cannot be known from what the books hold
_ACCOUNT_HEADS = ("Account", "AI spend", "Share", "Tasks", "Usage", "Refunded", "Top-ups", "Previous", "Change",
                  "Change %")
_ACCOUNT_FORMATS = (None, MONEY_FORMAT, PERCENT_FORMAT, COUNT_FORMAT, MONEY_FORMAT, MONEY_FORMAT, MONEY_FORMAT,
                    MONEY_FORMAT, CHANGE_FORMAT, CHANGE_PERCENT_FORMAT)
_MODEL_FORMATS = (None, MONEY_FORMAT, PERCENT_FORMAT, COUNT_FORMAT, CHANGE_FORMAT)
_WIDTHS = (30, 14, 9, 10, 14, 12, 14, 14, 13, 10)


def write_csv(consolidated: Consolidated, folder: Path) -> list[Path]:
    transactions = with_account(consolidated, "transactions")
    return [
        write_transactions(transactions, folder / "transactions.csv", transactions["account"]),
        write_rows(folder / "by_model.csv", ["account", *BY_MODEL_HEADER], _prefixed(consolidated, "by_model")),
        write_rows(folder / "by_day.csv", ["account", *BY_DAY_HEADER], _prefixed(consolidated, "by_day")),
    ]


def _prefixed(consolidated: Consolidated, frame_of: str) -> Iterator[list[object]]:
    cells = by_model_cells if frame_of == "by_model" else by_day_cells
    for account in consolidated.accounts:
        for row in cells(getattr(account.report.summaries, frame_of)):
            yield [neutralize(account.name), *row]


def write_workbook(consolidated: Consolidated, folder: Path) -> list[Path]:
    path = folder / f"wavespeed_consolidated_{consolidated.label}.xlsx"
    workbook = Workbook()
    workbook.properties.creator = f"wavespeed-export {consolidated.tool_version}"
    workbook.properties.title = f"WaveSpeedAI billing {consolidated.label}, {len(consolidated.accounts)} accounts"
    write_accounts(workbook.active, consolidated)
    write_by_model(workbook.create_sheet("By Model"), with_account(consolidated, "by_model"))
    write_by_day(workbook.create_sheet("By Day"), with_account(consolidated, "by_day"))
    workbook.save(path)
    return [path]


def write_accounts(ws: Worksheet, consolidated: Consolidated) -> None:
    """The accounts side by side per currency (spend, share, change vs each account's previous
    period) with their total, then each account's top models."""
    ws.title = "Accounts"
    ws.sheet_view.showGridLines = False
    currencies = side_by_side(consolidated)
    labels = [_label(line) for total in currencies for line in total.lines]
    for column, width in enumerate(_WIDTHS, 1):  # the first as wide as the longest account's label
        widest = max([width, *(len(text) + 2 for text in labels)]) if column == 1 else width
        ws.column_dimensions[chr(64 + column)].width = widest
    put_text(ws, 1, 1, "WaveSpeedAI spend by account").font = _TITLE
    names = ", ".join(account.name for account in consolidated.accounts)
    put_text(ws, 2, 1, f"Period {consolidated.label}; accounts: {names}")
    put_text(ws, 3, 1, "Each account's period in its own time zone. Cells hold exact amounts, shown to the cent; "
                       "a total is the exact sum of the accounts.").font = _NOTE
    row = 5
    if not currencies:
        put_text(ws, row, 1, "No completed records in this period.", bold=True)
    for total in currencies:
        row = _currency_table(ws, row, total) + 1
    for total in currencies:
        row = _top_models(ws, row, total) + 1
    print_setup(ws, landscape=True, title_rows=False)


def _currency_table(ws: Worksheet, row: int, total: CurrencyTotal) -> int:
    put_text(ws, row, 1, f"AI spend by account ({total.currency})").font = _SECTION
    row = _heads(ws, row + 1, _ACCOUNT_HEADS)
    for line in total.lines:
        f = line.figures
        _values(ws, row, [_label(line), f.spend_micros, total.share(line), f.tasks, f.usage_micros, f.refunded_micros,
                          f.topups_micros, f.previous_spend_micros, f.change_micros,
                          change_ratio(f.change_micros, f.previous_spend_micros)])
        row += 1
    _values(ws, row, [f"Total ({len(total.lines)} accounts)", total.spend_micros, 1 if total.spend_micros else 0,
                      total.tasks, total.usage_micros, total.refunded_micros, total.topups_micros,
                      total.previous_spend_micros, total.change_micros,
                      change_ratio(total.change_micros, total.previous_spend_micros)], bold=True)
    return row + 1


def _top_models(ws: Worksheet, row: int, total: CurrencyTotal) -> int:
    put_text(ws, row, 1, f"Top models per account ({total.currency})").font = _SECTION
    row = _heads(ws, row + 1, ("Account / model", "Usage", "Share", "Tasks", "Change"))
    for line in total.lines:
        put_text(ws, row, 1, line.account, bold=True)
        row += 1
        for model in top_models(line.figures):
            _values(ws, row, [f"  {model.label}", model.usage_micros, model.share, model.tasks, model.change_micros],
                    formats=_MODEL_FORMATS)
            row += 1
    return row


def _label(line: AccountLine) -> str:
    """The account, its time zone and the period its change compares with."""
    return f"{line.account} ({line.tz_name}{', vs ' + line.previous_label if line.previous_label else ''})"


def _heads(ws: Worksheet, row: int, heads: tuple[str, ...]) -> int:
    for column, head in enumerate(heads, 1):
        cell = put_text(ws, row, column, head, bold=True)
        cell.fill = _HEADER_FILL
        if column > 1:  # over numbers: right-aligned like them
            cell.alignment = Alignment(horizontal="right")
    return row + 1


def _values(ws: Worksheet, row: int, values: list[Any], *, bold: bool = False,
            formats: tuple[str | None, ...] = _ACCOUNT_FORMATS) -> None:
    """A row: text as text, micros as exact amounts (Decimal), ratios as percentages; an unknown
    figure (None) a dash, as on one account's Summary."""
    for column, (value, number_format) in enumerate(zip(values, formats), 1):
        if value is None or isinstance(value, str):
            cell = put_text(ws, row, column, _DASH if value is None else value, bold=bold)
            if value is None:
                cell.alignment = Alignment(horizontal="right")
            continue
        exact = micros_to_decimal(value) if number_format in (MONEY_FORMAT, CHANGE_FORMAT) else value
        cell = ws.cell(row=row, column=column, value=exact)
        cell.number_format = number_format or "General"
        if bold:
            cell.font = Font(name=FONT_NAME, bold=True)


__all__ = ["write_accounts", "write_csv", "write_workbook"]
