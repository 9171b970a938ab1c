"""A Report built by hand from small parts, without the pipeline or the transform: the writers need
only the parts (exporter/report.py), and a part refuses a frame that is not its table's
(exporter/tables.py). The files are read back and hold what the parts say."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from exporter import tables
from exporter.books.journal import Journal
from exporter.books.ledger import Booked
from exporter.books.mapping_toml import load_mapping
from exporter.models import ExtractionStats, JournalEntry, JournalLine, RollForward, Summaries
from exporter.period import month_window
from exporter.report import BooksBefore, Reconciliation, Report, ReportContext
from exporter.writers.csv_files import CsvWriter
from exporter.writers.excel import ExcelWriter
from exporter.writers.quickbooks import QuickBooksWriter
from factories import table_frame

MAPPING = load_mapping()  # the default mapping (templates/accounts.toml)
PREPAID, USAGE, CLEARING = MAPPING.prepaid, MAPPING.usage, MAPPING.payment_account("stripe")


def summaries() -> Summaries:
    """Three records of January 2024: a top-up of 100.00 and two tasks (1.25 and 0.75)."""
    usage = ("", "", "usage")  # api_key_name, api_key_id, role
    transactions = table_frame(tables.TRANSACTIONS, [
        ("t1", "2024-01-03T09:00:00Z", "2024-01-03", "topup", "completed", "", "stripe", "USD", "100.00", 100_000_000,
         "", "", "topup"),
        ("u1", "2024-01-15T10:30:00Z", "2024-01-15", "usage", "completed", "wavespeed-ai/flux-dev", "", "USD", "-1.25",
         -1_250_000, *usage),
        ("u2", "2024-01-20T08:00:00Z", "2024-01-20", "usage", "completed", "google/veo3", "", "USD", "-0.75", -750_000,
         *usage),
    ])
    return Summaries(
        transactions=transactions,
        by_model=table_frame(tables.BY_MODEL, [
            ("wavespeed-ai/flux-dev", "USD", 1, -1_250_000, 0, -1_250_000, Decimal("0.6250"), Decimal("1.250000")),
            ("google/veo3", "USD", 1, -750_000, 0, -750_000, Decimal("0.3750"), Decimal("0.750000")),
        ]),
        by_key=table_frame(tables.BY_KEY, []),
        by_day=table_frame(tables.BY_DAY, [
            ("2024-01-03", "USD", 100_000_000, 0, 0, 0, 100_000_000, 1),
            ("2024-01-15", "USD", 0, -1_250_000, 0, 0, -1_250_000, 1),
            ("2024-01-20", "USD", 0, -750_000, 0, 0, -750_000, 1),
        ]),
        totals=table_frame(tables.TOTALS, [("USD", "topup", 1, 100_000_000), ("USD", "usage", 2, -2_000_000)]),
        status_counts=table_frame(tables.STATUS_COUNTS, [("topup", "completed", "USD", 1, 100_000_000),
                                                         ("usage", "completed", "USD", 2, -2_000_000)]),
    )


def booked() -> Booked:
    """The top-up on its own day, the month's usage summarised on its last day; a known opening."""
    memo = "WaveSpeedAI top-up t1 via stripe"
    topup = JournalEntry("WS2401T001", date(2024, 1, 3), "USD", memo, "topup",
                         (JournalLine(PREPAID, 10_000, memo), JournalLine(CLEARING, -10_000, memo)), source_ids=("t1",))
    usage = JournalEntry("WS2401U", date(2024, 1, 31), "USD", "WaveSpeedAI usage 2024-01 (2 tasks, UTC)", "usage",
                         (JournalLine(USAGE, 200, "Usage 2024-01"), JournalLine(PREPAID, -200, "Usage 2024-01 total")))
    rollforward = RollForward("USD", 5_000_000, 100_000_000, -2_000_000, 0, 0, 0, 103_000_000,
                              "given with --opening-balance")
    return Booked(Journal((topup, usage)), rollforward=(rollforward,))


def hand_built() -> Report:
    stats = ExtractionStats(source="by hand", server_total=3, unique_fetched=3, duplicates_dropped=0, pages=1,
                            in_period=3)
    context = ReportContext(month_window("2024-01"), stats, datetime(2024, 2, 1, 12, tzinfo=timezone.utc), "test")
    return Report(context, summaries(), booked(), MAPPING)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_hand_built_frames_are_of_their_tables_kinds():
    s = summaries()
    problems = [problem for table, frame in ((tables.TRANSACTIONS, s.transactions), (tables.BY_MODEL, s.by_model),
                                             (tables.BY_KEY, s.by_key), (tables.BY_DAY, s.by_day),
                                             (tables.TOTALS, s.totals), (tables.STATUS_COUNTS, s.status_counts))
                for problem in table.kind_problems(frame)]
    assert problems == []


def test_the_csv_files_of_hand_built_parts(tmp_path: Path):
    paths = CsvWriter().write(hand_built(), tmp_path)
    assert sorted(p.name for p in paths) == ["by_day.csv", "by_model.csv", "transactions.csv"]  # no key, no books
    rows = read_csv(tmp_path / "transactions.csv")
    assert [(r["id"], r["date"], r["type"], r["amount"]) for r in rows] == [
        ("t1", "2024-01-03", "topup", "100.00"), ("u1", "2024-01-15", "usage", "-1.25"),
        ("u2", "2024-01-20", "usage", "-0.75")]
    assert rows[0]["created_at"] == "2024-01-03T09:00:00.000Z" and rows[0]["payment_method"] == "stripe"
    models = read_csv(tmp_path / "by_model.csv")
    assert [(r["model"], r["amount"], r["share"], r["unit_cost"]) for r in models] == [
        ("wavespeed-ai/flux-dev", "-1.25", "0.6250", "1.250000"), ("google/veo3", "-0.75", "0.3750", "0.750000")]
    days = read_csv(tmp_path / "by_day.csv")
    assert [(r["date"], r["net"]) for r in days] == [
        ("2024-01-03", "100.00"), ("2024-01-15", "-1.25"), ("2024-01-20", "-0.75")]


def test_the_quickbooks_iif_of_a_hand_written_journal(tmp_path: Path):
    QuickBooksWriter().write(hand_built(), tmp_path)
    lines = [line.split("\t") for line in (tmp_path / "quickbooks.iif").read_text(encoding="ascii").splitlines()]
    header = next(line for line in lines if line[0] == "!TRNS")
    posted = [dict(zip(header[1:], line[1:])) for line in lines if line[0] in ("TRNS", "SPL")]
    assert [(p["DATE"], p["DOCNUM"], p["ACCNT"], p["AMOUNT"]) for p in posted] == [
        ("01/03/2024", "WS2401T001", PREPAID, "100.00"), ("01/03/2024", "WS2401T001", CLEARING, "-100.00"),
        ("01/31/2024", "WS2401U", USAGE, "2.00"), ("01/31/2024", "WS2401U", PREPAID, "-2.00")]
    assert sum(line[0] == "ENDTRNS" for line in lines) == 2


def test_the_workbook_of_hand_built_parts(tmp_path: Path):
    (path,) = ExcelWriter().write(hand_built(), tmp_path)
    book = load_workbook(path)
    assert path.name == "wavespeed_2024-01.xlsx"

    def rows(sheet: str) -> list[tuple]:
        return [row for row in book[sheet].iter_rows(values_only=True) if any(v is not None for v in row)]

    def exact(value: object) -> Decimal | None:  # a numeric cell as the decimal its shortest text says
        return None if value is None else Decimal(str(value))

    assert [(r[0], r[2], r[3], exact(r[8])) for r in rows("Transactions")[1:]] == [
        ("t1", datetime(2024, 1, 3), "topup", Decimal(100)), ("u1", datetime(2024, 1, 15), "usage", Decimal("-1.25")),
        ("u2", datetime(2024, 1, 20), "usage", Decimal("-0.75"))]
    assert [(r[0], exact(r[3]), exact(r[6])) for r in rows("By Model")[1:]] == [
        ("wavespeed-ai/flux-dev", Decimal("-1.25"), Decimal("0.625")),
        ("google/veo3", Decimal("-0.75"), Decimal("0.375")), ("Total USD", Decimal(-2), Decimal(1))]
    assert [(r[0], r[1], r[2], exact(r[3]), exact(r[4])) for r in rows("Journal")[1:]] == [
        ("WS2401T001", datetime(2024, 1, 3), PREPAID, Decimal(100), None),
        ("WS2401T001", datetime(2024, 1, 3), CLEARING, None, Decimal(100)),
        ("WS2401U", datetime(2024, 1, 31), USAGE, Decimal(2), None),
        ("WS2401U", datetime(2024, 1, 31), PREPAID, None, Decimal(2)),
        ("Total USD", None, None, Decimal(102), Decimal(102))]
    details = {r[0]: r[1] for r in rows("Details")}
    assert (exact(details["Opening"]), exact(details["Closing"])) == (Decimal(5), Decimal(103))
    assert details["Source"] == "by hand"
    summary = {r[0]: (exact(r[1]), r[2]) for r in rows("Summary") if isinstance(r[1], (int, float))}
    assert summary["AI spend this period"] == (Decimal(2), "usage 2.00 less 0.00 refunded tasks; 2 tasks")
    assert summary["Closing credit balance"] == (Decimal(103), "opening 5.00 (given with --opening-balance)")


def test_the_warnings_and_notes_are_each_parts_in_the_order_the_stages_ran():
    report = hand_built()
    report = replace(report, context=replace(report.context, warnings=("source",), notes=("run",)),
                     summaries=replace(report.summaries, warnings=("data",)),
                     booked=replace(report.booked, warnings=("books",), notes=("new model",)),
                     reconciliation=Reconciliation(warnings=("reconciliation",)))
    assert report.warnings == ("source", "data", "books", "reconciliation")
    assert report.notes == ("run", "new model")
    assert report.journal == report.booked.journal.entries and report.books == BooksBefore()


def test_a_part_with_a_frame_that_is_not_its_table_is_refused():
    s = summaries()
    with pytest.raises(ValueError, match=r"by_day: columns .*expected \['date', 'currency'"):
        replace(s, by_day=s.by_day.drop(columns="count"))
    with pytest.raises(ValueError, match="transactions"):
        replace(s, transactions=s.transactions[["id", "amount"]])
    with pytest.raises(ValueError, match="adjustments"):
        replace(booked(), adjustments=pd.DataFrame({"id": ["x"], "delta_micros": [1]}))
    with pytest.raises(ValueError, match="reconciliation"):
        Reconciliation(pd.DataFrame({"model": ["m"], "currency": ["USD"]}))
    reconciled = table_frame(tables.RECONCILIATION, [("m", "USD", 1_000_000, 1_000_000, 0, "ok")])
    assert Reconciliation(reconciled).frame is reconciled  # its own table passes
