"""Spend per API key (README, "Spend per API key"; docs/booking.md, "Chargeback by API key").

by_key ties to by_model and the totals; by_key.csv and the Summary/report blocks appear only when
records name keys; [[keys]] rules route a key's usage and refunded tasks to a class in every
book format, the key's class winning over the model's.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections import defaultdict
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data as bean
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from exporter.archive import read_archive
from exporter.books.mapping_toml import load_mapping
from exporter.cli import cli
from exporter.errors import ConfigError, DataError
from exporter.extract.records import parse_records
from exporter.money import MICROS_PER_CENT, format_micros
from exporter.writers.beancount import BeancountWriter
from exporter.writers.csv_files import CsvWriter
from exporter.writers.excel import ExcelWriter
from exporter.writers.figures import TOP_KEYS, compute
from exporter.writers.focus import FocusWriter
from exporter.writers.html_report import render
from exporter.writers.quickbooks import QuickBooksWriter
from exporter.writers.xero import XeroWriter
from factories import archive_of, make_report, record, source_folder, topup_record, usage_record

ROOT = Path(__file__).parents[1]
KEYS_TOML = """
[[keys]]
name = "prod-app"
class = "Projects:Production"
[[keys]]
name = "client-*"
class = "Clients:Other"
[[keys]]
name = "client-acme"
class = "Clients:Acme"
"""


def keyed_mapping(tmp_path: Path, template: Path = ROOT / "tests" / "golden" / "accounts_sample.toml"):
    path = tmp_path / f"keys_{template.stem}.toml"
    path.write_text(template.read_text(encoding="utf-8") + KEYS_TOML, encoding="utf-8")
    return load_mapping(path)


def keyed(kind: str, amount: str, model: str = "model-a", key: str | None = "prod-app", **fields):
    return record(kind, amount, model=model, api_key_name=key, api_key_id=None if key is None else f"ak_{key}", **fields)


# -- the columns --------------------------------------------------------------------------------


def test_key_fields_are_optional_text_on_both_paths():
    raws = [keyed("usage", "-1"), usage_record("m", "-2"), record("usage", "-3", api_key_name=None, api_key_id=None)]
    frame = parse_records(raws, str)
    assert list(frame["api_key_name"]) == ["prod-app", "", ""] and list(frame["api_key_id"]) == ["ak_prod-app", "", ""]
    with pytest.raises(DataError, match=r"'api_key_name' must be a string"):
        parse_records([keyed("usage", "-1"), record("usage", "-1", api_key_name=7)], str)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"'api_key_id' is not valid Unicode"):
        parse_records([record("usage", "-1", api_key_id="\ud800")], str)


def test_archives_with_and_without_keys_read_back(tmp_path):
    old = '{"id":"a","type":"usage","amount":-1.5,"currency":"USD","status":"completed","model":"m","created_at":"2024-01-15T10:00:00Z"}'
    new = old.replace('"id":"a"', '"id":"b"').replace('"model":"m"', '"model":"m","api_key_name":"prod-app","api_key_id":"ak_1"')
    frame = read_archive(source_folder(tmp_path, archive_of(old, new)))
    assert list(frame["api_key_name"]) == ["", "prod-app"] and list(frame["api_key_id"]) == ["", "ak_1"]


# -- by_key ties ---------------------------------------------------------------------------------

KEY = st.sampled_from([None, "", "prod-app", "client-acme", "client-beta", "ops"])
MICROS = st.integers(1, 3_000_000)
RAW = st.builds(
    lambda kind, micros, sign, model, key, currency, status: record(
        kind, format_micros(sign * micros, 0), model=model, currency=currency, status=status,
        api_key_name=key, api_key_id=None if key is None else f"id-{key}"),
    st.sampled_from(["usage", "usage", "refund", "topup"]), MICROS, st.sampled_from([-1, -1, 1]),
    st.sampled_from(["model-a", "model-b", "google/veo3", None]), KEY, st.sampled_from(["USD", "EUR"]),
    st.sampled_from(["completed"] * 4 + ["pending"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(RAW, max_size=30))
def test_spend_per_key_ties_to_by_model_and_the_totals(raws):
    report = make_report(raws)
    by_key, by_model = report.summaries.by_key, report.summaries.by_model
    if not any(raw.get("api_key_name") or raw.get("api_key_id") for raw in raws):
        assert by_key.empty
        return
    for currency in set(by_model["currency"]) | set(by_key["currency"]):
        keys = by_key[by_key["currency"] == currency]
        models = by_model[by_model["currency"] == currency]
        assert int(keys["usage_micros"].sum()) == int(models["amount_micros"].sum())
        assert int(keys["refunds_micros"].sum()) == int(models["refunds_micros"].sum())
        assert int(keys["count"].sum()) == int(models["count"].sum())
        # and to the period's records, summed here without the transform
        done = [(raw["type"], int(Decimal(raw["amount"]) * 1_000_000), raw.get("model")) for raw in raws
                if raw["currency"] == currency and raw["status"] == "completed"]
        assert int(keys["usage_micros"].sum()) == sum(m for kind, m, _ in done if kind == "usage" and m < 0)
        assert int(keys["refunds_micros"].sum()) == sum(m for kind, m, model in done if kind != "topup" and m > 0 and model)
    assert (by_key["net_micros"] == by_key["usage_micros"] + by_key["refunds_micros"]).all()
    for _, part in by_key.groupby("currency"):
        assert list(part["net_micros"]) == sorted(part["net_micros"])  # biggest spend first
    figures = compute(report)
    for c in figures.currencies:
        if c.keys:
            assert sum(c.key_cents()) == sum(c.table_cents())  # the key block foots to the AI spend


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))


def test_by_key_csv_reads_back_and_is_written_only_with_keys(tmp_path):
    report = make_report([
        keyed("usage", "-1.25"), keyed("usage", "-0.0025"), keyed("usage", "+0.25", key="prod-app"),
        keyed("usage", "-3", model="model-b", key="=client-acme"), usage_record("model-a", "-0.5"), topup_record(),
    ])
    (tmp_path / "keyed").mkdir()
    paths = CsvWriter().write(report, tmp_path / "keyed")
    assert tmp_path / "keyed" / "by_key.csv" in paths
    rows = read_csv(tmp_path / "keyed" / "by_key.csv")
    assert rows == [
        {"api_key_name": "'=client-acme", "api_key_id": "ak_=client-acme", "currency": "USD",
         "count": "1", "usage": "-3.00", "refunds": "0.00", "net": "-3.00"},
        {"api_key_name": "prod-app", "api_key_id": "ak_prod-app", "currency": "USD", "count": "2",
         "usage": "-1.2525", "refunds": "0.25", "net": "-1.0025"},
        {"api_key_name": "", "api_key_id": "", "currency": "USD", "count": "1", "usage": "-0.50", "refunds": "0.00", "net": "-0.50"},
    ]
    legacy = make_report([usage_record("model-a", "-0.5"), topup_record()])
    (tmp_path / "legacy").mkdir()
    assert not any(p.name == "by_key.csv" for p in CsvWriter().write(legacy, tmp_path / "legacy"))


def test_an_export_lists_by_key_csv_in_its_manifest(tmp_path):
    line = ('{"id":"%s","type":"usage","amount":-1.25,"currency":"USD","status":"completed","model":"m",'
            '"created_at":"2024-01-15T10:00:00Z"%s}')
    keyed_source = source_folder(tmp_path / "k", archive_of(line % ("a", ',"api_key_name":"prod-app","api_key_id":"ak_1"'),
                                                            line % ("b", "")))
    legacy_source = source_folder(tmp_path / "l", archive_of(line % ("a", ""), line % ("b", "")))
    for source, out, expected in ((keyed_source, "keyed", True), (legacy_source, "legacy", False)):
        result = CliRunner().invoke(cli, ["export", "--from-source", str(source), "--out", str(tmp_path / out),
                                          "--format", "csv,xlsx,html", "-q"])
        assert result.exit_code == 0, result.output
        pack = tmp_path / out / "2024-01"
        names = {entry["name"] for entry in json.loads((pack / "manifest.json").read_text())["files"]}
        assert ("by_key.csv" in names) is expected and (pack / "by_key.csv").exists() is expected
    rows = read_csv(tmp_path / "keyed" / "2024-01" / "by_key.csv")
    assert [(r["api_key_name"], r["net"]) for r in rows] == [("", "-1.25"), ("prod-app", "-1.25")]


def test_legacy_transactions_csv_only_gains_two_empty_columns(tmp_path):
    raws = [usage_record("a,b", "-0.0025", id="x1"), topup_record("10", id="x2"), usage_record('=q"', "-1", id="x3")]
    CsvWriter().write(make_report(raws), tmp_path)
    lines = (tmp_path / "transactions.csv").read_bytes().decode("utf-8").split("\r\n")
    assert lines[0].endswith(",amount,api_key_name,api_key_id")
    assert all(line.endswith(",,") for line in lines[1:-1]) and lines[-1] == ""
    # the same records written with the key columns explicitly null give the same bytes
    nulls = [{**raw, "api_key_name": None, "api_key_id": None} for raw in raws]
    (tmp_path / "nulls").mkdir()
    CsvWriter().write(make_report(nulls), tmp_path / "nulls")
    assert (tmp_path / "nulls" / "transactions.csv").read_bytes() == (tmp_path / "transactions.csv").read_bytes()


# -- the mapping ---------------------------------------------------------------------------------


def test_key_rules_load_most_specific_first_and_key_class_wins(tmp_path):
    mapping = keyed_mapping(tmp_path)
    assert [rule.pattern for rule in mapping.keys] == ["client-acme", "prod-app", "client-*"]
    assert mapping.key_class("client-acme") == "Clients:Acme" and mapping.key_class("client-x") == "Clients:Other"
    assert mapping.key_class("") == "" and mapping.key_class("other") == ""
    assert mapping.line_for("model-a", "prod-app") == ("AI API Usage", "Projects:Production", True)
    assert mapping.line_for("model-a", "unknown") == ("AI API Usage", "AI Models:model-a", True)
    assert {"Projects:Production", "Clients:Acme", "Clients:Other"} <= set(mapping.classes)


@pytest.mark.parametrize(("toml", "message"), [
    ('keys = "x"', "keys: must be an array of tables"),
    ('[[keys]]\nname = "a"', r"keys\[0\]\.class: missing"),
    ('[[keys]]\nclass = "A"', r"keys\[0\]\.name: missing"),
    ('[[keys]]\nname = "a*b"\nclass = "A"', r"keys\[0\]\.name: an API key's exact name"),
    ('[[keys]]\nname = "a"\nclass = "A"\n[[keys]]\nname = "a"\nclass = "B"', r"keys\[1\]\.name: 'a' is listed twice"),
    ('[[keys]]\nname = "a"\nclass = ""', r"keys\[0\]\.class: may not be empty"),
    ('[[keys]]\nname = "a"\nclass = "=A"', r"keys\[0\]\.class: level '=A'"),
    ('[[keys]]\nname = "a"\nclass = "A"\naccount = "X"', r"keys\[0\]\.account: unknown key"),
])
def test_bad_key_rules_name_the_key(tmp_path, toml, message):
    path = tmp_path / "m.toml"
    sample = (ROOT / "tests" / "golden" / "accounts_sample.toml").read_text(encoding="utf-8")
    # a top-level key goes before the tables, an array of tables anywhere after them
    path.write_text(f"{sample}\n{toml}\n" if toml.startswith("[[") else f"{toml}\n{sample}")
    with pytest.raises(ConfigError, match=message):
        load_mapping(path)


ROUTED = [
    keyed("usage", "-1.004", key="prod-app", id="u1"), keyed("usage", "-2.003", key="prod-app", model="model-b", id="u2"),
    keyed("usage", "-0.5", key="client-acme", id="u3"), keyed("usage", "-0.25", key="client-beta", id="u4"),
    keyed("usage", "+0.1", key="client-acme", id="r1"), keyed("usage", "-0.75", key=None, id="u5"),
    keyed("usage", "-0.125", key="ops", id="u6"), topup_record("50", id="t1"),
]
# exact per class: prod-app 3.007; client-acme 0.5 - 0.1 = 0.4; client-beta 0.25; no key or ops: model-a's
# class, 0.875; the usage entry posts 4.63 and the missing cent goes to the largest remainder (3.007)
EXPECTED = {"Projects:Production": Decimal("3.01"), "Clients:Acme": Decimal("0.40"),
            "Clients:Other": Decimal("0.25"), "AI Models:model-a": Decimal("0.87")}


def test_key_classes_reach_iif_qbo_beancount(tmp_path):
    mapping = keyed_mapping(tmp_path)
    report = make_report(ROUTED, mapping=mapping)
    QuickBooksWriter().write(report, tmp_path)
    iif: dict[str, Decimal] = defaultdict(Decimal)
    for row in (line.split("\t") for line in (tmp_path / "quickbooks.iif").read_bytes().decode("ascii").split("\r\n") if line):
        if row[0] in ("TRNS", "SPL") and row[4] == "AI API Usage":
            iif[row[6]] += Decimal(row[7])
    assert iif == EXPECTED
    qbo: dict[str, Decimal] = defaultdict(Decimal)
    for row in read_csv(tmp_path / "quickbooks_online_journal.csv"):
        if row["AccountName"] == "AI API Usage":
            qbo[row["Class"]] += Decimal(row["Debits"] or 0) - Decimal(row["Credits"] or 0)
    assert qbo == EXPECTED
    accounts, ledger = BeancountWriter().write(report, tmp_path)
    entries, errors, _ = loader.load_string(accounts.read_text("utf-8") + ledger.read_text("utf-8"))
    assert errors == []
    bean_classes: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if isinstance(entry, bean.Transaction):
            for posting in entry.postings:
                if posting.account == "Expenses:AI-API-Usage":
                    bean_classes[posting.meta["class"]] += posting.units.number
    assert bean_classes == EXPECTED


def test_key_classes_become_xero_tracking(tmp_path):
    mapping = keyed_mapping(tmp_path, ROOT / "templates" / "accounts_xero.toml")
    XeroWriter.check_mapping(mapping)
    XeroWriter().write(make_report(ROUTED, mapping=mapping), tmp_path)
    tracking: dict[str, Decimal] = defaultdict(Decimal)
    for row in read_csv(tmp_path / "xero_manual_journals.csv"):
        if row["TrackingName1"]:
            tracking[f'{row["TrackingName1"]}:{row["TrackingOption1"]}'] += Decimal(row["*Amount"])
    for klass in ("Projects:Production", "Clients:Acme", "Clients:Other"):
        assert tracking[klass] == EXPECTED[klass]


def test_focus_sub_account_is_the_api_key(tmp_path):
    (path,) = FocusWriter().write(make_report(ROUTED, mapping=keyed_mapping(tmp_path)), tmp_path)
    rows = read_csv(path)
    usage = defaultdict(Decimal)
    for row in rows:
        if row["ChargeCategory"] in ("Usage", "Credit"):
            usage[(row["SubAccountId"], row["SubAccountName"])] += Decimal(row["EffectiveCost"])
        else:
            assert row["SubAccountId"] == row["SubAccountName"] == ""  # the top-up names no key
    assert usage == {("ak_prod-app", "prod-app"): Decimal("3.007"), ("ak_client-acme", "client-acme"): Decimal("0.40"),
                     ("ak_client-beta", "client-beta"): Decimal("0.25"), ("", ""): Decimal("0.75"),
                     ("ak_ops", "ops"): Decimal("0.125")}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(RAW, max_size=25), granularity=st.sampled_from(["monthly", "daily"]))
def test_each_routed_line_stays_within_a_cent_of_its_exact_total(raws, granularity):
    with tempfile.TemporaryDirectory() as temporary:
        mapping = keyed_mapping(Path(temporary))
    report = make_report(raws, mapping=mapping, granularity=granularity)
    exact: dict[tuple[str, str, str], int] = defaultdict(int)
    done = report.summaries.transactions[report.summaries.transactions["status"] == "completed"]
    for r in done.itertuples(index=False):
        usage = r.type == "usage" and r.amount_micros < 0
        if usage or (r.amount_micros > 0 and r.type != "topup" and r.model):  # the summarised roles
            account, klass, _ = mapping.line_for(str(r.model), str(r.api_key_name))
            exact[(account, klass, str(r.currency))] -= int(r.amount_micros)
    posted: dict[tuple[str, str, str], int] = defaultdict(int)
    for entry in report.journal:
        if entry.role in ("usage", "task_refund"):
            for line in entry.lines:
                if line.account != mapping.prepaid:
                    posted[(line.account, line.klass, entry.currency)] += line.amount_cents
    for key in set(exact) | set(posted):
        assert abs(posted[key] * MICROS_PER_CENT - exact[key]) < MICROS_PER_CENT, key


# -- the Summary sheet and report.html -----------------------------------------------------------


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.headings: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_h3 = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "h3":
            self._in_h3 = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "h3":
            self._in_h3 = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_h3:
            self.headings[-1] += data


def many_keys() -> list[dict]:
    raws = [keyed("usage", f"-{n}.001", key=f"key-{n:02d}") for n in range(1, TOP_KEYS + 4)]
    return [*raws, keyed("usage", "-0.5", key=None), keyed("usage", "+0.25", key="key-01")]


def test_summary_and_report_show_the_key_block_capped_with_other(tmp_path):
    report = make_report(many_keys())
    parser = _Tables()
    parser.feed(render(report))
    rows = parser.tables["top-keys-USD"]
    assert rows[0] == ["API key", "AI spend", "Share", "Tasks", "Refunded"]
    labels = [row[0] for row in rows[1:]]
    assert labels[:TOP_KEYS] == [f"key-{n:02d}" for n in range(TOP_KEYS + 3, 3, -1)][:TOP_KEYS]
    assert labels[TOP_KEYS] == "Other (4 keys)" and labels[-1] == "AI spend"
    total = Decimal(rows[-1][1].replace(",", ""))
    assert sum(Decimal(row[1].replace(",", "")) for row in rows[1:-1]) == total
    models = parser.tables["top-models-USD"]
    assert models[-1][1] == rows[-1][1]  # the key block foots to the same AI spend
    assert "By API key (9 keys)" in parser.headings

    (workbook,) = ExcelWriter().write(report, tmp_path)
    sheet = load_workbook(workbook)["Summary"]
    column_a = [sheet.cell(r, 1).value for r in range(1, sheet.max_row + 1)]
    start = column_a.index("API key") + 1  # the header's sheet row
    assert any(str(v).startswith("By API key (USD, 9 keys)") for v in column_a if v)
    block = column_a[start: start + TOP_KEYS + 2]
    assert block[TOP_KEYS] == "Other (4 keys)" and block[-1] == "AI spend"
    spend = [Decimal(str(sheet.cell(start + 1 + i, 2).value)) for i in range(TOP_KEYS + 1)]
    assert sum(spend) == Decimal(str(sheet.cell(start + TOP_KEYS + 2, 2).value)) == total
    assert sheet.print_area and re.fullmatch(r"'?Summary'?!\$A\$1:\$G\$\d+", sheet.print_area)
    assert sheet.page_setup.fitToHeight in (1, "1") or sheet.sheet_properties.pageSetUpPr.fitToPage


def test_legacy_records_show_no_key_block(tmp_path):
    report = make_report([usage_record("model-a", "-1"), topup_record()])
    parser = _Tables()
    parser.feed(render(report))
    assert not any(name.startswith("top-keys") for name in parser.tables)
    (workbook,) = ExcelWriter().write(report, tmp_path)
    sheet = load_workbook(workbook)["Summary"]
    assert "API key" not in [sheet.cell(r, 1).value for r in range(1, sheet.max_row + 1)]


def test_the_templates_commented_key_rules_load_when_uncommented(tmp_path):
    text = (ROOT / "templates" / "accounts.toml").read_text(encoding="utf-8")
    for line in ("# [[keys]]", '# name = "', '# class = "'):
        text = text.replace(line, line[2:])
    (tmp_path / "accounts.toml").write_text(text, encoding="utf-8")
    mapping = load_mapping(tmp_path / "accounts.toml")
    assert [(rule.pattern, rule.klass) for rule in mapping.keys] == [
        ("client-acme", "Clients:Acme"), ("prod-app", "Projects:Production")]
