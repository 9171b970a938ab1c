"""The workbook an accountant opens: Summary, By Model, By Day, Transactions, Journal and Details.

:mod:`.summary` lays out the one-page report, :mod:`.details` how it was made, :mod:`.sheets` the
tables (all with openpyxl; :mod:`.cells` keeps text text and money exact); :mod:`.stream` streams
the detail rows as SpreadsheetML.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from openpyxl import Workbook

from ...books.journal import check_entries
from ...report import Report
from ..base import Writer
from .cells import clean_text
from .details import write_details
from .sheets import write_by_day, write_by_model, write_journal
from .summary import write_summary
from .stream import MAX_SHEET_ROWS, DetailRows, add_detail_placeholders, fill_details, register_styles

__all__ = ["MAX_SHEET_ROWS", "ExcelWriter", "clean_text"]


class ExcelWriter(Writer):
    """``wavespeed_<label>.xlsx``: the month in one workbook, with real numbers and dates."""

    journal = True

    def write(self, report: Report, folder: Path) -> list[Path]:
        path = Path(folder) / f"wavespeed_{report.context.window.label}.xlsx"
        workbook = Workbook()
        workbook.properties.creator = f"wavespeed-export {report.context.tool_version}"
        workbook.properties.title = f"WaveSpeedAI billing {report.context.window.label}"
        write_summary(workbook.active, report)
        write_by_model(workbook.create_sheet("By Model"), report.summaries.by_model)
        write_by_day(workbook.create_sheet("By Day"), report.summaries.by_day)
        details = add_detail_placeholders(workbook, report.summaries.transactions)
        rows = DetailRows(report.summaries.transactions, register_styles(workbook))
        if report.journal:
            check_entries(report.journal)
            write_journal(workbook.create_sheet("Journal"), report)
        write_details(workbook.create_sheet("Details"), report)
        skeleton = io.BytesIO()
        workbook.save(skeleton)
        partial = path.with_name(path.name + ".part")
        try:
            fill_details(skeleton.getvalue(), partial, details, rows)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return [path]


