"""Xero manual journals read back: balanced journals, the QuickBooks tie, codes, splitting, hygiene."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.books.mapping_toml import DEFAULT_ACCOUNTS_PATH, load_mapping
from exporter.cli import cli
from exporter.config import RenderOptions
from exporter.errors import ConfigError, ExportError
from exporter.writers.xero import XERO_HEADER, XERO_MAX_LINES, XeroWriter, split_journals
from factories import make_report, record, topup_record, usage_record

XERO_ACCOUNTS = Path(__file__).parents[1] / "templates" / "accounts_xero.toml"
MAPPING = load_mapping(XERO_ACCOUNTS)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def read_rows(path: Path) -> list[dict[str, str]]:
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == data.count(b"\n")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == XERO_HEADER
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def journals_of(rows: list[dict[str, str]]) -> dict[tuple[str, str], list[dict[str, str]]]:
    grouped: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        grouped[(row["*Narration"], row["*Date"])].append(row)
    return grouped


def xero_report(raws: list[dict], **kwargs):
    return make_report(raws, mapping=kwargs.pop("mapping", MAPPING), **kwargs)


def test_sandbox_journals_balance_and_expenses_tie_to_the_quickbooks_journal(api_args, tmp_path):
    result = invoke("export", "--period", "2024-01", "--out", str(tmp_path), *api_args,
                    "--format", "quickbooks,xero", "--accounts", str(XERO_ACCOUNTS))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "2024-01"
    rows = read_rows(folder / "xero_manual_journals.csv")
    journals = journals_of(rows)
    for lines in journals.values():
        assert sum(Decimal(row["*Amount"]) for row in lines) == 0
        assert all(row["*TaxRate"] == "Tax Exempt" and row["*AccountCode"] for row in lines)
    with open(folder / "quickbooks_online_journal.csv", newline="", encoding="utf-8") as handle:
        qbo = list(csv.DictReader(handle))
    assert len(journals) == len({row["JournalNo"] for row in qbo}) and len(rows) == len(qbo)
    # the expense accounts' net movement, read from each file, agrees to the cent
    expense_names = {name for name, account in MAPPING.accounts.items() if account.type == "EXP"}
    expense_codes = {MAPPING.accounts[name].code for name in expense_names}
    xero_expense = sum(Decimal(row["*Amount"]) for row in rows if row["*AccountCode"] in expense_codes)
    qbo_expense = sum(Decimal(row["Debits"] or 0) - Decimal(row["Credits"] or 0) for row in qbo if row["AccountName"] in expense_names)
    assert xero_expense == qbo_expense and xero_expense > 0
    # and every line matches its QuickBooks twin: code of the same account, same signed amount
    qbo_lines = sorted((MAPPING.accounts[r["AccountName"]].code, Decimal(r["Debits"] or 0) - Decimal(r["Credits"] or 0)) for r in qbo)
    assert sorted((r["*AccountCode"], Decimal(r["*Amount"])) for r in rows) == qbo_lines


def test_classes_become_tracking_category_and_option(tmp_path):
    report = xero_report([usage_record("google/veo3", "-3.20"), usage_record("wavespeed-ai/sdxl", "-0.0025"),
                          usage_record("wavespeed-ai/sdxl", "-0.0075"), usage_record("other/model", "-1.00")])
    XeroWriter().write(report, tmp_path)
    rows = read_rows(tmp_path / "xero_manual_journals.csv")
    tracking = {(r["*AccountCode"], r["TrackingName1"], r["TrackingOption1"], r["*Amount"]) for r in rows}
    assert tracking == {
        ("487", "AI Models", "Google", "3.20"), ("486", "AI Models", "WaveSpeed", "0.01"),
        ("486", "AI Models", "Other", "1.00"), ("621", "", "", "-4.21"),
    }
    assert {r["TrackingName2"] + r["TrackingOption2"] for r in rows} == {""}


def test_a_mapping_without_codes_exits_2_naming_the_accounts_before_any_request(sandbox, api_args, tmp_path):
    result = invoke("export", "--period", "2024-01", "--out", str(tmp_path / "out"), *api_args, "--format", "csv,xero")
    assert result.exit_code == 2
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and str(DEFAULT_ACCOUNTS_PATH) in message
    for name in ("Prepaid Expenses:WaveSpeedAI Credits", "AI API Usage", "WaveSpeedAI Clearing", "Uncategorized Asset"):
        assert repr(name) in message
    assert len(sandbox.requests) == 0 and not (tmp_path / "out").exists()


def test_only_the_accounts_without_a_code_are_named(tmp_path):
    text = XERO_ACCOUNTS.read_text().replace('code = "629"\n', "")
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        XeroWriter.check_mapping(load_mapping(tmp_path / "m.toml"))
    assert "'Uncategorized Asset'" in str(caught.value) and "'AI API Usage'" not in str(caught.value)


def test_a_class_without_an_option_level_is_refused(tmp_path):
    text = XERO_ACCOUNTS.read_text().replace('class = "AI Models:Other"', 'class = "AI Models"')
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(ConfigError, match="'AI Models' has no option level"):
        XeroWriter.check_mapping(load_mapping(tmp_path / "m.toml"))


def test_a_journal_booked_with_another_mapping_is_refused_before_writing(tmp_path):
    report = xero_report([topup_record("5.00")])
    (tmp_path / "m.toml").write_text(XERO_ACCOUNTS.read_text().replace("WaveSpeedAI Credits", "Other Credits"))
    other = replace(report, mapping=load_mapping(tmp_path / "m.toml"))
    with pytest.raises(ExportError, match="'Prepaid Expenses:WaveSpeedAI Credits' is in the journal but has no Xero code"):
        XeroWriter().write(other, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_dates_follow_the_date_format_option(tmp_path):
    report = xero_report([topup_record("5.00", created_at="2024-01-03T09:00:00Z"), usage_record("m", "-1.00")])
    XeroWriter().write(report, tmp_path / "default")
    assert {r["*Date"] for r in read_rows(tmp_path / "default" / "xero_manual_journals.csv")} == {"03/01/2024", "31/01/2024"}
    XeroWriter(RenderOptions(date_format="%m/%d/%Y")).write(report, tmp_path / "us")
    assert {r["*Date"] for r in read_rows(tmp_path / "us" / "xero_manual_journals.csv")} == {"01/03/2024", "01/31/2024"}
    XeroWriter(RenderOptions(date_format="%d %b %Y")).write(report, tmp_path / "words")
    assert {r["*Date"] for r in read_rows(tmp_path / "words" / "xero_manual_journals.csv")} == {"03 Jan 2024", "31 Jan 2024"}


def test_the_date_format_option_through_the_cli(api_args, tmp_path):
    args = ["export", "--period", "2024-01", *api_args, "--format", "xero,quickbooks", "--accounts", str(XERO_ACCOUNTS)]
    result = invoke(*args, "--out", str(tmp_path), "--date-format", "%Y-%m-%d")
    assert result.exit_code == 0, result.output
    dates = {r["*Date"] for r in read_rows(tmp_path / "2024-01" / "xero_manual_journals.csv")}
    assert "2024-01-31" in dates and all(d.startswith("2024-01-") for d in dates)
    qbo = (tmp_path / "2024-01" / "quickbooks_online_journal.csv").read_text()
    assert ",01/31/2024," in qbo  # QuickBooks keeps MM/DD/YYYY
    bad = invoke(*args, "--out", str(tmp_path / "bad"), "--date-format", "%d/%m")
    assert bad.exit_code == 2 and "--date-format" in bad.output and not (tmp_path / "bad").exists()


def test_hostile_text_is_one_line_and_never_a_formula(tmp_path):
    hostile_model = '=cmd|" /C calc"!A0\tnew\nline'
    hostile_method = "@SUM(1+1)\r\n-2"
    report = xero_report([usage_record(hostile_model, "-1.00"), topup_record("5.00", payment_method=hostile_method)])
    XeroWriter().write(report, tmp_path)
    data = (tmp_path / "xero_manual_journals.csv").read_bytes().decode("utf-8")
    rows = read_rows(tmp_path / "xero_manual_journals.csv")
    for row in rows:
        for column in ("*Narration", "Description", "TrackingName1", "TrackingOption1"):
            assert not row[column].startswith(TRIGGERS) and "\n" not in row[column] and "\t" not in row[column]
    assert data.count("\r\n") == len(rows) + 1
    assert any("cmd|" in row["Description"] for row in rows)


def test_each_currency_gets_its_own_files(tmp_path):
    report = xero_report([usage_record("m", "-1.00", currency="USD"), usage_record("m", "-2.00", currency="EUR")])
    paths = XeroWriter().write(report, tmp_path)
    assert [p.name for p in paths] == ["xero_manual_journals_EUR.csv", "xero_manual_journals_USD.csv"]
    assert [r["*Amount"] for r in read_rows(paths[0])] == ["2.00", "-2.00"]


def test_a_big_month_is_split_into_parts_without_splitting_a_journal(tmp_path):
    # 200 top-ups (2 lines each) and a usage journal of 4 lines: 404 lines in all
    raws = [topup_record("1.00", created_at=f"2024-01-{1 + i % 28:02d}T00:00:{i % 60:02d}Z") for i in range(200)]
    raws += [usage_record(m, "-1.00") for m in ("google/veo3", "wavespeed-ai/sdxl", "other/x")]
    report = xero_report(raws)
    paths = XeroWriter().write(report, tmp_path)
    assert [p.name for p in paths] == ["xero_manual_journals_part1.csv", "xero_manual_journals_part2.csv"]
    seen: set[tuple[str, str]] = set()
    total = 0
    for path in paths:
        rows = read_rows(path)
        assert len(rows) + 1 <= XERO_MAX_LINES
        journals = journals_of(rows)
        assert not seen & set(journals)  # a journal is in exactly one file
        seen |= set(journals)
        total += len(rows)
        assert all(sum(Decimal(r["*Amount"]) for r in lines) == 0 for lines in journals.values())
    assert len(seen) == len(report.journal) == 201 and total == 404
    assert len(read_rows(paths[0])) == 298  # filled up to the limit with whole two-line journals


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=XERO_MAX_LINES - 1), max_size=40))
def test_splitting_keeps_order_and_journals_whole_and_fills_each_part(sizes):
    journals = [[[f"j{i}", "01/01/2024", str(line)] for line in range(size)] for i, size in enumerate(sizes)]
    parts = split_journals(journals)
    assert [row for part in parts for row in part] == [row for rows in journals for row in rows]
    assert all(len(part) <= XERO_MAX_LINES - 1 for part in parts)
    for part, following in zip(parts, parts[1:]):
        first_of_next = following[0][0]
        assert {row[0] for row in part}.isdisjoint(row[0] for row in following)
        assert len(part) + sum(1 for row in following if row[0] == first_of_next) > XERO_MAX_LINES - 1


def test_a_journal_longer_than_a_file_is_refused():
    with pytest.raises(ExportError, match="more than Xero imports"):
        split_journals([[["big", "01/01/2024"]] * XERO_MAX_LINES])


def test_an_empty_period_writes_the_header_only(tmp_path):
    XeroWriter().write(xero_report([record("usage", "-1.00", status="failed")]), tmp_path)
    assert (tmp_path / "xero_manual_journals.csv").read_bytes() == (",".join(XERO_HEADER) + "\r\n").encode()


@pytest.mark.parametrize("text", ["%d/%m", "%Y", "today", "%d\t%m\t%Y", '%Y-%m-%d"', "%H:%M"])
def test_a_date_format_that_does_not_read_back_as_the_same_day_is_refused(text):
    with pytest.raises(ConfigError, match="date format"):
        RenderOptions(date_format=text)


def test_xero_needs_the_mapping_to_name_a_tax_rate(api_args, tmp_path):
    text = XERO_ACCOUNTS.read_text(encoding="utf-8")
    mapping = tmp_path / "accounts.toml"
    mapping.write_text("\n".join(line for line in text.splitlines() if not line.startswith("xero_tax_rate")),
                       encoding="utf-8")
    result = invoke("export", "--period", "2024-01", "--out", str(tmp_path / "out"), *api_args,
                    "--format", "xero", "--accounts", str(mapping))
    assert result.exit_code == 2
    assert "names none" in result.output and "No VAT in the UK" in result.output
    assert not (tmp_path / "out").exists()
