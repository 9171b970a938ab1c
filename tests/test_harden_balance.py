"""The provider's balance is checked where it enters (issue 21, item 7): a currency that is no
ISO 4217 code is exit 5 naming the field; one nothing else uses makes no roll-forward of its own;
a negative balance is used, with a warning saying so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import cli
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
