"""Each rule decided once (issue 17): the writers' registry says which formats lay out the journal,
and a late change has one booking role that the journal and FOCUS both read."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from exporter.books.adjustments import adjustment_roles
from exporter.cli import cli
from exporter.models import ADJUSTMENT_COLUMNS, ROLES
from exporter.sandbox import DEMO_KEY
from exporter.sandbox.revisions import revise
from exporter.transform import record_roles

TEMPLATES = Path(__file__).parent.parent / "templates"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_xero_follows_the_granularity(server, tmp_path):
    result = run("export", "--period", "2024-01", "--out", str(tmp_path), "--format", "xero", "--granularity", "daily",
                 "--accounts", str(TEMPLATES / "accounts_xero.toml"), "--base-url", server.url, "--api-key", DEMO_KEY, "-q")
    assert result.exit_code == 0, result.output
    lines = rows(tmp_path / "2024-01" / "xero_manual_journals.csv")
    usage_days = {line["*Date"] for line in lines if "usage" in line["*Narration"].lower()}
    assert len(usage_days) > 20  # one usage journal a day, not one for the month


def test_a_re_price_that_flips_the_sign_is_the_same_role_in_the_journal_and_focus(server, tmp_path):
    def export(period: str, *extra: str):
        return run("export", "--period", period, "--out", str(tmp_path), "--format", "csv,quickbooks,focus",
                   "--base-url", server.url, "--api-key", DEMO_KEY, "--backoff", "0.01", "-q", *extra)

    assert export("2024-01", "--close").exit_code == 0
    usage = next(r for r in server.dataset.records if r.created_at.strftime("%Y-%m") == "2024-01"
                 and r.status == "completed" and r.type == "usage" and r.model)
    server.dataset = revise(server.dataset, amounts={usage.id: -usage.amount / 2})  # -x becomes +x/2
    result = export("2024-02")
    assert result.exit_code == 0, result.output
    delta = -usage.amount * Decimal("1.5")  # back to the credit: the booked usage undone, the new credit added
    [change] = [r for r in rows(tmp_path / "2024-02" / "adjustments.csv") if r["id"] == usage.id]
    assert change["change"] == "amount_changed" and Decimal(change["delta"]) == delta
    [correction] = [r for r in rows(tmp_path / "2024-02" / "focus.csv") if r["x_TransactionId"] == usage.id]
    assert correction["ChargeClass"] == "Correction"
    assert correction["ChargeCategory"] == "Usage"  # the booked usage is what changed, as in the journal
    journal = rows(tmp_path / "2024-02" / "quickbooks_online_journal.csv")
    late = [r for r in journal if r["Description"].lower().startswith("late changes to 2024-01")]
    assert {r["AccountName"] for r in late} == {"Prepaid Expenses:WaveSpeedAI Credits", "AI API Usage"}
    assert not any(usage.id in r["Description"] for r in journal)  # summarised as usage, not an entry of its own


def test_a_late_change_has_one_role_and_every_role_is_a_role():
    frame = pd.DataFrame([
        {"id": "a", "period": "2024-01", "change": "amount_changed", "type": "usage", "model": "m/x", "currency": "USD",
         "status_before": "completed", "status_after": "completed", "amount_before_micros": -1_000_000,
         "amount_after_micros": 500_000, "delta_micros": 1_500_000, "payment_method": ""},
        {"id": "b", "period": "2024-01", "change": "arrived_late", "type": "refund", "model": "", "currency": "USD",
         "status_before": "(not seen)", "status_after": "completed", "amount_before_micros": 0,
         "amount_after_micros": 200_000, "delta_micros": 200_000, "payment_method": ""},
    ], columns=[c for c in ADJUSTMENT_COLUMNS if c != "role"])
    assert list(adjustment_roles(frame)) == ["usage", "credit"]
    roles = record_roles(pd.DataFrame({"amount_micros": [0, 5, -5, -5, 5, 5, -5], "type": pd.Categorical(
        ["usage", "topup", "usage", "refund", "refund", "refund", "topup"]), "model": ["", "", "m", "", "m", "", ""]}))
    assert set(roles.cat.categories) == set(ROLES)
    assert roles.isna().tolist() == [True] + [False] * 6  # amount 0 moves nothing: no role
    assert list(roles[1:]) == ["topup", "usage", "payout", "task_refund", "credit", "suspense"]
