"""The Summary sheet read back: the one-page report, spend positive, money to the cent, charts that
plot what they say; with and without what the books add."""

from __future__ import annotations

import re
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from exporter.writers.excel import ExcelWriter
from exporter.writers.excel.cells import CHANGE_FORMAT, MONEY_FORMAT

from factories import make_report, record, topup_record, usage_record, with_books

FORMULA = "=cmd|' /C calc'!A0"
HEADLINE = ["AI spend this period", "Change vs previous period", "Top-ups", "Closing credit balance", "Runway"]


def summary(report: Any, folder: Path) -> Worksheet:
    (path,) = ExcelWriter().write(report, folder)
    return load_workbook(path)["Summary"]


def column_a(ws: Worksheet) -> list[Any]:
    return [ws.cell(r, 1).value for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value is not None]


def row_of(ws: Worksheet, text: str) -> int:
    for r in range(1, ws.max_row + 1):
        if ws.cell(r, 1).value == text:
            return r
    raise AssertionError(f"{text!r} not on the Summary")


def exact(value: Any) -> Decimal:
    assert isinstance(value, (int, float)) and not isinstance(value, bool), value
    return Decimal(str(value))


@pytest.fixture(scope="module")
def report():
    return make_report([
        topup_record("1000.00", created_at="2024-01-02T08:00:00Z"),
        topup_record("234.50", created_at="2024-01-15T08:00:00Z"),
        *(usage_record(f"vendor/model-{i:02d}", f"-{i}.0025", created_at=f"2024-01-{i:02d}T10:00:00Z")
          for i in range(1, 15)),
        usage_record(FORMULA, "-0.0001", created_at="2024-01-20T10:00:00Z"),
        record("refund", "0.50", model="vendor/model-14", created_at="2024-01-21T00:00:00Z"),
        usage_record("vendor/model-01", "-2.00", status="pending", created_at="2024-01-30T00:00:00Z"),
        usage_record("vendor/model-01", "-3.00", status="failed", created_at="2024-01-30T00:00:00Z"),
    ])


def test_first_screen_top_to_bottom(report, tmp_path):
    ws = summary(report, tmp_path)
    labels = column_a(ws)
    assert labels[:3] == ["WaveSpeedAI spend report", "Account", "Period"]
    assert ws["B2"].value == "default"
    assert ws["B3"].value == "2024-01 (2024-01-01 to 2024-01-31, time zone UTC)"
    order = [labels.index(x) for x in ["This period (USD)", *HEADLINE, "Top models (USD, 15 models)", "AI spend"]]
    assert order == sorted(order)
    left_out = next(x for x in labels if str(x).startswith("Left out"))
    assert labels.index(left_out) > labels.index("AI spend")
    assert "1 failed usage record (3.00 USD)" in left_out and "1 pending usage record (2.00 USD)" in left_out
    assert not {"Source", "Pages", "Warnings", "Reconciliation"} & set(labels)


def test_headline_is_positive_and_to_the_cent(report, tmp_path):
    ws = summary(report, tmp_path)
    spend = ws.cell(row_of(ws, "AI spend this period"), 2)
    # usage 1+...+14 plus 14 x 0.0025 plus 0.0001 = 105.0351, less 0.50 refunded = 104.5351 -> 104.54
    assert exact(spend.value) == Decimal("104.54") and spend.number_format == MONEY_FORMAT == "#,##0.00"
    topups = ws.cell(row_of(ws, "Top-ups"), 2)
    assert exact(topups.value) == Decimal("1234.5") and ws.cell(topups.row, 3).value == "2 top-ups"
    assert ws.cell(spend.row, 3).value == "usage 105.04 less 0.50 refunded tasks; 15 tasks"


def test_without_books_the_unknown_shows_a_dash_never_a_number(report, tmp_path):
    ws = summary(report, tmp_path)
    for label in ("Change vs previous period", "Closing credit balance", "Runway"):
        cell = ws.cell(row_of(ws, label), 2)
        assert (cell.value, cell.data_type) == ("–", "s"), label
    header = row_of(ws, "Model")
    assert [ws.cell(header, c).value for c in range(1, 8)] == ["Model", "Spend", "Share", "Tasks", "Unit cost", None, None]


def test_models_top_ten_then_other_then_refunds_and_the_total_foots(report, tmp_path):
    ws = summary(report, tmp_path)
    header = row_of(ws, "Model")
    body = [[ws.cell(r, c).value for c in range(1, 6)] for r in range(header + 1, row_of(ws, "AI spend") + 1)]
    names = [r[0] for r in body]
    assert names[:10] == [f"vendor/model-{i:02d}" for i in range(14, 4, -1)]
    assert names[10:] == ["Other (5 models)", "Refunded tasks", "AI spend"]
    assert body[0][2:] == [pytest.approx(0.1333, abs=1e-4), 1, 14.0025]
    assert abs(exact(body[0][1]) - Decimal("14.0025")) < Decimal("0.01")  # cents shared out so the rows foot
    assert exact(body[10][1]) == Decimal("10.01")  # 4+3+2+1 .0025 each, plus 0.0001 (the formula-named model)
    assert exact(body[11][1]) == Decimal("-0.5")
    assert sum(exact(r[1]) for r in body[:-1]) == exact(body[-1][1]) == Decimal("104.54")  # the rows add up
    assert ws.cell(header + 1, 5).number_format == "#,##0.00##"  # a unit cost keeps its sub-cent digits


def test_formula_named_model_is_text_on_the_summary(tmp_path):
    ws = summary(make_report([usage_record(FORMULA, "-1.00"), usage_record("+1+2", "-0.50")]), tmp_path)
    cell = ws.cell(row_of(ws, FORMULA), 1)
    assert cell.data_type == "s" and cell.quotePrefix
    (path,) = tmp_path.glob("*.xlsx")
    with zipfile.ZipFile(path) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet


def test_with_books_change_closing_runway_and_the_month_chart(report, tmp_path):
    booked = with_books(
        report,
        history=[("2023-11", -80_000_000, 0), ("2023-12", -90_000_000, 1_000_000)],
        previous={f"vendor/model-{i:02d}": -1_000_000 * i for i in range(1, 15)},
        opening=100_000_000,
        closing=1_230_000_000,
    )
    ws = summary(booked, tmp_path)
    change = row_of(ws, "Change vs 2023-12")
    assert exact(ws.cell(change, 2).value) == Decimal("15.54")  # 104.5351 - 89.00
    assert ws.cell(change, 2).number_format == CHANGE_FORMAT and exact(ws.cell(change, 3).value) == Decimal("0.1746")
    assert exact(ws.cell(row_of(ws, "Closing credit balance"), 2).value) == Decimal("1230")
    assert ws.cell(row_of(ws, "Runway"), 2).value == 364  # 1230 / (104.5351 / 31) days, whole days
    header = row_of(ws, "Model")
    assert [ws.cell(header, c).value for c in (6, 7)] == ["vs 2023-12", "Change %"]
    top = [ws.cell(header + 1, c).value for c in (1, 6, 7)]
    assert top[0] == "vendor/model-14" and exact(top[1]) == 0 and exact(top[2]) == Decimal("0.0002")  # +0.0025
    other = row_of(ws, "Other (5 models)")
    assert ws.cell(other, 6).value == "–"  # the formula-named model has no previous figure: no partial sum
    total = row_of(ws, "AI spend")
    assert exact(ws.cell(total, 6).value) == Decimal("15.54")
    with zipfile.ZipFile(next(tmp_path.glob("*.xlsx"))) as archive:
        charts = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == 3 and any("AI spend by period" in c for c in charts)


def _chart_ranges(path: Path) -> list[list[str]]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith("xl/charts/chart"))
        return [re.findall(r"<f>'Summary'!\$([A-Z]+)\$(\d+):\$([A-Z]+)\$(\d+)</f>", archive.read(n).decode())
                for n in names]


def _values(ws: Worksheet, ref: tuple[str, ...]) -> list[Any]:
    column, first, _, last = ref
    return [ws[f"{column}{r}"].value for r in range(int(first), int(last) + 1)]


def test_charts_plot_positive_spend_sorted_with_other_and_every_day(report, tmp_path):
    ws = summary(report, tmp_path)
    (path,) = tmp_path.glob("*.xlsx")
    by_model, daily = _chart_ranges(path)
    labels, amounts = _values(ws, by_model[0]), _values(ws, by_model[1])
    assert labels[-1] == "Other (5 models)" and len(labels) == 11  # the tail grouped, never cut off
    assert all(a > 0 for a in amounts) and amounts[:10] == sorted(amounts[:10], reverse=True)
    days, usage = _values(ws, daily[0]), _values(ws, daily[1])
    assert len(days) == 31 and days[0].day == 1 and days[-1].day == 31  # every day of the month
    assert all(u >= 0 for u in usage) and usage[29] == 0  # 30 January: only pending and failed records
    assert sum(exact(u) for u in usage) == Decimal("105.0351")  # usage; top-ups are not on this axis


def test_print_area_holds_the_report_and_the_charts(report, tmp_path):
    ws = summary(report, tmp_path)
    last_row = int(re.search(r"\$G\$(\d+)", ws.print_area).group(1))
    anchors = [chart.anchor._from.row + 1 for chart in ws._charts] if ws._charts else []
    assert last_row > row_of(ws, "AI spend") + 20  # the charts below the table are on the page
    assert all(anchor < last_row for anchor in anchors)
