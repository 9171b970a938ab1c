"""The command line for people and for cron, through the CLI against the sandbox."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_cli import invoke, read_csv
from test_cli_warnings import invoke_at, utc

from exporter.cli import cli
from exporter.period import quarter_window


def test_a_quarter_exports_three_months_with_one_usage_entry_per_month(sandbox, api_args, tmp_path):
    result = invoke("export", "--period", "2024-Q1", "--out", str(tmp_path), "--format", "csv,quickbooks", *api_args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "2024-Q1"
    w = quarter_window("2024-Q1")
    expected = {r["id"] for r in sandbox.dataset.records if w.start <= r["created_at"] < w.end}
    assert {r["id"] for r in read_csv(folder / "transactions.csv")} == expected
    journal = read_csv(folder / "quickbooks_online_journal.csv")
    usage = sorted({(r["JournalNo"], r["JournalDate"]) for r in journal if "U" in r["JournalNo"][6:]})
    assert usage == [("WS24Q1U01", "01/31/2024"), ("WS24Q1U02", "02/29/2024"), ("WS24Q1U03", "03/31/2024")]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["period"]["label"] == "2024-Q1" and manifest["period"]["last_day"] == "2024-03-31"
    assert manifest["warnings"] == []


def test_last_month_and_this_month_count_from_today_in_the_time_zone(api_args, tmp_path):
    now = utc(2024, 2, 1, 3)  # still 31 January in Los Angeles
    last = invoke_at(now, "export", "--period", "last-month", "--out", str(tmp_path / "utc"), "--format", "csv", *api_args)
    assert last.exit_code == 0, last.output
    assert sorted(p.name for p in (tmp_path / "utc").iterdir()) == ["2024-01", "books.sqlite"]

    local = invoke_at(now, "export", "--period", "last-month", "--timezone", "America/Los_Angeles",
                      "--out", str(tmp_path / "la"), "--format", "csv", *api_args)
    assert local.exit_code == 0, local.output
    assert sorted(p.name for p in (tmp_path / "la").iterdir()) == ["2023-12", "books.sqlite"]

    this = invoke_at(now, "export", "--period", "this-month", "--timezone", "America/Los_Angeles",
                     "--out", str(tmp_path / "la"), "--format", "csv", *api_args)
    assert this.exit_code == 0, this.output
    manifest = json.loads((tmp_path / "la" / "2024-01" / "manifest.json").read_text())
    assert manifest["period"]["start"] == "2024-01-01T08:00:00.000Z"
    assert manifest["warnings"] == ["period not over: ends 2024-02-01 00:00 America/Los_Angeles; export again once it has ended"]


def test_quiet_prints_nothing_on_success_and_only_warnings_otherwise(sandbox, api_args, tmp_path):
    args = ["export", "--period", "2024-01", "--format", "csv", "-q", *api_args]
    result = invoke(*args, "--out", str(tmp_path / "a"))
    assert result.exit_code == 0 and result.output == ""
    assert read_csv(tmp_path / "a" / "2024-01" / "transactions.csv")

    sandbox.faults.duplicate_across_pages = True
    warned = invoke(*args, "--out", str(tmp_path / "b"))
    assert warned.exit_code == 0 and warned.stdout == ""
    manifest = json.loads((tmp_path / "b" / "2024-01" / "manifest.json").read_text())
    assert manifest["warnings"] and warned.stderr.splitlines() == [f"warning: {w}" for w in manifest["warnings"]]


def test_json_prints_the_manifests_summary_and_what_a_re_export_replaced(api_args, tmp_path):
    args = ["export", "--period", "2024-01", "--out", str(tmp_path), "--format", "csv,quickbooks", *api_args]
    first = invoke_at(utc(2024, 2, 3, 9), *args, "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    folder = tmp_path / "2024-01"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["formats"] == ["csv", "quickbooks"]
    for key in ("period", "formats", "counts", "totals", "warnings", "files", "rollforward"):
        assert summary[key] == manifest[key], key
    (credit,) = summary["rollforward"]  # the provider's balance was read: the roll-forward is known
    assert credit["currency"] == "USD" and credit["closing"] is not None
    assert summary["folder"] == str(folder) and summary["replaced"] is None
    assert {t["type"]: t["amount"] for t in summary["totals"]}["usage"].startswith("-")  # signed, as in the CSVs
    assert {f["name"] for f in summary["files"]} >= {"transactions.csv", "quickbooks.iif", "source/billings.jsonl.gz"}

    files = sum(1 for p in folder.rglob("*") if p.is_file())
    again = invoke_at(utc(2024, 2, 5), *args, "--json")
    assert json.loads(again.stdout)["replaced"] == {"folder": str(folder), "files": files, "generated_at": "2024-02-03T09:00:00.000Z"}
    text = invoke_at(utc(2024, 2, 6), *[a for a in args if a != "--quiet"])
    assert text.exit_code == 0, text.output
    assert f"replaced {folder} (previous: {files} files, 2024-02-05)" in text.stdout.splitlines()


def test_summary_json_and_accounts(sandbox, api_args, tmp_path):
    assert invoke("export", "--period", "2024-01", "--out", str(tmp_path), "--format", "csv", *api_args).exit_code == 0
    manifest = json.loads((tmp_path / "2024-01" / "manifest.json").read_text())
    result = invoke("summary", "--period", "2024-01", "--json", *api_args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in ("period", "counts", "totals", "warnings"):
        assert summary[key] == manifest[key], key
    by_model = read_csv(tmp_path / "2024-01" / "by_model.csv")
    assert summary["by_model"] == [
        {**row, "count": int(row["count"]), "previous_amount": row["previous_amount"] or None, "change": row["change"] or None}
        for row in by_model
    ]

    mapping = tmp_path / "accounts.toml"
    from exporter.books.mapping_toml import DEFAULT_ACCOUNTS_PATH

    mapping.write_text(DEFAULT_ACCOUNTS_PATH.read_text().replace(
        '# "google/*"              = { account = "AI API Usage:Video", type = "EXP", class = "AI Models:Google" }',
        '"google/*" = { class = "AI Models:Google" }'))
    mapped = invoke("summary", "--period", "2024-01", "--json", "--accounts", str(mapping), *api_args)
    assert mapped.exit_code == 0, mapped.output
    (warning,) = json.loads(mapped.stdout)["warnings"]  # a rule exists now: the other models are unmapped
    unmapped = [row["model"] for row in by_model if not row["model"].startswith("google/")]
    assert warning.startswith(f"{len(unmapped)} model(s) matched no rule") and "google/" not in warning
    table = invoke("summary", "--period", "2024-01", "--accounts", str(mapping), *api_args)
    assert f"warning: {warning}" in table.stdout.splitlines()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from-source", "{pack}", "--timezone", "Europe/Berlin"], "--timezone has no effect with --from-source"),
        (["--from-source", "{pack}", "--period", "2024-01"], "--period has no effect with --from-source"),
        (["--from-source", "{pack}", "--page-size", "50", "--concurrency", "2", "--base-url", "http://127.0.0.1:9",
          "--api-key", "sk-x", "--retries", "2", "--backoff", "1", "--max-wait", "3", "--timeout", "5"],
         "--api-key, --base-url, --page-size, --concurrency, --retries, --backoff, --max-wait, --timeout have no effect"
         " with --from-source (it re-renders the archive's own period, offline): drop them"),
        (["--from-source", "{pack}", "--sandbox"], "--sandbox has no effect with --from-source"),
        (["--sandbox", "--period", "2024-01", "--base-url", "http://127.0.0.1:9"], "--base-url has no effect with --sandbox"),
        (["--sandbox", "--period", "2024-01", "--api-key", "sk-x"], "--api-key has no effect with --sandbox"),
        (["--sandbox", "--period", "2024-01", "-q", "-v"], "--verbose has no effect with --quiet"),
        (["--sandbox", "--period", "2024-01", "--format", "csv", "--iif-lists"],
         "--iif-lists has no effect with a --format without quickbooks"),
        (["--sandbox", "--period", "2024-01", "--format", "csv", "--granularity", "daily"],
         "--granularity has no effect with a --format without a journal (xlsx, quickbooks, beancount, xero)"),
    ],
)
def test_options_an_export_would_ignore_are_refused_in_one_line(tmp_path, args, message):
    pack = tmp_path / "pack"
    (pack / "source").mkdir(parents=True)
    (pack / "source" / "billings.jsonl.gz").write_bytes(b"")  # never read: refused before
    out = tmp_path / "out"
    result = invoke("export", "--out", str(out), *[a.replace("{pack}", str(pack)) for a in args])
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: {message}") and "sk-x" not in line
    assert not out.exists()


def test_options_from_the_environment_are_not_refused(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("WAVESPEED_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("WAVESPEED_BASE_URL", "http://127.0.0.1:9")
    result = invoke("export", "--sandbox", "--period", "2024-01", "--out", str(tmp_path), "--format", "csv", "-q")
    assert result.exit_code == 0 and result.output == ""
    again = invoke("export", "--from-source", str(tmp_path / "2024-01"), "--out", str(tmp_path / "again"),
                   "--format", "csv,quickbooks", "--granularity", "monthly", "--iif-lists", "-q")
    assert again.exit_code == 0 and again.output == ""
    assert (tmp_path / "again" / "2024-01" / "quickbooks.iif").read_text().startswith("!ACCNT")


def test_summary_and_fetch_refuse_ignored_options_too(tmp_path):
    for command in (["summary", "--from-source", str(tmp_path), "--timezone", "UTC"],
                    ["fetch", "--sandbox", "--period", "2024-01", "--base-url", "http://127.0.0.1:9"]):
        result = invoke(*command)
        assert result.exit_code == 2 and "has no effect with" in result.output and len(result.output.splitlines()) == 1


def test_no_reconcile_applies_to_a_re_render_and_keeps_the_archived_summary(api_args, tmp_path):
    assert invoke("export", "--period", "2024-01", "--out", str(tmp_path), "--format", "csv", *api_args).exit_code == 0
    result = invoke("export", "--from-source", str(tmp_path / "2024-01"), "--out", str(tmp_path / "again"),
                    "--format", "csv", "--no-reconcile", "-q")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "again" / "2024-01"
    assert not (folder / "reconciliation.csv").exists()
    assert json.loads((folder / "manifest.json").read_text())["reconciliation"] is None
    assert json.loads((folder / "source" / "context.json").read_text())["provider_usage"]["by_model"]


def test_shell_completion_scripts_and_completions():
    import os
    import subprocess
    import sys

    # the real entry point: click derives the variable from the program name main() gives
    env = {**os.environ, "_WAVESPEED_EXPORT_COMPLETE": "bash_source"}
    done = subprocess.run([sys.executable, "-m", "exporter"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "complete -o nosort -F _wavespeed_export_completion wavespeed-export" in done.stdout
    assert "_WAVESPEED_EXPORT_COMPLETE=bash_complete" in done.stdout

    def run(**variables: str) -> str:
        result = CliRunner().invoke(cli, [], prog_name="wavespeed-export", env=variables)
        assert result.exit_code == 0, result.output
        return result.stdout

    assert run(_WAVESPEED_EXPORT_COMPLETE="zsh_source").startswith("#compdef wavespeed-export")
    assert "complete --no-files --command wavespeed-export" in run(_WAVESPEED_EXPORT_COMPLETE="fish_source")

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        return run(_WAVESPEED_EXPORT_COMPLETE="bash_complete", COMP_WORDS=line, COMP_CWORD=str(len(words) - 1)).splitlines()

    assert complete("wavespeed-export su") == ["plain,summary"]
    assert complete("wavespeed-export export --period l") == ["plain,last-month"]
    assert complete("wavespeed-export export --format csv,q") == ["plain,csv,quickbooks"]


@pytest.mark.parametrize("key", ["a", "ws-", "1234567"])
def test_a_very_short_key_is_refused_before_any_request(tmp_path, key):
    # masking a 1-3 character key in every answer would blank those characters in every model name
    result = CliRunner().invoke(cli, ["export", "--period", "2024-01", "--base-url", "http://127.0.0.1:9",
                                      "--out", str(tmp_path)], env={"WAVESPEED_API_KEY": key})
    assert result.exit_code == 2
    assert "fewer than 8" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "2024-01").exists()
