"""The consolidated month of several accounts (issue 20, item 3; docs/profiles.md).

Two loopback sandboxes with different records and keys play two accounts (tests/test_profiles.py);
the consolidated pack is read back from its files and tied, to the micro, to the accounts' own
packs on disk; every journal line of every format carries its account and each entry balances
(the readers of tests/test_one_booking_path.py).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

from beancount import loader
from beancount.core import data as bean
from openpyxl import load_workbook
from test_one_booking_path import (
    PREPAID,
    PREPAID_BEANCOUNT,
    beancount_nets,
    cents,
    csv_rows,
    iif_nets,
    qbo_journal_nets,
)
from test_profiles import dead_profile, invoke, keys, read_csv, servers, write_config  # noqa: F401 (fixtures)

from exporter.pack import pack_problem, sha256_of

TEMPLATES = Path(__file__).parent.parent / "templates"
FORMATS = '["csv", "xlsx", "quickbooks", "beancount", "xero", "focus", "html"]'
ACCOUNTS = ("alpha", "beta")
LETTER = {"alpha": "A", "beta": "B"}  # the books' letters, in the file's order


def configure(tmp_path: Path, servers, extra: str = "") -> Path:  # noqa: F811
    config = write_config(tmp_path, servers, extra)
    text = config.read_text(encoding="utf-8").replace(
        'formats = ["csv", "quickbooks", "beancount"]',
        f'formats = {FORMATS}\naccounts = "{TEMPLATES / "accounts_xero.toml"}"\niif_lists = true')
    config.write_text(text, encoding="utf-8")
    return config


def export_all(config: Path) -> None:
    result = invoke("export", "--config", str(config), "--all-profiles", "--period", "2024-01")
    assert result.exit_code == 0, result.output
    assert "consolidated 2024-01:" in result.output


def micros(text: str) -> int:
    value = Decimal(text) * 1_000_000
    assert value == value.to_integral_value(), text
    return int(value)


def test_the_consolidated_pack_ties_to_each_accounts_pack(tmp_path, servers, keys):  # noqa: F811
    export_all(configure(tmp_path, servers))
    out = tmp_path / "out"
    folder = out / "consolidated" / "2024-01"
    packs = {name: out / name / "2024-01" for name in ACCOUNTS}
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert pack_problem(folder, sha256_of(folder / "manifest.json")) is None  # every file listed and checksummed
    assert [a["account"] for a in manifest["accounts"]] == list(ACCOUNTS)

    # the CSVs: account first, each account's rows exactly its own pack's rows
    for name in ("transactions.csv", "by_model.csv", "by_day.csv"):
        rows = read_csv(folder / name)
        assert next(iter(rows[0])) == "account"
        assert {row["account"] for row in rows} == set(ACCOUNTS)
        for account, pack in packs.items():
            own = [{k: v for k, v in row.items() if k != "account"} for row in rows if row["account"] == account]
            assert own == read_csv(pack / name), (account, name)

    # the totals: each account's as its pack's manifest says; the consolidated = their sum, to the micro
    summed: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for entry, (account, pack) in zip(manifest["accounts"], packs.items()):
        own = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
        assert entry["totals"] == own["totals"] and entry["manifest_sha256"] == sha256_of(pack / "manifest.json")
        assert entry["time_zone"] == own["period"]["time_zone"]
        for row in own["totals"]:
            summed[(row["currency"], row["type"])][0] += row["count"]
            summed[(row["currency"], row["type"])][1] += micros(row["amount"])
    assert {(r["currency"], r["type"]): [r["count"], micros(r["amount"])] for r in manifest["totals"]} == summed
    spend = {account: -sum(micros(r["net"]) for r in read_csv(pack / "by_model.csv")) for account, pack in packs.items()}
    assert spend["alpha"] != spend["beta"]  # two accounts, two different months

    # the workbook: the accounts side by side, the total their sum; By Model with the account first
    book = load_workbook(folder / "wavespeed_consolidated_2024-01.xlsx")
    sheet = book["Accounts"]
    rows = {row[0]: row for row in sheet.iter_rows(values_only=True) if row[0]}
    for account in ACCOUNTS:
        line = next(row for label, row in rows.items() if str(label).startswith(f"{account} ("))
        assert micros(str(line[1])) == spend[account]
    total = next(row for label, row in rows.items() if str(label).startswith("Total (2 accounts)"))
    assert micros(str(total[1])) == sum(spend.values())
    assert next(book["By Model"].iter_rows(values_only=True))[0] == "account"
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "alpha (UTC" in html and "beta (Europe/<wbr>Berlin" in html and "Total (2 accounts)" in html

    # QuickBooks: each entry balances; the account is the class of every line (the mapping's under it)
    consolidated_iif, consolidated_qbo = iif_nets(folder), qbo_journal_nets(folder)
    assert consolidated_iif == consolidated_qbo == {None: sum(iif_nets(pack)[None] for pack in packs.values())}
    iif = [line.split("\t") for line in (folder / "quickbooks.iif").read_bytes().decode("ascii").split("\r\n")]
    lines = [row for row in iif if row[0] in ("TRNS", "SPL")]
    assert lines
    prepaid: Counter[str] = Counter()
    for row in lines:
        account = row[6].split(":")[0]
        assert account in ACCOUNTS and row[8][1] == LETTER[account], row  # WA2401U: alpha's
        if row[4] == PREPAID:
            prepaid[account] += cents(row[7])
    assert prepaid == {account: iif_nets(pack)[None] for account, pack in packs.items()}  # per-account splits tie
    assert any(row[6] == "alpha:AI Models:Google" for row in lines)  # the model's class, under the account
    classes = {row[1] for row in iif if row[0] == "CLASS"}  # iif_lists: the account classes, parents first
    assert {"alpha", "alpha:AI Models", "alpha:AI Models:Google", "beta", "beta:AI Models"} <= classes
    qbo = csv_rows(folder / "quickbooks_online_journal.csv")
    owner = {letter: account for account, letter in LETTER.items()}
    assert len(qbo) == len(lines) and all(row["Class"].split(":")[0] == owner[row["JournalNo"][1]] for row in qbo)
    assert not list(folder.glob("quickbooks_online_bank*"))  # one account's wallet: each account's own pack

    # Xero: tracking category 1 the account on every line, the class as category 2; journals balance
    xero = csv_rows(folder / "xero_manual_journals.csv")
    balance: Counter[tuple[str, str]] = Counter()
    for row in xero:
        balance[(row["*Narration"], row["*Date"])] += cents(row["*Amount"])
        assert row["TrackingName1"] == "WaveSpeedAI account" and row["TrackingOption1"] in ACCOUNTS, row
        assert (row["TrackingName2"], bool(row["TrackingOption2"])) in (("AI Models", True), ("", False))
    assert set(balance.values()) == {0} and len(balance) == len({row[8] for row in lines})
    for account, pack in packs.items():  # the prepaid account (code 621) moves by what the account's own file says
        own = sum(cents(row["*Amount"]) for row in csv_rows(pack / "xero_manual_journals.csv") if row["*AccountCode"] == "621")
        assert own == sum(cents(row["*Amount"]) for row in xero
                          if row["*AccountCode"] == "621" and row["TrackingOption1"] == account)

    # Beancount: the ledger loads and balances; every transaction carries its account
    nets, _ = beancount_nets(folder / "accounts.beancount", folder / "wavespeed_2024-01.beancount")
    assert nets == {"USD": sum(beancount_nets(pack / "accounts.beancount", pack / "wavespeed_2024-01.beancount")[0]["USD"]
                               for pack in packs.values())}
    entries, errors, _ = loader.load_string((folder / "accounts.beancount").read_text(encoding="utf-8")
                                            + (folder / "wavespeed_2024-01.beancount").read_text(encoding="utf-8"))
    assert errors == []
    transactions = [e for e in entries if isinstance(e, bean.Transaction)]
    assert transactions and all(e.meta["wavespeed_account"] in ACCOUNTS and e.tags == {e.meta["wavespeed_account"]}
                                for e in transactions)
    for account, pack in packs.items():
        tagged = sum(cents(str(p.units.number)) for e in transactions if account in e.tags for p in e.postings
                     if p.account == PREPAID_BEANCOUNT)
        own = beancount_nets(pack / "accounts.beancount", pack / "wavespeed_2024-01.beancount")[0]
        assert {"USD": tagged} == own

    # FOCUS: the account is the sub-account of every row; each account's cost is its own pack's
    focus = csv_rows(folder / "focus.csv")
    assert {row["SubAccountId"] for row in focus} == set(ACCOUNTS)
    for account, pack in packs.items():
        own = csv_rows(pack / "focus.csv")
        mine = [row for row in focus if row["SubAccountId"] == account]
        assert sum(micros(r["EffectiveCost"]) for r in mine) == sum(micros(r["EffectiveCost"]) for r in own)
        assert [r["x_ApiKeyName"] for r in mine] == [r["SubAccountName"] for r in own]  # the key moved


def test_a_failing_profile_leaves_the_previous_consolidated_pack_untouched(tmp_path, servers, keys):  # noqa: F811
    config = configure(tmp_path, servers)
    export_all(config)
    folder = tmp_path / "out" / "consolidated" / "2024-01"
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    configure(tmp_path, servers, dead_profile())
    result = invoke("export", "--config", str(config), "--all-profiles", "--period", "2024-01")
    assert result.exit_code == 4, result.output
    assert "dead FAILED (exit 4)" in result.output
    assert "consolidated pack not written: profile(s) dead failed" in result.output
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert [p.name for p in folder.parent.iterdir()] == ["2024-01"]  # no staging folder left behind


def test_xero_cannot_take_a_third_tracking_category(tmp_path, servers, keys):  # noqa: F811
    mapping = tmp_path / "accounts.toml"
    mapping.write_text((TEMPLATES / "accounts_xero.toml").read_text(encoding="utf-8")
                       + '\n[[keys]]\nname = "prod-*"\nclass = "Projects:Production"\n', encoding="utf-8")
    config = configure(tmp_path, servers)
    config.write_text(config.read_text(encoding="utf-8").replace(str(TEMPLATES / "accounts_xero.toml"), str(mapping)),
                      encoding="utf-8")
    result = invoke("export", "--config", str(config), "--all-profiles", "--period", "2024-01")
    assert result.exit_code == 2, result.output
    assert "profiles: alpha ok, beta ok" in result.output  # the accounts' packs are written
    assert "Error: consolidated: Xero holds two tracking categories at most" in result.output
    assert not (tmp_path / "out" / "consolidated" / "2024-01").exists()
    shown = invoke("export", "--config", str(config), "--all-profiles", "--period", "2024-01", "--json")
    assert shown.exit_code == 2
    consolidated = json.loads(shown.output[shown.output.index("{"):shown.output.rindex("}") + 1])["consolidated"]
    assert consolidated["exit_code"] == 2 and "tracking categories" in consolidated["error"]


def test_several_profiles_named_make_the_consolidated_pack_and_a_rerun_replaces_it(tmp_path, servers, keys):  # noqa: F811
    config = configure(tmp_path, servers)
    named = ("export", "--config", str(config), "--profile", "beta", "--profile", "alpha", "--period", "2024-01")
    first = invoke(*named)
    assert first.exit_code == 0 and "consolidated 2024-01:" in first.output, first.output
    folder = tmp_path / "out" / "consolidated" / "2024-01"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert [a["account"] for a in manifest["accounts"]] == ["beta", "alpha"]  # in the order asked for
    assert next(iter(read_csv(folder / "transactions.csv")[0].values())) == "beta"
    again = invoke(*named, "-q")
    assert again.exit_code == 0 and "consolidated" not in again.output, again.output  # -q: only warnings
    assert [p.name for p in folder.parent.iterdir()] == ["2024-01"]  # replaced whole, nothing left beside it
    assert pack_problem(folder, sha256_of(folder / "manifest.json")) is None
    shown = invoke(*named, "--json")  # one object: each profile's result, and the consolidated pack's
    assert shown.exit_code == 0, shown.output
    result = json.loads(shown.output[shown.output.index("{"):shown.output.rindex("}") + 1])
    assert [p["profile"] for p in result["profiles"]] == ["beta", "alpha"]
    assert result["consolidated"]["exit_code"] == 0
    assert result["consolidated"]["result"]["folder"] == str(folder)
    assert "manifest.json" in result["consolidated"]["result"]["files"]
    kept = sha256_of(folder / "manifest.json")
    alone = invoke("export", "--config", str(config), "--profile", "alpha", "--period", "2024-01")
    assert alone.exit_code == 0 and "consolidated" not in alone.output  # one account: no consolidated pack
    assert sha256_of(folder / "manifest.json") == kept


def test_several_currencies_get_their_own_files_and_tables(tmp_path):
    """Two accounts in USD and EUR (built in memory, as the pipeline builds them): each currency its
    own journal files, its own side-by-side table; the totals the accounts' sums per currency."""
    from dataclasses import replace

    from factories import make_report, record, with_entries

    from exporter.config import RenderOptions
    from exporter.report import AccountPack, Consolidated
    from exporter.writers.consolidated import build_manifest, write_consolidated
    from exporter.writers.consolidated.figures import side_by_side

    def account(name: str, letter: str, usd: str, eur: str) -> AccountPack:
        report = make_report([record("usage", usd), record("usage", eur, currency="EUR"),
                              record("topup", "50.00", currency="EUR")])
        journal = tuple(replace(e, number=e.number.replace("WS", f"W{letter}")) for e in report.journal)
        return AccountPack(name, with_entries(report, journal), tmp_path / name, "0" * 64)

    both = Consolidated("2024-01", (account("alpha", "A", "-1.2345", "-2.50"), account("beta", "B", "-0.0055", "-7.25")))
    folder = tmp_path / "consolidated"
    folder.mkdir()
    formats = ("csv", "xlsx", "quickbooks", "beancount", "focus", "html")
    files = write_consolidated(both, folder, formats, RenderOptions())
    names = {path.name for path in files}
    assert {"quickbooks_EUR.iif", "quickbooks_USD.iif", "quickbooks_online_journal_EUR.csv"} <= names
    assert iif_nets(folder) == {"EUR": sum(iif_nets_of(pack, "EUR") for pack in both.accounts),
                                "USD": sum(iif_nets_of(pack, "USD") for pack in both.accounts)}
    assert [(t.currency, t.spend_micros) for t in side_by_side(both)] == [("EUR", 9_750_000), ("USD", 1_240_000)]
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert 'id="accounts-EUR"' in html and 'id="accounts-USD"' in html
    totals = {(t["currency"], t["type"]): t["amount"] for t in build_manifest(both, folder, files, formats)["totals"]}
    assert totals == {("EUR", "topup"): "100.00", ("EUR", "usage"): "-9.75", ("USD", "usage"): "-1.24"}


def iif_nets_of(pack, currency: str) -> int:
    """The prepaid account's net cents in one currency of an account's journal (in memory)."""
    return sum(line.amount_cents for entry in pack.report.journal if entry.currency == currency
               for line in entry.lines if line.account == PREPAID)


def test_profiles_with_their_own_mappings_share_one_ledger_unless_an_account_differs(tmp_path):
    """Each account's lines keep its own mapping's accounts; one account name declared with two
    types cannot go into one ledger (a description may differ)."""
    from dataclasses import replace

    import pytest
    from factories import make_report, record, with_entries

    from exporter.books.mapping_toml import load_mapping
    from exporter.errors import ConfigError
    from exporter.report import AccountPack, Consolidated
    from exporter.writers.consolidated import check

    template = (TEMPLATES / "accounts.toml").read_text(encoding="utf-8")

    def pack(name: str, text: str) -> AccountPack:
        path = tmp_path / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        report = make_report([record("usage", "-1.00")], mapping=load_mapping(path))
        journal = tuple(replace(e, number=e.number.replace("WS", f"W{name[0].upper()}")) for e in report.journal)
        return AccountPack(name, with_entries(report, journal), tmp_path, "0" * 64)

    usage_elsewhere = template.replace('account = "AI API Usage"\n', 'account = "AI API Usage:Clients"\n', 1)
    check(Consolidated("2024-01", (pack("alpha", template), pack("beta", usage_elsewhere))), ("quickbooks", "beancount"))
    described = template.replace("Prepaid WaveSpeedAI API credits", "Credits of the client account")
    check(Consolidated("2024-01", (pack("alpha", template), pack("beta", described))), ("beancount",))
    retyped = template.replace('type = "OCASSET"', 'type = "BANK"', 1)
    both = Consolidated("2024-01", (pack("alpha", template), pack("beta", retyped)))
    with pytest.raises(ConfigError, match="Prepaid Expenses:WaveSpeedAI Credits"):
        check(both, ("beancount",))
    check(both, ("csv", "focus"))  # formats that take each account's own names need no joint mapping
