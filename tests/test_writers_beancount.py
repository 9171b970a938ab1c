"""The Beancount ledger: bean-check is the oracle (and it must reject a tampered file)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core.data import Open, Transaction

from exporter.books.mapping_toml import load_mapping as load_accounts
from exporter.writers.beancount import ACCOUNTS_FILE, BeancountWriter, beancount_names
from factories import make_report, record, topup_record, usage_record

GOLDEN = Path(__file__).parent / "golden"
MAPPING = load_accounts(GOLDEN / "accounts_sample.toml")
BEAN_CHECK = shutil.which("bean-check", path=str(Path(sys.executable).parent)) or shutil.which("bean-check")


def mixed_report():
    raws = [
        topup_record("100.00", payment_method="card", created_at="2024-01-02T09:00:00Z", id="tu_1"),
        topup_record("25.00", payment_method='pay"pal\\', created_at="2024-01-05T09:00:00Z"),
        *[usage_record("model-a", "-0.0025", created_at=f"2024-01-{d:02d}T10:00:00Z") for d in range(1, 29)],
        usage_record('odd "model"\nname', "-0.0045"),
        usage_record("google/veo3", "-3.3333"),
        usage_record("google/imagen", "-0.25"),
        usage_record("google/veo3", "0.3333", created_at="2024-01-16T10:00:00Z"),
        record("refund", "1.005", model=None),
        record("refund", "-10.00", model=None, payment_method="paypal"),
        topup_record("-2.00"),
        usage_record("model-b", "-7.25", currency="EUR"),
        topup_record("20.00", currency="EUR"),
    ]
    return make_report(raws, mapping=MAPPING)


def with_accounts(path: Path) -> Path:
    """A ledger file including the pack's accounts.beancount and ``path`` (how a user loads them)."""
    main = path.with_name(f"ledger-{path.stem}.beancount")
    main.write_text(f'include "{ACCOUNTS_FILE}"\ninclude "{path.name}"\n')
    return main


def bean_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([BEAN_CHECK, str(with_accounts(path))], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    folder = tmp_path_factory.mktemp("beancount")
    report = mixed_report()
    accounts, path = BeancountWriter().write(report, folder)
    assert accounts.name == ACCOUNTS_FILE and " open " not in path.read_text()  # opened once, in accounts
    return report, path


@pytest.mark.skipif(BEAN_CHECK is None, reason="bean-check is not installed")
def test_bean_check_passes_and_fails_on_a_tampered_posting(ledger, tmp_path):
    report, path = ledger
    assert path.name == "wavespeed_2024-01.beancount"
    result = bean_check(path)
    assert result.returncode == 0, result.stdout + result.stderr

    text = path.read_text()
    assert "  100.00 USD" in text
    tampered = path.with_name("tampered.beancount")
    tampered.write_text(text.replace("  100.00 USD", "  100.01 USD", 1))
    result = bean_check(tampered)
    assert result.returncode != 0 and "balance" in (result.stdout + result.stderr).lower()


def test_the_ledger_holds_the_journal(ledger):
    report, path = ledger
    entries, errors, options = loader.load_file(str(with_accounts(path)))
    assert errors == []
    assert options["operating_currency"] == ["EUR", "USD"]
    transactions = [e for e in entries if isinstance(e, Transaction)]
    assert [t.meta["journal_no"] for t in transactions] == [e.number for e in report.journal]
    assert transactions[0].meta["source_id"] == "tu_1"
    opened = {e.account for e in entries if isinstance(e, Open)}
    assert "Assets:Prepaid-Expenses:WaveSpeedAI-Credits" in opened and "Liabilities:Company-Visa" in opened
    for transaction, entry in zip(transactions, report.journal):
        assert transaction.date == entry.date
        assert [p.units.number for p in transaction.postings] == [Decimal(l.amount_cents) / 100 for l in entry.lines]
        assert {p.units.currency for p in transaction.postings} == {entry.currency}
        assert [p.meta.get("class", "") for p in transaction.postings] == [l.klass for l in entry.lines]


def test_account_names_follow_the_type_and_stay_distinct(tmp_path):
    rules = '[usage.models]\n"x/*" = { account = "AI-API Usage" }\n"y/*" = { account = "ai usage:éclair (3rd) ✓" }\n'
    text = (GOLDEN / "accounts_sample.toml").read_text().replace("[usage.models]\n", rules)
    (tmp_path / "m.toml").write_text(text)
    mapping = load_accounts(tmp_path / "m.toml")
    names = beancount_names(
        {"AI API Usage", "AI-API Usage", "ai usage:éclair (3rd) ✓", "Company Visa", "Prepaid Expenses:WaveSpeedAI Credits",
         "Ask My Accountant"},
        mapping,
    )
    assert names == {
        "AI API Usage": "Expenses:AI-API-Usage",
        "AI-API Usage": "Expenses:AI-API-Usage-2",
        "ai usage:éclair (3rd) ✓": "Expenses:Ai-usage:Eclair-3rd",
        "Company Visa": "Liabilities:Company-Visa",
        "Prepaid Expenses:WaveSpeedAI Credits": "Assets:Prepaid-Expenses:WaveSpeedAI-Credits",
        "Ask My Accountant": "Expenses:Ask-My-Accountant",
    }
