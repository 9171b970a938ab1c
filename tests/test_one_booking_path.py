"""One booking path: every book format moves the prepaid account by the same cents.

IIF, the QuickBooks Online journal CSV, the QuickBooks Online bank CSV (all parts), Beancount and
the workbook's Journal sheet are each parsed back from the files the writers wrote, never from
the in-memory journal, and compared per currency; every entry balances in each (docs/booking.md).
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from beancount import loader
from beancount.core import data as bean
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from exporter.books.mapping_toml import load_mapping
from exporter.cli import cli
from exporter.money import format_micros
from exporter.writers.beancount import BeancountWriter
from exporter.writers.excel import ExcelWriter
from exporter.writers.quickbooks import QuickBooksWriter
from factories import archive_of, make_report, record, source_folder
from loopback import record_line

GOLDEN = Path(__file__).parent / "golden"
MAPPING = load_mapping(GOLDEN / "accounts_sample.toml")
# the same accounts, and [[keys]] rules routing API keys to classes (docs/booking.md, "Chargeback by API key")
KEYS_TOML = '[[keys]]\nname = "prod-app"\nclass = "Projects:Production"\n[[keys]]\nname = "client-*"\nclass = "Clients:Other"\n'


def _keyed_mapping():
    with tempfile.TemporaryDirectory() as temporary:
        path = Path(temporary) / "accounts_keys.toml"
        path.write_text((GOLDEN / "accounts_sample.toml").read_text(encoding="utf-8") + KEYS_TOML, encoding="utf-8")
        return load_mapping(path)


KEY_MAPPING = _keyed_mapping()
PREPAID = MAPPING.prepaid  # "Prepaid Expenses:WaveSpeedAI Credits"
PREPAID_BEANCOUNT = "Assets:Prepaid-Expenses:WaveSpeedAI-Credits"  # its OCASSET type makes it an asset
MODELS = ["model-a", "model-b", "google/veo3", "google/imagen", "unmapped/x"]

Nets = dict[str, int]  # currency -> net cents on the prepaid account (non-zero only)


def cents(text: str) -> int:
    value = Decimal(text) * 100
    assert value == value.to_integral_value(), text  # every book amount is whole cents
    return int(value)


def non_zero(nets: dict[str, int]) -> Nets:
    return {currency: net for currency, net in nets.items() if net}


def currency_of(name: str, stem: str) -> str | None:
    """``quickbooks_EUR.iif`` -> EUR; the plain name (one currency) -> None."""
    rest = re.sub(r"_part\d+$", "", Path(name).stem)[len(stem):]
    return rest.lstrip("_") or None


def per_file(folder: Path, stem: str, suffix: str) -> dict[str | None, list[Path]]:
    files: dict[str | None, list[Path]] = defaultdict(list)
    for path in sorted(folder.glob(f"{stem}*{suffix}")):
        if re.fullmatch(rf"{stem}(_[A-Z0-9-]+)?(_part\d+)?{re.escape(suffix)}", path.name):
            files[currency_of(path.name, stem)].append(path)
    return files


def iif_nets(folder: Path) -> dict[str | None, int]:
    nets: dict[str | None, int] = defaultdict(int)
    for currency, (path,) in per_file(folder, "quickbooks", ".iif").items():
        block: list[list[str]] = []
        for row in (line.split("\t") for line in path.read_bytes().decode("ascii").split("\r\n") if line):
            if row[0] in ("TRNS", "SPL"):
                block.append(row)
                if row[4] == PREPAID:
                    nets[currency] += cents(row[7])
            elif row[0] == "ENDTRNS":
                assert sum(cents(r[7]) for r in block) == 0, block  # the entry balances
                block = []
        assert block == []
    return nets


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))


def qbo_journal_nets(folder: Path) -> dict[str | None, int]:
    nets: dict[str | None, int] = defaultdict(int)
    for currency, (path,) in per_file(folder, "quickbooks_online_journal", ".csv").items():
        balance: dict[str, int] = defaultdict(int)
        for row in csv_rows(path):
            amount = cents(row["Debits"] or "0") - cents(row["Credits"] or "0")
            balance[row["JournalNo"]] += amount
            if row["AccountName"] == PREPAID:
                nets[currency] += amount
        assert set(balance.values()) <= {0}, balance  # every entry balances
    return nets


def qbo_bank_nets(folder: Path) -> dict[str | None, int]:
    nets: dict[str | None, int] = defaultdict(int)
    for currency, paths in per_file(folder, "quickbooks_online_bank", ".csv").items():
        nets[currency] += sum(cents(row["Amount"]) for path in paths for row in csv_rows(path))
    return nets


def beancount_nets(accounts: Path, path: Path) -> tuple[Nets, set[str]]:
    """The prepaid account's nets, and the currencies the ledger's transactions use (the pack's
    accounts.beancount and transaction file loaded together, as a ledger would)."""
    entries, errors, _ = loader.load_string(accounts.read_text(encoding="utf-8") + path.read_text(encoding="utf-8"))
    assert errors == [], errors
    nets: dict[str, int] = defaultdict(int)
    for entry in entries:
        if isinstance(entry, bean.Transaction):
            balance: dict[str, Decimal] = defaultdict(Decimal)
            for posting in entry.postings:
                balance[posting.units.currency] += posting.units.number
                if posting.account == PREPAID_BEANCOUNT:
                    nets[posting.units.currency] += cents(str(posting.units.number))
            assert set(balance.values()) <= {0}, entry  # exactly, not within Beancount's tolerance
    return non_zero(nets), set(nets)


def journal_sheet_nets(path: Path) -> Nets:
    book = load_workbook(path, read_only=True)
    if "Journal" not in book.sheetnames:
        return {}
    rows = list(book["Journal"].iter_rows(min_row=2, values_only=True))
    nets: dict[str, int] = defaultdict(int)
    balance: dict[str, int] = defaultdict(int)
    for number, _day, account, debit, credit, *_rest, currency in rows:
        if str(number).startswith("Total "):
            continue
        # openpyxl reads numbers as floats: their shortest text is the two-decimal text written
        amount = cents(repr(debit or 0)) - cents(repr(credit or 0))
        balance[number] += amount
        if account == PREPAID:
            nets[currency] += amount
    assert set(balance.values()) <= {0}, balance
    return non_zero(nets)


def by_currency(nets: dict[str | None, int], currencies: set[str]) -> Nets:
    """QuickBooks files name their currency only when the journal has several; plain names are
    the one currency of the journal (``currencies``: those of the Beancount ledger)."""
    if None in nets:
        assert len(nets) == 1 and len(currencies) <= 1
        return non_zero({next(iter(currencies), "?"): nets[None]})
    return non_zero({str(currency): net for currency, net in nets.items()})


DAY = st.builds("2024-01-{:02d}T{:02d}:30:00Z".format, st.integers(1, 31), st.integers(0, 23))
CURRENCY = st.sampled_from(["USD", "EUR"])
STATUS = st.sampled_from(["completed"] * 5 + ["failed"])
MICROS = st.integers(1, 3_000_000)  # up to 3.00, most of them sub-cent or not whole cents


KEY = st.sampled_from([None, "", "prod-app", "client-acme", "client-beta", "ops"])


def raw(kind: str, micros: int, model: str | None, method: str | None, **fields) -> dict:
    return record(kind, format_micros(micros, 0), model=model, payment_method=method, **fields)


RECORD = st.one_of(
    # usage (negative, names a model)
    st.builds(raw, st.just("usage"), MICROS.map(lambda m: -m), st.sampled_from(MODELS), st.none(),
              created_at=DAY, currency=CURRENCY, status=STATUS, api_key_name=KEY),
    # a refunded task (positive, names a model), as usage or as a refund record
    st.builds(raw, st.sampled_from(["usage", "refund"]), MICROS, st.sampled_from(MODELS), st.none(),
              created_at=DAY, currency=CURRENCY, status=STATUS, api_key_name=KEY),
    # a top-up
    st.builds(raw, st.just("topup"), MICROS.map(lambda m: m * 50), st.none(), st.sampled_from(["card", "paypal", "x"]),
              created_at=DAY, currency=CURRENCY, status=STATUS),
    # a negative refund: paid out to the card
    st.builds(raw, st.just("refund"), MICROS.map(lambda m: -m * 10), st.none(), st.sampled_from(["card", "paypal"]),
              created_at=DAY, currency=CURRENCY, status=STATUS),
    # a credit back without a model, and something only suspense can take (a negative top-up)
    st.builds(raw, st.just("refund"), MICROS, st.none(), st.none(), created_at=DAY, currency=CURRENCY),
    st.builds(raw, st.just("topup"), MICROS.map(lambda m: -m), st.none(), st.just("card"),
              created_at=DAY, currency=CURRENCY),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(RECORD, max_size=25), granularity=st.sampled_from(["monthly", "daily"]),
       mapping=st.sampled_from([MAPPING, KEY_MAPPING]))
def test_every_book_moves_the_prepaid_account_by_the_same_cents(raws, granularity, mapping):
    report = make_report(raws, mapping=mapping, granularity=granularity)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        QuickBooksWriter().write(report, folder)
        accounts, ledger = BeancountWriter().write(report, folder)
        (workbook,) = ExcelWriter().write(report, folder)

        beancount, currencies = beancount_nets(accounts, ledger)
        iif = by_currency(iif_nets(folder), currencies)
        journal_csv = by_currency(qbo_journal_nets(folder), currencies)
        bank_csv = by_currency(qbo_bank_nets(folder), currencies)
        sheet = journal_sheet_nets(workbook)

    assert iif == journal_csv == bank_csv == beancount == sheet
    in_memory = defaultdict(int)
    for entry in report.journal:
        in_memory[entry.currency] += sum(line.amount_cents for line in entry.lines if line.account == PREPAID)
    assert iif == non_zero(in_memory)  # and the files say what the journal says


def test_a_non_ascii_account_is_refused_with_quickbooks_and_fine_without(tmp_path):
    mapping = tmp_path / "accounts.toml"
    text = (GOLDEN / "accounts_sample.toml").read_text(encoding="utf-8")
    mapping.write_text(text.replace('account = "AI API Usage"\ntype = "EXP"\ndescription',
                                    'account = "Dépenses IA"\ntype = "EXP"\ndescription', 1), encoding="utf-8")
    assert "Dépenses IA" in mapping.read_text(encoding="utf-8")
    source = source_folder(tmp_path, archive_of(record_line("txn_1", "-1.25", model="model-a")))

    def export(formats: str, out: str):
        return CliRunner().invoke(cli, ["export", "--from-source", str(source), "--out", str(tmp_path / out),
                                        "--accounts", str(mapping), "--format", formats, "-q"])

    refused = export("csv,quickbooks", "refused")
    assert refused.exit_code == 2
    assert "'Dépenses IA'" in refused.stderr and "ASCII" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "refused").exists()

    written = export("csv,xlsx", "written")
    assert written.exit_code == 0, written.output
    workbook = load_workbook(tmp_path / "written" / "2024-01" / "wavespeed_2024-01.xlsx", read_only=True)
    accounts = {row[2] for row in workbook["Journal"].iter_rows(min_row=2, values_only=True)}
    assert "Dépenses IA" in accounts  # kept as the mapping spells it
