"""The workbook, read back with openpyxl: sheets, cell types, text safety, totals, the detail split."""

from __future__ import annotations

import dataclasses
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from exporter import __version__
from exporter.models import JournalEntry, JournalLine
from exporter.report import Reconciliation, Report
from exporter.period import month_window
from exporter.writers import excel
from exporter.writers.excel import ExcelWriter
from exporter.writers.excel.cells import AMOUNT_FORMAT, DATE_FORMAT, DATETIME_FORMAT, TOTAL_FORMAT

from factories import make_report, topup_record, usage_record, with_entries, with_warnings

FORMULA = "=cmd|' /C calc'!A0"
DETAIL_HEADERS = [
    "id", "created_at (UTC)", "date", "type", "status", "model", "payment_method", "currency", "amount",
]


def write(report: Report, folder: Path) -> Path:
    (path,) = ExcelWriter().write(report, folder)
    return path


def open_book(report: Report, folder: Path, **options: Any) -> Workbook:
    return load_workbook(write(report, folder), **options)


def rows(ws: Worksheet, first: int = 1) -> list[tuple[Any, ...]]:
    return list(ws.iter_rows(min_row=first, values_only=True))


def find_row(ws: Worksheet, first_value: str, column: int = 1) -> int:
    """Sheet row of the first row whose ``column`` holds ``first_value``."""
    for cells in ws.iter_rows():
        if cells[column - 1].value == first_value:
            return cells[0].row
    raise AssertionError(f"{first_value!r} not found on {ws.title}")


def exact(value: Any) -> Decimal:
    """A numeric cell as a Decimal of its shortest text: what the file says, without float noise."""
    assert isinstance(value, (int, float)) and not isinstance(value, bool), value
    return Decimal(str(value))


def without_journal(report: Report, warnings: tuple[str, ...] | None = None) -> Report:
    """The report without its journal (these tests hand-build one when they need it)."""
    return with_entries(report if warnings is None else with_warnings(report, warnings), ())


@pytest.fixture
def report() -> Report:
    return without_journal(make_report(
        [
            topup_record("100.00", created_at="2024-01-02T08:00:00.000Z", id="txn_a"),
            usage_record("wavespeed-ai/flux-dev", "-0.0025", created_at="2024-01-02T09:15:30.123Z", id="txn_b"),
            usage_record("wavespeed-ai/flux-dev", "-0.0045", created_at="2024-01-03T10:00:00.000Z", id="txn_c"),
            usage_record("wavespeed-ai/wan-2.1", "-1.20", created_at="2024-01-03T11:00:00.000Z", id="txn_d"),
            usage_record("wavespeed-ai/wan-2.1", "-0.30", status="pending", created_at="2024-01-04T00:00Z", id="txn_e"),
            usage_record("wavespeed-ai/wan-2.1", "-0.30", status="failed", created_at="2024-01-04T01:00Z", id="txn_f"),
        ],
    ), ("page 3 was retried", "2 duplicate ids dropped"))


def journal() -> list[JournalEntry]:
    return [
        JournalEntry(
            "WS2401T1", date(2024, 1, 2), "USD", "top-up", "topup",
            (
                JournalLine("WaveSpeed Prepaid", 10_000, "top-up txn_a"),
                JournalLine("Checking", -10_000, "top-up txn_a"),
            ),
            ("txn_a",),
        ),
        JournalEntry(
            "WS2401U1", date(2024, 1, 31), "USD", "usage January", "usage",
            (
                JournalLine("AI Services", 120, "wavespeed-ai/wan-2.1", klass="Research"),
                JournalLine("AI Services", 1, "wavespeed-ai/flux-dev", klass="Research"),
                JournalLine("WaveSpeed Prepaid", -121, "", name="WaveSpeedAI"),
            ),
        ),
    ]


# --------------------------------------------------------------------------- structure


def test_sheets_in_order_and_file_name(report, tmp_path):
    path = write(report, tmp_path)
    assert path == tmp_path / "wavespeed_2024-01.xlsx"
    assert load_workbook(path).sheetnames == ["Summary", "By Model", "By Day", "Transactions", "Details"]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_journal_sheet_only_with_a_journal_and_it_balances(report, tmp_path):
    book = open_book(with_entries(report, journal()), tmp_path)
    assert book.sheetnames == ["Summary", "By Model", "By Day", "Transactions", "Journal", "Details"]
    ws = book["Journal"]
    assert rows(ws)[0][:7] == ("journal no.", "date", "account", "debit", "credit", "class", "memo")
    lines = rows(ws, 2)[:5]
    assert lines[0][:5] == ("WS2401T1", datetime(2024, 1, 2), "WaveSpeed Prepaid", 100, None)
    assert lines[2][:6] == ("WS2401U1", datetime(2024, 1, 31), "AI Services", 1.2, None, "Research")
    assert lines[4][3:5] == (None, 1.21) and lines[4][6] == "usage January"  # empty line memo: the entry's
    assert sum(exact(r[3]) for r in lines if r[3] is not None) == sum(exact(r[4]) for r in lines if r[4] is not None)
    total = rows(ws, 7)[0]
    assert total[0] == "Total USD" and exact(total[3]) == exact(total[4]) == Decimal("101.21")
    assert ws["D2"].number_format == "#,##0.00" and ws["B2"].is_date


# --------------------------------------------------------------------------- cell types


def test_detail_cells_have_real_types_and_formats(report, tmp_path):
    ws = open_book(report, tmp_path)["Transactions"]
    assert rows(ws)[0] == tuple(DETAIL_HEADERS)
    assert rows(ws, 3)[0] == (
        "txn_b", datetime(2024, 1, 2, 9, 15, 30, 123_000), datetime(2024, 1, 2), "usage", "completed",
        "wavespeed-ai/flux-dev", None, "USD", -0.0025,
    )
    created, day, amount = ws["B3"], ws["C3"], ws["I3"]
    assert created.is_date and created.number_format == DATETIME_FORMAT
    assert day.is_date and day.number_format == DATE_FORMAT
    assert amount.data_type == "n" and amount.number_format == AMOUNT_FORMAT
    assert ws["I2"].value == 100 and ws["I2"].data_type == "n"
    assert all(ws.cell(3, col).data_type == "s" for col in (1, 4, 5, 6, 8))


def test_read_only_mode_reads_the_same_values(report, tmp_path):
    path = write(report, tmp_path)
    full, lazy = load_workbook(path), load_workbook(path, read_only=True)
    for name in full.sheetnames:
        assert rows(lazy[name]) == rows(full[name]), name


def test_detail_dates_are_local_days_and_instants_utc(tmp_path):
    window = month_window("2024-01", "America/New_York")
    report = make_report([usage_record("m", "-0.01", created_at="2024-01-15T03:00:00Z")], window=window)
    ws = open_book(report, tmp_path)["Transactions"]
    assert (ws["B2"].value, ws["C2"].value) == (datetime(2024, 1, 15, 3, 0), datetime(2024, 1, 14))
    details = open_book(report, tmp_path)["Details"]
    start = find_row(details, "Start (UTC)")
    assert details.cell(start, 2).value == datetime(2024, 1, 1, 5, 0)  # local midnight, as UTC
    assert details.cell(find_row(details, "Time zone"), 2).value == "America/New_York"


def test_by_model_sorted_by_spend_with_formats(report, tmp_path):
    ws = open_book(report, tmp_path)["By Model"]
    assert rows(ws)[0] == ("model", "currency", "count", "amount", "refunds", "net", "share", "unit cost")
    wan, flux = rows(ws, 2)[:2]
    assert wan[:6] == ("wavespeed-ai/wan-2.1", "USD", 1, -1.2, 0, -1.2)  # pending/failed do not count
    assert flux[:6] == ("wavespeed-ai/flux-dev", "USD", 2, -0.007, 0, -0.007)
    assert exact(flux[6]) == Decimal("0.0058") and exact(flux[7]) == Decimal("0.0035")  # unit cost: positive
    assert all(ws.cell(3, col).number_format == AMOUNT_FORMAT for col in (4, 5, 6, 8))
    assert ws["G3"].number_format.endswith("%")


def test_charts_only_on_the_summary(report, tmp_path):
    with zipfile.ZipFile(write(report, tmp_path)) as archive:
        charts = sorted(n for n in archive.namelist() if n.startswith("xl/charts/chart"))
        texts = [archive.read(n).decode() for n in charts]
    assert len(charts) == 2  # spend by model, daily usage (no history: no monthly chart)
    assert all("'Summary'!" in text and "By Model" not in text and "By Day" not in text for text in texts)


# --------------------------------------------------------------------------- text safety


def test_formula_looking_model_name_stays_text(tmp_path):
    report = make_report([usage_record(name, "-0.01", id=f"{name} id") for name in (FORMULA, "+1+2", "@SUM(A1)")])
    path = write(report, tmp_path)
    book = load_workbook(path)
    ids = [book["Transactions"].cell(r, 1) for r in range(2, 5)]
    assert {c.value for c in ids} == {f"{FORMULA} id", "+1+2 id", "@SUM(A1) id"}
    assert all(c.data_type == "s" and c.quotePrefix for c in ids)
    for ws, column in ((book["Transactions"], 6), (book["By Model"], 1)):
        cells = {ws.cell(r, column).value: ws.cell(r, column) for r in range(2, 5)}
        assert set(cells) == {FORMULA, "+1+2", "@SUM(A1)"}, ws.title
        for cell in cells.values():
            assert cell.data_type == "s" and cell.quotePrefix, (ws.title, cell.value)
    with zipfile.ZipFile(path) as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
    assert not any("<f>" in xml or "<f " in xml for xml in sheets)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('flux, "pro"', 'flux, "pro"'),
        ("line one\nline two", "line one\nline two"),
        ("crlf\r\nend", "crlf\nend"),
        ("Größe ✓ 模型 🎨", "Größe ✓ 模型 🎨"),
        ("bell\x07 and nul\x00 and esc\x1b", "bell and nul and esc"),
        ("<tag> & 'apos'", "<tag> & 'apos'"),
        ("  padded  ", "  padded  "),
        ("-leading minus", "-leading minus"),
    ],
)
def test_hostile_model_names_round_trip(tmp_path, raw, expected):
    report = make_report([usage_record(raw, "-0.0025", id="txn_<&>\"1")])
    book = open_book(report, tmp_path)
    detail, by_model = book["Transactions"], book["By Model"]
    assert (detail["A2"].value, detail["F2"].value, detail["F2"].data_type) == ('txn_<&>"1', expected, "s")
    assert (by_model["A2"].value, by_model["A2"].data_type) == (expected, "s")
    assert detail["I2"].value == -0.0025


def test_clean_text_limits_length_and_drops_invalid_code_points():
    assert excel.clean_text("a" * 40_000) == "a" * 32_767
    assert excel.clean_text("x\ud800y\uffffz") == "xyz"


# --------------------------------------------------------------------------- layout


def test_header_frozen_and_autofilter_on_the_data(report, tmp_path):
    book = open_book(with_entries(report, journal()), tmp_path)
    expected = {"By Model": "A1:H3", "By Day": "A1:H3", "Transactions": "A1:I7", "Journal": "A1:I6"}
    for name, ref in expected.items():
        ws = book[name]
        assert ws.freeze_panes == "A2", name
        assert ws.auto_filter.ref == ref, name
        assert all(cell.font.b for cell in ws[1]), name
    widths = book["Transactions"].column_dimensions
    assert widths["F"].width >= len("wavespeed-ai/flux-dev") and widths["B"].width >= len("2024-01-02 09:15:30.123")


# --------------------------------------------------------------------------- totals


def test_totals_rows_equal_the_exact_sums(report, tmp_path):
    book = open_book(report, tmp_path)
    by_model = book["By Model"]
    total = rows(by_model, find_row(by_model, "Total USD"))[0]
    assert total[2] == 3 and exact(total[3]) == Decimal("-1.207") and total[6] == 1
    assert exact(total[5]) == Decimal("-1.207") and exact(total[7]) == Decimal("0.402333")  # net; average price
    assert by_model.cell(find_row(by_model, "Total USD"), 4).number_format == TOTAL_FORMAT

    by_day = book["By Day"]
    assert [r[0] for r in rows(by_day, 2)] == [datetime(2024, 1, 2), datetime(2024, 1, 3), "Total USD"]
    for day in rows(by_day, 2):  # top-ups + usage + refunds + other = net, on every row
        assert sum(exact(v) for v in day[2:6]) == exact(day[6]), day
    day_total = rows(by_day, 4)[0]
    assert [exact(v) for v in day_total[2:7]] == [Decimal("100"), Decimal("-1.207"), 0, 0, Decimal("98.793")]
    assert day_total[7] == 4
    assert by_day["C2"].number_format == AMOUNT_FORMAT and by_day["C4"].number_format == TOTAL_FORMAT

    details = book["Details"]
    net = find_row(details, "net", column=2)
    assert [r[:4] for r in rows(details, net - 2)[:3]] == [
        ("USD", "topup", 1, 100),
        ("USD", "usage", 3, -1.207),
        ("USD", "net", 4, 98.793),
    ]
    assert details.cell(net, 4).number_format == AMOUNT_FORMAT


def test_sub_cent_amounts_sum_exactly(tmp_path):
    report = make_report([usage_record("flux", "-0.0025") for _ in range(10_000)])
    book = open_book(report, tmp_path, read_only=True)
    model = rows(book["By Model"], 2)
    assert model[0][:4] == ("flux", "USD", 10_000, -25)
    assert model[1][3] == -25 and isinstance(model[1][3], int)  # the totals row: exactly -25
    detail = rows(book["Transactions"], 2)
    assert len(detail) == 10_000 and {r[8] for r in detail} == {-0.0025}


# --------------------------------------------------------------------------- the detail split


def test_detail_continues_on_numbered_sheets(tmp_path, monkeypatch):
    monkeypatch.setattr(excel.stream, "MAX_SHEET_ROWS", 4)  # a header and three records a sheet
    records = [
        usage_record(f"m{i % 3}", "-0.01", created_at=f"2024-01-{i + 1:02d}T00:00:00Z", id=f"t{i:02d}")
        for i in range(10)
    ]
    book = open_book(without_journal(make_report(records)), tmp_path)
    names = ["Transactions", "Transactions (2)", "Transactions (3)", "Transactions (4)"]
    assert book.sheetnames == ["Summary", "By Model", "By Day", *names, "Details"]
    ids = []
    for name, count in zip(names, (3, 3, 3, 1)):
        ws = book[name]
        assert rows(ws)[0] == tuple(DETAIL_HEADERS), name
        assert ws.max_row == count + 1 and ws.auto_filter.ref == f"A1:I{count + 1}" and ws.freeze_panes == "A2"
        ids += [r[0] for r in rows(ws, 2)]
    assert ids == [f"t{i:02d}" for i in range(10)]
    assert book["Transactions (4)"]["C2"].value == datetime(2024, 1, 10)


def _detail_xml(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read("xl/worksheets/sheet4.xml")


def test_chunks_formatted_on_two_threads_make_the_same_sheet_in_order(tmp_path, monkeypatch):
    records = [usage_record(f"m{i % 4}", f"-0.00{i % 9 + 1}", created_at=f"2024-01-{i % 28 + 1:02d}T00:00:{i % 60:02d}Z",
                            id=f"t{i:03d}") for i in range(200)]
    report = without_journal(make_report(records))
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    monkeypatch.setattr(excel.stream, "_FORMATTERS", 1)
    one = _detail_xml(write(report, tmp_path / "one"))
    monkeypatch.setattr(excel.stream, "_FORMATTERS", 2)
    monkeypatch.setattr(excel.stream, "_CHUNK_ROWS", 7)  # 29 chunks, finishing out of order on two threads
    many = write(report, tmp_path / "many")
    assert _detail_xml(many) == one
    detail = rows(load_workbook(many)["Transactions"], 2)
    assert [r[0] for r in detail] == list(report.summaries.transactions["id"])  # the frame's order, row for row


def test_exact_fit_needs_no_extra_sheet(tmp_path, monkeypatch):
    monkeypatch.setattr(excel.stream, "MAX_SHEET_ROWS", 4)
    book = open_book(without_journal(make_report([usage_record("m", "-0.01") for _ in range(3)])), tmp_path)
    assert book.sheetnames == ["Summary", "By Model", "By Day", "Transactions", "Details"]


def test_empty_period_still_makes_a_workbook(tmp_path):
    book = open_book(make_report([]), tmp_path)
    assert rows(book["Transactions"]) == [tuple(DETAIL_HEADERS)]
    assert rows(book["By Model"]) == [("model", "currency", "count", "amount", "refunds", "net", "share", "unit cost")]
    summary = book["Summary"]
    assert summary.cell(find_row(summary, "No completed records in this period."), 1).font.b


# --------------------------------------------------------------------------- Details


def test_details_show_period_status_counts_stats_and_warnings(report, tmp_path):
    ws = open_book(report, tmp_path)["Details"]
    values = {r[0]: r[1] for r in rows(ws) if r[0] is not None}
    assert values["Period"] == "2024-01"
    assert (values["First day"], values["Last day"]) == (datetime(2024, 1, 1), datetime(2024, 1, 31))
    assert ws.cell(find_row(ws, "First day"), 2).number_format == DATE_FORMAT
    assert values["End (UTC, exclusive)"] == datetime(2024, 2, 1)
    extraction = [values[k] for k in ("Source", "Server total", "Unique fetched", "Duplicates dropped", "In period")]
    assert extraction == ["test", 6, 6, 0, 6]
    status_rows = {(r[0], r[1]): (r[3], r[4]) for r in rows(ws, find_row(ws, "Status", column=2) + 1)[:5]}
    assert status_rows == {
        ("topup", "completed"): (1, 100),
        ("usage", "completed"): (3, -1.207),
        ("usage", "failed"): (1, -0.3),
        ("usage", "pending"): (1, -0.3),
        ("Total", None): (6, None),
    }
    warnings = find_row(ws, "Warnings")
    assert [ws.cell(warnings + i, 1).value for i in (1, 2)] == ["page 3 was retried", "2 duplicate ids dropped"]
    assert f"Generated by wavespeed-export {__version__} at 2024-02-01 12:00:00 UTC" in values
    with pytest.raises(AssertionError):
        find_row(ws, "Reconciliation")
    summary = {r[0] for r in rows(open_book(report, tmp_path)["Summary"])}
    assert not summary & {"Source", "Pages", "Warnings", "Reconciliation"}  # technical details stay off the Summary


def test_a_long_warning_wraps_inside_the_page(report, tmp_path):
    long = "31 model(s) matched no rule: " + ", ".join(f"vendor/model-{i}" for i in range(40))
    ws = open_book(with_warnings(report, (long,)), tmp_path)["Details"]
    row = find_row(ws, long)
    assert ws.cell(row, 1).alignment.wrap_text and f"A{row}:F{row}" in {str(r) for r in ws.merged_cells.ranges}
    assert ws.row_dimensions[row].height > 15


def test_details_reconciliation_block(report, tmp_path):
    reconciliation = pd.DataFrame(
        {
            "model": ["wavespeed-ai/flux-dev", FORMULA],
            "currency": ["USD", "USD"],
            "exported_micros": [-7_000, 0],
            "provider_micros": [-7_500, None],
            "difference_micros": [500, None],
            "status": ["mismatch", "missing at provider"],
        }
    ).astype({"provider_micros": "Int64", "difference_micros": "Int64"})
    ws = open_book(dataclasses.replace(report, reconciliation=Reconciliation(reconciliation)), tmp_path)["Details"]
    start = find_row(ws, "Reconciliation")
    assert rows(ws, start + 1)[:3] == [
        ("Model", "Currency", "Exported", "Provider", "Difference", "Status"),
        ("wavespeed-ai/flux-dev", "USD", -0.007, -0.0075, 0.0005, "mismatch"),
        (FORMULA, "USD", 0, None, None, "missing at provider"),
    ]
    assert ws.cell(start + 3, 1).data_type == "s" and ws.cell(start + 2, 5).number_format == AMOUNT_FORMAT


# --------------------------------------------------------------------------- print setup


def test_every_sheet_prints_one_page_wide_with_its_header_repeated(report, tmp_path):
    book = open_book(with_entries(report, journal()), tmp_path)
    for ws in book.worksheets:
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1, ws.title
    for name in ("By Model", "By Day", "Transactions", "Journal"):
        assert book[name].print_title_rows == "$1:$1", name  # the header on every printed page
        assert book[name].page_setup.fitToHeight == 0, name  # as many pages tall as it takes
    assert book["Transactions"].page_setup.orientation == "landscape"
    assert book["Journal"].page_setup.orientation == "landscape"
    summary = book["Summary"]
    assert summary.page_setup.fitToHeight == 1 and summary.page_setup.orientation == "portrait"
    assert summary.print_area is not None and "$A$1:$G$" in summary.print_area


@pytest.mark.parametrize("days", [
    ["1900-01-01", "1900-02-28", "1900-03-01", "1970-01-01", "2024-01-15"],  # across Excel's 1900-02-29
    ["2024-01-01", "2024-01-31", "1999-12-31"],  # after it: the usual month
])
def test_detail_serials_are_openpyxls_on_both_sides_of_excels_1900_leap_day(days):
    from openpyxl.utils.datetime import to_excel

    from exporter.writers.excel.stream import _date_serials, _datetime_serials

    instants = pd.Series(pd.to_datetime(days).tz_localize("UTC") + pd.Timedelta(hours=13, minutes=7, seconds=30, milliseconds=250))
    assert _date_serials(pd.Series(pd.to_datetime(days))).tolist() == [to_excel(datetime.fromisoformat(d)) for d in days]
    assert _datetime_serials(instants).tolist() == [to_excel(t.to_pydatetime().replace(tzinfo=None)) for t in instants]
