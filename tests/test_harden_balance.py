"""The provider's balance is checked where it enters (issue 21, item 7): a currency that is no
ISO 4217 code is exit 5 naming the field; one nothing else uses makes no roll-forward of its own;
a negative balance is used, with a warning saying so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.extract.endpoints import BILLINGS_PATH, SEARCH_PATH
from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with serve_in_thread(api="legacy") as server:
        yield server


def export(server: SandboxServer, out: Path, *extra: str):
    return CliRunner().invoke(cli, ["export", "--period", "2024-01", "--out", str(out), "--format", "csv",
                                    "--base-url", server.url, "--api-key", DEMO_KEY, "--json", *extra])


@pytest.mark.parametrize("currency", ["usd", "US\x07", " USD", "USD\n", "EURO", ""])
def test_a_balance_currency_that_is_no_code_is_exit_5_naming_the_field(server, tmp_path, currency):
    server.faults = replace(server.faults, balance_currency=currency)
    result = export(server, tmp_path)
    assert result.exit_code == 5, result.output
    assert "balance: field 'currency'" in result.output
    assert not (tmp_path / "2024-01").exists()


def test_a_balance_in_a_currency_nothing_else_uses_makes_no_roll_forward(server, tmp_path):
    server.faults = replace(server.faults, balance_currency="EUR")
    result = export(server, tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [row["currency"] for row in summary["rollforward"]] == ["USD"]
    assert any("provider's balance is in EUR" in w and "not used" in w for w in summary["warnings"])


def test_a_negative_balance_is_used_with_a_warning(server, tmp_path):
    server.faults = replace(server.faults, balance_skew=-(server.dataset.balance + Decimal("5")))
    result = export(server, tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert any("balance is negative (-5.00 USD)" in w and "should not be negative" in w for w in summary["warnings"])


@pytest.mark.parametrize("api", ["legacy", "current"])
def test_the_records_after_the_period_are_asked_for_once_and_all_counted(tmp_path, api):
    """The period's own query is padded past its end (a server's days, the provider's UTC days);
    the ranged fetch after the period asks only from where that query stopped, and the records in
    between come from the period's walk: each counted once, none missed at either seam."""
    with serve_in_thread(api=api) as server:
        result = export(server, tmp_path)
        asked = [r.query for r in server.requests if r.path in (BILLINGS_PATH, SEARCH_PATH) and r.status == 200]
    assert result.exit_code == 0, result.output
    period_query, after_query = asked[0], asked[-1]
    if api == "legacy":
        assert (period_query["end_date"], after_query["start_date"]) == ("2024-02-02", "2024-02-03")
        seams = [datetime(2024, 2, d, tzinfo=timezone.utc) for d in (1, 2, 3)]
    else:
        feb_1 = datetime(2024, 2, 1, tzinfo=timezone.utc)
        assert int(period_query["end_time"]) == int(after_query["start_time"]) == feb_1.timestamp() * 1000
        seams = [feb_1]
    completed = [r for r in server.dataset.records if r.status == "completed"
                 and (api == "legacy" or r.type != "topup")]  # the current API lists no top-ups
    for seam in seams:  # the data has records on both sides of each seam, so a lost or doubled day shows
        assert any(seam - timedelta(days=1) <= r.created_at < seam for r in completed)
        assert any(seam <= r.created_at < seam + timedelta(days=1) for r in completed)
    completed_after = [r for r in completed if r.created_at >= seams[0]]
    balance = json.loads((tmp_path / "2024-01" / "source" / "context.json").read_text())["provider_balance"]
    assert balance["records_after"] == len(completed_after)
    assert Decimal(balance["net_after"]) == sum(r.amount for r in completed_after)
    (row,) = json.loads(result.stdout)["rollforward"]
    if api == "legacy":  # the current API lists no top-ups: its opening is not derived
        assert Decimal(row["closing"]) == server.dataset.balance - sum(r.amount for r in completed_after)
