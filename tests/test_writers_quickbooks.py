"""QuickBooks files read back: IIF structure and hygiene, QBO journal CSV, bank CSV totals and splits."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from exporter.books.mapping_toml import load_mapping as load_accounts
from exporter.errors import ExportError
from exporter.config import RenderOptions
from exporter.report import Report
from exporter.money import format_cents
from exporter.writers.quickbooks import BANK_MAX_BYTES, QBO_JOURNAL_HEADER, QuickBooksWriter
from factories import make_report, record, topup_record, usage_record, with_entries

GOLDEN = Path(__file__).parent / "golden"
MAPPING = load_accounts(GOLDEN / "accounts_sample.toml")
HOSTILE_MODEL = 'evil\tmodel\n"=cmd|\' /C calc\'!A0" café — ünïcode 🚀'
HOSTILE_METHOD = '=HYPERLINK("http://x")\r\ntab\there'


def with_journal(raws: list[dict], **kwargs) -> Report:
    return make_report(raws, mapping=kwargs.pop("mapping", MAPPING), **kwargs)


def golden_report() -> Report:
    """The worked example (docs/booking.md) in small: every kind of entry, classes, a sub-account, a Name-free journal."""
    raws = [
        topup_record("100.00", payment_method="card", created_at="2024-01-03T09:00:00Z", id="tu_1001"),
        record("refund", "-20.00", model=None, payment_method="card", created_at="2024-01-20T09:00:00Z", id="rf_2001"),
        usage_record("model-a", "-10.000", id="u1"),
        usage_record("model-a", "-0.004", id="u2"),
        usage_record("model-b", "-5.004", id="u3"),
        usage_record("model-c", "-2.004", id="u4"),
        usage_record("model-d", "-0.008", id="u5"),
        usage_record("google/veo3", "-1.25", id="u6"),
        usage_record("google/imagen", "-0.0025", id="u7"),
        usage_record("google/imagen", "-0.0040", id="u8"),
        usage_record("model-a", "0.50", id="rt_1", created_at="2024-01-16T08:00:00Z"),
    ]
    return with_journal(raws)


def mixed_raws() -> list[dict]:
    return [
        topup_record("100.00", payment_method="card", created_at="2024-01-02T09:00:00Z"),
        topup_record("25.00", payment_method=HOSTILE_METHOD, created_at="2024-01-05T09:00:00Z"),
        topup_record("50.00", status="failed"),
        *[usage_record("model-a", "-0.0025", created_at=f"2024-01-{d:02d}T10:00:00Z") for d in range(1, 29)],
        *[usage_record(HOSTILE_MODEL, "-0.0045", created_at="2024-01-07T10:00:00Z") for _ in range(7)],
        usage_record("google/veo3", "-3.3333"),
        usage_record("google/veo3", "0.3333", created_at="2024-01-16T10:00:00Z"),
        record("refund", "1.005", model=None),
        record("refund", "-10.00", model=None, payment_method="paypal"),
        topup_record("-2.00"),
    ]


def parse_iif(data: bytes) -> list[list[str]]:
    assert not data.startswith(b"\xef\xbb\xbf")
    text = data.decode("ascii")  # raises on anything non-ASCII
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "") and "\r" not in text.replace("\r\n", "")
    return [row.split("\t") for row in text[:-2].split("\r\n")]


def iif_blocks(rows: list[list[str]]) -> tuple[dict[str, list[str]], list[list[list[str]]]]:
    """Check every row against its header; return headers and the TRNS..ENDTRNS blocks."""
    headers: dict[str, list[str]] = {}
    blocks: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for row in rows:
        if row[0].startswith("!"):
            headers[row[0][1:]] = row
            continue
        assert len(row) == len(headers[row[0]]), row  # exactly its header's field count
        if row[0] == "TRNS":
            assert current is None
            current = [row]
        elif row[0] == "SPL":
            assert current is not None
            current.append(row)
        elif row[0] == "ENDTRNS":
            assert current is not None and len(current) >= 2
            blocks.append(current)
            current = None
    assert current is None
    return headers, blocks


def read_csv(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == data.count(b"\n")  # CRLF only
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_iif_matches_the_golden_file(tmp_path):
    # golden/sample.iif was checked by hand against golden_report() and accounts_sample.toml
    # (the booking rules: docs/booking.md). IIF cannot carry comments, so the derivation is here:
    #   WS2401T001 01/03  top-up tu_1001 100.00 via card: Dr prepaid 100.00 / Cr Company Visa (card's account)
    #   WS2401P001 01/20  refund rf_2001 -20.00 paid out to card: Dr Company Visa 20.00 / Cr prepaid
    #   WS2401R    01/31  refunded task rt_1 +0.50 of model-a: Dr prepaid 0.50 / Cr AI API Usage, class model-a
    #   WS2401U    01/31  usage, exact sums per (account, class), then cents by largest remainder:
    #       model-a  10.000 + 0.004 = 10.004 -> floor 10.00, remainder 0.4 c
    #       model-b  5.004 -> 5.00, 0.4 c          model-c  2.004 -> 2.00, 0.4 c
    #       model-d  0.008 -> 0.00, 0.8 c
    #       google/imagen (rule google/*: AI API Usage:Google, class AI Models:Google)
    #                0.0025 + 0.0040 = 0.0065 -> 0.00, 0.65 c
    #       google/veo3 (exact rule: Video Generation; class from google/veo*: AI Models:Google Video)
    #                1.25 -> 1.25, 0 c
    #     total 18.2765 -> 18.28 (ROUND_HALF_UP); floors give 18.25, so 3 cents go to the largest
    #     remainders: model-d (0.8), google/imagen (0.65), then of the three 0.4 ties the largest
    #     amount, model-a. Lines: 10.01 / 5.00 / 2.00 / 0.01 / 0.01 / 1.25; prepaid -18.28 (8 tasks).
    #   Entries are in date order; the lists name each account and class once, parents first
    #   ("Prepaid Expenses" takes its child's OCASSET type), with the mapping's descriptions.
    paths = QuickBooksWriter(RenderOptions(iif_lists=True)).write(golden_report(), tmp_path)
    assert [p.name for p in paths] == ["quickbooks.iif", "quickbooks_online_journal.csv", "quickbooks_online_bank.csv"]
    assert (tmp_path / "quickbooks.iif").read_bytes() == (GOLDEN / "sample.iif").read_bytes()


def test_iif_structure_sums_dates_and_hostile_text(tmp_path):
    report = with_journal(mixed_raws())
    QuickBooksWriter(RenderOptions(iif_lists=True)).write(report, tmp_path)
    rows = parse_iif((tmp_path / "quickbooks.iif").read_bytes())
    headers, blocks = iif_blocks(rows)
    columns = ["TRNSTYPE", "DATE", "ACCNT", "NAME", "CLASS", "AMOUNT", "DOCNUM", "MEMO"]
    assert headers["TRNS"] == ["!TRNS", "TRNSID", *columns]
    assert headers["SPL"] == ["!SPL", "SPLID", *columns]
    assert headers["ENDTRNS"] == ["!ENDTRNS"]
    assert headers["ACCNT"] == ["!ACCNT", "NAME", "ACCNTTYPE", "DESC"]
    assert [row[0] for row in rows].index("!TRNS") > [row[0] for row in rows].index("ACCNT")  # lists first
    assert len(blocks) == len(report.journal)
    for block, entry in zip(blocks, report.journal):
        assert sum(Decimal(row[7]) for row in block) == 0
        assert all(re.fullmatch(r"-?\d+\.\d{2}", row[7]) for row in block)
        assert all(re.fullmatch(r"\d{2}/\d{2}/\d{4}", row[3]) for row in block)
        assert {row[2] for row in block} == {"GENERAL JOURNAL"} and {row[8] for row in block} == {entry.number}
        assert all(row[1] == "" for row in block)
    text = (tmp_path / "quickbooks.iif").read_bytes().decode("ascii")
    assert '"' not in text and "evil model '=cmd|' /C calc'!A0' cafe" in text
    memos = [row[-1] for row in rows if row[0] in ("TRNS", "SPL")]
    assert not any(memo.startswith(("=", "+", "-", "@")) for memo in memos)


def test_iif_lists_put_each_parent_once_before_its_children(tmp_path):
    QuickBooksWriter(RenderOptions(iif_lists=True)).write(golden_report(), tmp_path)
    rows = parse_iif((tmp_path / "quickbooks.iif").read_bytes())
    accounts = [(row[1], row[2]) for row in rows if row[0] == "ACCNT"]
    names = [name for name, _ in accounts]
    assert len(names) == len(set(names))
    for index, name in enumerate(names):
        parent = name.rpartition(":")[0]
        assert not parent or parent in names[:index]
    assert ("Prepaid Expenses", "OCASSET") in accounts  # unmapped parent: its child's type
    assert ("AI API Usage", "EXP") in accounts and ("AI API Usage:Google", "EXP") in accounts
    classes = [row[1] for row in rows if row[0] == "CLASS"]
    assert classes[0] == "AI Models" and "AI Models:Google Video" in classes


def test_iif_without_lists_starts_with_the_journal_headers(tmp_path):
    QuickBooksWriter().write(golden_report(), tmp_path)
    assert (tmp_path / "quickbooks.iif").read_bytes().startswith(b"!TRNS\tTRNSID\tTRNSTYPE\t")


def test_qbo_journal_csv_has_one_side_per_row_and_balances(tmp_path):
    report = with_journal(mixed_raws())
    QuickBooksWriter().write(report, tmp_path)
    header, *rows = read_csv(tmp_path / "quickbooks_online_journal.csv")
    assert header == QBO_JOURNAL_HEADER == ["JournalNo", "JournalDate", "AccountName", "Debits", "Credits", "Description", "Name", "Class"]
    assert len(rows) == sum(len(e.lines) for e in report.journal)
    totals: dict[str, Decimal] = {}
    for number, day, account, debit, credit, description, name, klass in rows:
        assert (debit == "") != (credit == "")
        amount = debit or credit
        assert re.fullmatch(r"\d+\.\d{2}", amount) and Decimal(amount) > 0
        assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", day) and len(number) <= 11
        assert not description.startswith(("=", "+", "-", "@")) and "\n" not in description and "\t" not in description
        totals[number] = totals.get(number, Decimal(0)) + Decimal(debit or 0) - Decimal(credit or 0)
    assert set(totals) == {e.number for e in report.journal}
    assert set(totals.values()) == {Decimal(0)}


def test_postpaid_lines_carry_the_vendor_name(tmp_path):
    text = (GOLDEN / "accounts_sample.toml").read_text().replace("postpaid = false", "postpaid = true")
    (tmp_path / "m.toml").write_text(text)
    accounts = load_accounts(tmp_path / "m.toml")
    report = make_report([usage_record("model-a", "-2.00")], mapping=accounts)
    QuickBooksWriter(RenderOptions(iif_lists=True)).write(report, tmp_path / "out")
    _, *rows = read_csv(tmp_path / "out" / "quickbooks_online_journal.csv")
    assert [(r[2], r[4], r[6]) for r in rows if r[4]] == [("Accounts Payable", "2.00", "WaveSpeedAI")]
    iif = parse_iif((tmp_path / "out" / "quickbooks.iif").read_bytes())
    assert ["VEND", "WaveSpeedAI"] in iif and ["ACCNT", "Accounts Payable", "AP", ""] in iif


def bank_amounts(folder: Path, pattern: str = "quickbooks_online_bank*.csv") -> tuple[list[Path], list[list[str]]]:
    paths = sorted(folder.glob(pattern))
    rows = []
    for path in paths:
        header, *data = read_csv(path)
        assert header == ["Date", "Description", "Amount"]
        rows.extend(data)
    return paths, rows


def test_bank_csv_rows_are_the_journals_prepaid_lines(tmp_path):
    report = with_journal(mixed_raws())
    QuickBooksWriter().write(report, tmp_path)
    paths, rows = bank_amounts(tmp_path)
    assert [p.name for p in paths] == ["quickbooks_online_bank.csv"]
    prepaid = [(e, l) for e in report.journal for l in e.lines if l.account == MAPPING.prepaid]
    assert [(day, amount) for day, _, amount in rows] == [
        (e.date.strftime("%m/%d/%Y"), format_cents(l.amount_cents)) for e, l in prepaid
    ]
    assert [description.rsplit(" [", 1)[1] for _, description, _ in rows] == [f"{e.number}]" for e, _ in prepaid]
    for day, description, amount in rows:
        assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", day) and re.fullmatch(r"-?\d+\.\d{2}", amount)
        assert Decimal(amount) != 0 and not description.startswith(("=", "+", "-", "@"))
    assert any(d.startswith("WaveSpeedAI top-up") and a == "100.00" for _, d, a in rows)


@pytest.mark.parametrize("count, parts", [(999, 1), (1000, 2)])
def test_bank_csv_splits_above_999_data_rows(tmp_path, count, parts):
    raws = [topup_record("1.00", created_at=f"2024-01-{1 + i % 28:02d}T00:00:00Z") for i in range(count)]
    QuickBooksWriter().write(with_journal(raws), tmp_path)
    paths, rows = bank_amounts(tmp_path)
    assert len(rows) == count
    if parts == 1:
        assert [p.name for p in paths] == ["quickbooks_online_bank.csv"]
    else:
        assert [p.name for p in paths] == ["quickbooks_online_bank_part1.csv", "quickbooks_online_bank_part2.csv"]
        assert [len(read_csv(p)) for p in paths] == [1000, 2]  # header included


def test_bank_csv_splits_above_350_kb(tmp_path):
    # 700 top-ups paid with long method names: one row each, ~560 bytes a row, about 390 KB in all
    raws = [topup_record("1.00", payment_method=f"card {i:04d} " + "x" * 500) for i in range(700)]
    QuickBooksWriter().write(with_journal(raws), tmp_path)
    paths, rows = bank_amounts(tmp_path)
    assert BANK_MAX_BYTES == 350_000  # Intuit's 350 KB, in bytes
    assert [p.name for p in paths] == ["quickbooks_online_bank_part1.csv", "quickbooks_online_bank_part2.csv"]
    assert all(p.stat().st_size <= BANK_MAX_BYTES for p in paths)
    assert paths[0].stat().st_size > BANK_MAX_BYTES - 1024  # filled up before splitting
    assert len(rows) == 700 and sum(Decimal(a) for *_, a in rows) == Decimal("700.00")


def test_each_currency_gets_its_own_files(tmp_path):
    raws = [usage_record("model-a", "-1.004", currency="USD"), usage_record("model-a", "-2.50", currency="EUR"),
            topup_record("5.00", currency="EUR")]
    report = with_journal(raws)
    names = [p.name for p in QuickBooksWriter().write(report, tmp_path)]
    assert names == [
        "quickbooks_EUR.iif", "quickbooks_online_journal_EUR.csv", "quickbooks_online_bank_EUR.csv",
        "quickbooks_USD.iif", "quickbooks_online_journal_USD.csv", "quickbooks_online_bank_USD.csv",
    ]
    _, eur = bank_amounts(tmp_path, "quickbooks_online_bank_EUR.csv")
    assert sum(Decimal(a) for *_, a in eur) == Decimal("2.50")
    _, usd_journal = bank_amounts(tmp_path, "quickbooks_online_bank_USD.csv")
    assert [a for *_, a in usd_journal] == ["-1.00"]
    usd_rows = read_csv(tmp_path / "quickbooks_online_journal_USD.csv")[1:]
    assert {r[0] for r in usd_rows} == {e.number for e in report.journal if e.currency == "USD"}


def test_a_broken_journal_is_refused_before_any_file_is_written(tmp_path):
    report = with_journal([topup_record("1.00")])
    entry = report.journal[0]
    unbalanced = with_entries(report, (replace(entry, lines=(entry.lines[0], replace(entry.lines[1], amount_cents=-99))),))
    with pytest.raises(ExportError, match="does not balance"):
        QuickBooksWriter().write(unbalanced, tmp_path)
    too_long = with_entries(report, (replace(entry, number="WS2401T00001"),))
    with pytest.raises(ExportError, match="journal number"):
        QuickBooksWriter().write(too_long, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_period_writes_headers_only(tmp_path):
    report = with_journal([usage_record("model-a", "-1.00", status="failed")])
    QuickBooksWriter().write(report, tmp_path)
    assert (tmp_path / "quickbooks.iif").read_bytes().count(b"\r\n") == 3
    assert read_csv(tmp_path / "quickbooks_online_bank.csv") == [["Date", "Description", "Amount"]]


def test_usage_rows_round_together_not_one_by_one(tmp_path):
    # 400 tasks of 0.0025 on one day: 1.00 exactly, though each task alone rounds to 0.00
    raws = [usage_record("model-a", "-0.0025") for _ in range(400)]
    QuickBooksWriter().write(with_journal(raws), tmp_path)
    _, rows = bank_amounts(tmp_path)
    assert rows == [["01/31/2024", "WaveSpeedAI usage 2024-01 (400 tasks, UTC) [WS2401U]", "-1.00"]]
