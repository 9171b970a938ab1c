"""Warnings worth trusting, through the CLI against the sandbox: each one means "look at this"."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner
from test_cli import export, invoke, read_csv

from exporter.cli import cli
from exporter.cli_options import CliState
from exporter.period import month_window

NEW_YORK = "America/New_York"


def invoke_at(now: datetime, *args: str):
    """The CLI with its clock stopped at ``now``."""
    return CliRunner().invoke(cli, list(args), obj=CliState(clock=lambda: now), catch_exceptions=False)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=timezone.utc)


def test_the_default_export_has_no_warning_in_utc_or_a_local_time_zone(api_args, tmp_path):
    for tz in ("UTC", NEW_YORK):
        result = export(api_args, tmp_path / tz, "--timezone", tz, "--strict")
        assert result.exit_code == 0, result.output
        manifest = json.loads((tmp_path / tz / "2024-01" / "manifest.json").read_text())
        assert manifest["warnings"] == []
        assert {r["status"] for r in manifest["reconciliation"]} == {"ok"}


def test_reconciliation_in_a_local_time_zone_compares_the_providers_utc_days(sandbox, api_args, tmp_path):
    result = export(api_args, tmp_path, "--timezone", NEW_YORK, "--format", "csv")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "2024-01"
    utc = month_window("2024-01")
    provider_days = {m: u.cost for m, u in sandbox.dataset.usage_by_model(utc.first_day, utc.last_day).items()}
    reconciled = {r["model"]: r for r in read_csv(folder / "reconciliation.csv")}
    assert {m: Decimal(r["exported"]) for m, r in reconciled.items()} == provider_days
    assert all(r["status"] == "ok" for r in reconciled.values())
    # the local-time period is a different set of records: comparing it would have been wrong
    local = {r["model"]: -Decimal(r["amount"]) for r in read_csv(folder / "by_model.csv")}
    assert sum(local.values()) != sum(provider_days.values())
    context = json.loads((folder / "source" / "context.json").read_text())
    assert {r["model"]: -Decimal(r["amount"]) for r in context["provider_days_usage"]} == provider_days
    assert {r["currency"] for r in context["provider_days_usage"]} == {"USD"}

    rerendered = invoke("export", "--from-source", str(folder), "--out", str(tmp_path / "again"),
                        "--format", "csv", "--quiet")
    assert rerendered.exit_code == 0, rerendered.output
    assert (tmp_path / "again" / "2024-01" / "reconciliation.csv").read_bytes() == (folder / "reconciliation.csv").read_bytes()


def _strip_provider_days(folder: Path) -> None:
    """Make ``folder``'s context look like one written before provider_days_usage existed."""
    path = folder / "source" / "context.json"
    context = json.loads(path.read_text())
    del context["provider_days_usage"]
    path.write_text(json.dumps(context))
    manifest = json.loads((folder / "manifest.json").read_text())  # an old pack is consistent with itself
    (entry,) = [f for f in manifest["files"] if f["name"] == "source/context.json"]
    entry.update(size=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_an_older_archive_still_reconciles_a_utc_period_and_says_why_it_cannot_otherwise(api_args, tmp_path):
    for tz in ("UTC", NEW_YORK):
        assert export(api_args, tmp_path / tz, "--timezone", tz, "--format", "csv").exit_code == 0
        _strip_provider_days(tmp_path / tz / "2024-01")
        result = invoke("export", "--from-source", str(tmp_path / tz / "2024-01"), "--out", str(tmp_path / f"{tz}-again"),
                        "--format", "csv", "--quiet")
        assert result.exit_code == 0, result.output
        manifest = json.loads((tmp_path / f"{tz}-again" / "2024-01" / "manifest.json").read_text())
        if tz == "UTC":
            assert manifest["warnings"] == [] and {r["status"] for r in manifest["reconciliation"]} == {"ok"}
        else:
            assert manifest["reconciliation"] is None
            (warning,) = manifest["warnings"]
            assert warning.startswith("reconciliation skipped") and NEW_YORK in warning


def test_repeated_records_count_once_in_the_providers_days(sandbox, api_args, tmp_path):
    sandbox.faults.duplicate_across_pages = True
    result = export(api_args, tmp_path, "--timezone", NEW_YORK, "--format", "csv")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "2024-01" / "manifest.json").read_text())
    assert {r["status"] for r in manifest["reconciliation"]} == {"ok"}
    assert [w for w in manifest["warnings"] if "duplicate" not in w] == []


def test_a_period_not_over_warns_so_strict_refuses_it(sandbox, api_args, tmp_path):
    for now, tz, end in [(utc(2024, 1, 20, 12), "UTC", "2024-02-01 00:00 UTC"),
                         (utc(2024, 2, 1, 4, 59), NEW_YORK, f"2024-02-01 00:00 {NEW_YORK}")]:  # the last day, local
        out = tmp_path / tz
        result = invoke_at(now, "export", "--period", "2024-01", "--timezone", tz, "--out", str(out), *api_args)
        assert result.exit_code == 0, result.output
        expected = f"period not over: ends {end}; export again once it has ended"
        assert json.loads((out / "2024-01" / "manifest.json").read_text())["warnings"] == [expected]
        assert f"warning: {expected}" in result.output
        # the archive keeps the warning: the records were fetched before the period ended
        rerendered = invoke("export", "--from-source", str(out / "2024-01"), "--out", str(out / "again"), "--quiet")
        assert rerendered.exit_code == 0, rerendered.output
        assert expected in json.loads((out / "again" / "2024-01" / "manifest.json").read_text())["warnings"]

        strict = invoke_at(now, "export", "--period", "2024-01", "--timezone", tz, "--out", str(out / "strict"),
                           "--strict", *api_args)
        assert strict.exit_code == 6 and "period not over" in strict.output
        assert list((out / "strict").iterdir()) == []


def test_a_period_that_has_ended_does_not_warn(api_args, tmp_path):
    result = invoke_at(utc(2024, 2, 1), "export", "--period", "2024-01", "--out", str(tmp_path), "--strict", *api_args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "2024-01" / "manifest.json").read_text())
    assert manifest["warnings"] == [] and manifest["generated_at"] == "2024-02-01T00:00:00.000Z"


def test_a_period_in_the_future_is_exit_2_before_any_request(sandbox, api_args, tmp_path):
    for command in (["export", "--out", str(tmp_path / "out")], ["summary"], ["fetch"]):
        result = invoke_at(utc(2024, 1, 1, 4, 59), *command, "--period", "2024-01", "--timezone", NEW_YORK, *api_args)
        assert result.exit_code == 2, command
        assert result.output.strip() == f"Error: the period 2024-01 is in the future: it starts 2024-01-01 00:00 {NEW_YORK}"
    assert len(sandbox.requests) == 0
    assert not (tmp_path / "out").exists()


def test_fetch_warns_about_a_period_not_over_on_stderr(api_args, tmp_path):
    target = tmp_path / "jan.jsonl"
    result = invoke_at(utc(2024, 1, 31, 23), "fetch", "--period", "2024-01", "--output", str(target),
                       *[a for a in api_args if a != "--quiet"])
    assert result.exit_code == 0, result.output
    assert target.read_text().count("\n") > 1000
    assert "warning: period not over: ends 2024-02-01 00:00 UTC; export again once it has ended" in result.stderr.splitlines()
