"""End to end: the CLI against the sandbox over real HTTP, files read back and checked."""

from __future__ import annotations

import csv
import errno
import gzip
import hashlib
import io
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.period import month_window
from exporter.sandbox import DEMO_KEY, SandboxServer

SECRET = "sk-live-never-print-me"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def export(api_args: list[str], out: Path, *extra: str):
    return invoke("export", "--period", "2024-01", "--out", str(out), *api_args, *extra)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def in_january(server: SandboxServer, tz: str = "UTC") -> list:
    w = month_window("2024-01", tz)
    return [r for r in server.dataset.records if w.start <= r["created_at"] < w.end]


def test_every_command_has_help_with_an_example():
    for name, command in cli.commands.items():
        result = invoke(name, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output, name
        assert command.help


def test_export_writes_a_pack_that_matches_the_sandbox(sandbox, api_args, tmp_path):
    result = export([a for a in api_args if a != "--quiet"], tmp_path)  # -q would print nothing
    assert result.exit_code == 0, result.output
    folder = tmp_path / "2024-01"
    expected = in_january(sandbox)

    rows = read_csv(folder / "transactions.csv")
    assert {r["id"]: r["amount"] for r in rows} == {r["id"]: format(r["amount"], "f") for r in expected}
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)
    assert rows[-1]["created_at"] == "2024-01-31T23:59:59.999Z"

    usage = sandbox.dataset.usage_by_model(month_window("2024-01").first_day, month_window("2024-01").last_day)
    by_model = {r["model"]: (int(r["count"]), Decimal(r["amount"])) for r in read_csv(folder / "by_model.csv")}
    assert by_model == {m: (u.requests, -u.cost) for m, u in usage.items()}

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["period"]["start"] == "2024-01-01T00:00:00.000Z"
    assert manifest["period"]["end"] == "2024-02-01T00:00:00.000Z"
    assert manifest["source"]["records_in_period"] == len(expected)
    for entry in manifest["files"]:
        data = (folder / entry["name"]).read_bytes()
        assert entry["size"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
    listed = {e["name"] for e in manifest["files"]}
    assert listed >= {"transactions.csv", "by_model.csv", "by_day.csv", "wavespeed_2024-01.xlsx",
                      "quickbooks.iif", "quickbooks_online_journal.csv", "source/billings.jsonl.gz"}

    with gzip.open(folder / "source" / "billings.jsonl.gz", "rt", encoding="utf-8") as archive:
        archived = [line.rstrip("\n") for line in archive]
    served = {line.split('"id":"', 1)[1].split('"', 1)[0]: line for line in sandbox.dataset.lines()}
    assert archived == [served[r["id"]] for r in expected]  # byte for byte as the API sent them

    assert "wrote" in result.output and str(folder) in result.output
    key = DEMO_KEY.encode()
    for name, data in snapshot(folder).items():  # the key is in no file, compressed or not
        assert key not in data and key not in (gzip.decompress(data) if name.endswith(".gz") else b""), name


def test_export_in_a_time_zone_keeps_local_midnights(sandbox, api_args, tmp_path):
    result = export(api_args, tmp_path, "--timezone", "America/Los_Angeles", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "2024-01" / "transactions.csv")
    assert {r["id"] for r in rows} == {r["id"] for r in in_january(sandbox, "America/Los_Angeles")}
    first_feb_utc = [r for r in rows if r["created_at"] == "2024-02-01T00:00:00.000Z"]
    assert first_feb_utc and all(r["date"] == "2024-01-31" for r in first_feb_utc)


def test_two_exports_give_identical_csv_bytes(api_args, tmp_path):
    assert export(api_args, tmp_path / "a", "--format", "csv,quickbooks").exit_code == 0
    assert export(api_args, tmp_path / "b", "--format", "csv,quickbooks").exit_code == 0
    a, b = snapshot(tmp_path / "a" / "2024-01"), snapshot(tmp_path / "b" / "2024-01")
    csvs = [name for name in a if name.endswith((".csv", ".iif", ".gz"))]
    assert len(csvs) >= 6
    assert all(a[name] == b[name] for name in csvs)


def test_from_source_rebuilds_the_csv_files_offline(api_args, tmp_path, monkeypatch):
    assert export(api_args, tmp_path / "live").exit_code == 0
    live = tmp_path / "live" / "2024-01"
    monkeypatch.setenv("WAVESPEED_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    result = invoke("export", "--from-source", str(live), "--out", str(tmp_path / "offline"), "--quiet")
    assert result.exit_code == 0, result.output
    a, b = snapshot(live), snapshot(tmp_path / "offline" / "2024-01")
    for name in a:
        if name.endswith((".csv", ".iif", ".gz")):
            assert a[name] == b[name], name
    assert set(a) == set(b)


def test_rejected_key_exits_3_names_no_key_and_writes_nothing(sandbox, tmp_path):
    result = invoke("export", "--period", "2024-01", "--base-url", sandbox.url, "--api-key", SECRET, "--out", str(tmp_path))
    assert result.exit_code == 3
    assert "rejected the key" in result.output
    assert SECRET not in result.output
    assert list(tmp_path.iterdir()) == []


def test_api_down_exits_4_quickly_and_writes_nothing(sandbox, api_args, tmp_path):
    sandbox.faults.down = True
    result = export(api_args, tmp_path, "--retries", "3", "--max-wait", "1")
    assert result.exit_code == 4
    assert "503" in result.output and len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_malformed_record_exits_5_and_keeps_the_previous_export(sandbox, api_args, tmp_path):
    assert export(api_args, tmp_path, "--format", "csv").exit_code == 0
    before = snapshot(tmp_path / "2024-01")
    victim = in_january(sandbox)[42]["id"]
    sandbox.faults.malformed = {victim: "amount"}
    result = export(api_args, tmp_path, "--format", "csv")
    assert result.exit_code == 5
    assert victim in result.output and "'amount'" in result.output
    assert snapshot(tmp_path / "2024-01") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-01", "books.sqlite"]  # no temporary folder left


def test_a_crash_while_writing_leaves_no_partial_folder(api_args, tmp_path, monkeypatch):
    assert export(api_args, tmp_path, "--format", "csv").exit_code == 0
    before = snapshot(tmp_path / "2024-01")

    from exporter.writers import csv_files

    def crash(self, report, folder):
        (folder / "transactions.csv").write_text("half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / "transactions.csv"))

    monkeypatch.setattr(csv_files.CsvWriter, "write", crash)
    result = export(api_args, tmp_path, "--format", "csv")
    assert result.exit_code == 7
    assert "No space left on device" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert snapshot(tmp_path / "2024-01") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-01", "books.sqlite"]


def fail_renames(monkeypatch, *prefixes: str) -> None:
    """Path.rename fails for folders whose name starts with one of ``prefixes`` (the pipeline's
    staging folder ``.<label>.writing-*``, or the retired previous export inside ``.<label>.old-*``)."""
    real_rename = Path.rename

    def rename(self, target):
        if any(part.startswith(prefixes) for part in (self.name, self.parent.name)):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(self))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)


def test_a_failed_final_rename_puts_the_previous_export_back(api_args, tmp_path, monkeypatch):
    import sqlite3

    assert export(api_args, tmp_path, "--format", "csv").exit_code == 0
    before = snapshot(tmp_path / "2024-01")
    recorded = sqlite3.connect(tmp_path / "books.sqlite").execute("SELECT exported_at, manifest_sha256 FROM periods").fetchall()
    fail_renames(monkeypatch, ".2024-01.writing-")
    result = export(api_args, tmp_path, "--format", "csv,quickbooks")
    assert result.exit_code == 7
    assert result.stderr.startswith("Error: cannot write") and len(result.stderr.strip().splitlines()) == 1
    assert snapshot(tmp_path / "2024-01") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-01", "books.sqlite"]  # no .writing- or .old- left
    # the books changed with the pack or not at all: still the first export
    after = sqlite3.connect(tmp_path / "books.sqlite").execute("SELECT exported_at, manifest_sha256 FROM periods").fetchall()
    assert after == recorded


def test_when_even_the_way_back_fails_the_message_says_where_the_previous_export_is(api_args, tmp_path, monkeypatch):
    assert export(api_args, tmp_path, "--format", "csv").exit_code == 0
    before = snapshot(tmp_path / "2024-01")
    fail_renames(monkeypatch, ".2024-01.writing-", ".2024-01.old-")
    result = export(api_args, tmp_path, "--format", "csv")
    assert result.exit_code == 7
    (kept,) = tmp_path.glob(".2024-01.old-*/2024-01")
    assert f"the previous export is kept in {kept}" in result.stderr
    assert snapshot(kept) == before  # moved aside, never deleted


def test_strict_turns_warnings_into_exit_6(sandbox, api_args, tmp_path):
    sandbox.faults.duplicate_across_pages = True
    result = export(api_args, tmp_path, "--strict")
    assert result.exit_code == 6
    assert "duplicate record(s) dropped" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "csv,pdf"], "unknown format pdf"),
        (["--period", "2024-13"], "--period must be YYYY-MM"),
        (["--timezone", "Mars/Olympus"], "unknown time zone"),
    ],
)
def test_bad_options_exit_2_before_any_request(sandbox, api_args, tmp_path, args, message):
    result = invoke("export", "--period", "2024-01", "--out", str(tmp_path), *api_args, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(sandbox.requests) == 0


def test_missing_key_exits_2(tmp_path, monkeypatch):
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)
    result = invoke("export", "--period", "2024-01", "--out", str(tmp_path))
    assert result.exit_code == 2 and "no API key" in result.output


def test_key_from_the_environment(sandbox, tmp_path, monkeypatch):
    from exporter.sandbox import DEMO_KEY

    monkeypatch.setenv("WAVESPEED_API_KEY", DEMO_KEY)
    monkeypatch.setenv("WAVESPEED_BASE_URL", sandbox.url)
    result = invoke("export", "--period", "2024-01", "--out", str(tmp_path), "--format", "csv", "-q")
    assert result.exit_code == 0, result.output


def test_fetch_writes_exact_json_lines(sandbox, api_args, tmp_path):
    target = tmp_path / "jan.jsonl"
    result = invoke("fetch", "--period", "2024-01", "--output", str(target), *api_args)
    assert result.exit_code == 0, result.output
    lines = target.read_text(encoding="utf-8").splitlines()
    expected = in_january(sandbox)
    assert len(lines) == len(expected)
    served = {line.split('"id":"', 1)[1].split('"', 1)[0]: line for line in sandbox.dataset.lines()}
    assert lines == [served[r["id"]] for r in expected]


def test_fetch_to_stdout(sandbox, api_args):
    result = invoke("fetch", "--start", "2024-01-10", "--end", "2024-01-10", *api_args)
    assert result.exit_code == 0
    records = [json.loads(line, parse_float=Decimal) for line in io.StringIO(result.stdout)]
    assert records and all(r["created_at"].startswith("2024-01-10") for r in records)


def test_summary_prints_the_model_table_and_totals(sandbox, api_args, tmp_path):
    result = invoke("summary", "--period", "2024-01", *api_args)
    assert result.exit_code == 0, result.output
    w = month_window("2024-01")
    usage = sandbox.dataset.usage_by_model(w.first_day, w.last_day)
    total = sum(u.cost for u in usage.values())
    lines = result.stdout.splitlines()
    total_line = next(line for line in lines if line.startswith("TOTAL"))
    assert f" {total:,f}".rstrip("0") in total_line  # spend is positive on the terminal
    top_model = max(usage.items(), key=lambda kv: kv[1].cost)[0]
    assert any(line.startswith(top_model) for line in lines)
    assert list(tmp_path.iterdir()) == []


def test_sandbox_flag_needs_no_key_or_network(tmp_path, monkeypatch):
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)
    result = invoke("export", "--sandbox", "--period", "2024-01", "--out", str(tmp_path), "--format", "csv", "-q")
    assert result.exit_code == 0, result.output
    assert len(read_csv(tmp_path / "2024-01" / "transactions.csv")) > 1000


def test_beancount_of_a_sandbox_export_passes_bean_check(api_args, tmp_path):
    import shutil
    import subprocess
    import sys

    result = export(api_args, tmp_path, "--format", "beancount,quickbooks", "--granularity", "daily")
    assert result.exit_code == 0, result.output
    ledger = tmp_path / "2024-01" / "wavespeed_2024-01.beancount"
    main = tmp_path / "2024-01" / "main.beancount"
    main.write_text('include "accounts.beancount"\ninclude "wavespeed_2024-01.beancount"\n')
    bean_check = shutil.which("bean-check", path=str(Path(sys.executable).parent)) or shutil.which("bean-check")
    assert bean_check, "bean-check comes with the test extra (beancount)"
    checked = subprocess.run([bean_check, str(main)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ledger.read_text().count(" * ") >= 31  # one usage entry per day, plus top-ups


def test_reconciliation_flags_an_injected_mismatch(sandbox, api_args, tmp_path):
    sandbox.faults.usage_skew = {"google/veo3": Decimal("0.05")}
    result = export(api_args, tmp_path, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in read_csv(tmp_path / "2024-01" / "reconciliation.csv")}
    assert rows["google/veo3"]["status"] == "mismatch"
    # exported exact spend minus (provider's rounded cost + 0.05): the skew, give or take the rounding
    assert abs(Decimal(rows["google/veo3"]["difference"]) + Decimal("0.05")) <= Decimal("0.005")
    assert all(r["status"] == "ok" for m, r in rows.items() if m != "google/veo3")
    assert "google/veo3" in result.output  # the warning is shown
    manifest = json.loads((tmp_path / "2024-01" / "manifest.json").read_text())
    assert [r["model"] for r in manifest["reconciliation"] if r["status"] != "ok"] == ["google/veo3"]
    strict = export(api_args, tmp_path / "strict", "--format", "csv", "--strict")
    assert strict.exit_code == 6 and "google/veo3" in strict.output


def test_an_empty_period_still_gives_a_complete_pack(api_args, tmp_path):
    result = invoke("export", "--period", "2022-01", "--out", str(tmp_path), *api_args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "2022-01"
    assert read_csv(folder / "transactions.csv") == []
    assert (folder / "transactions.csv").read_text().startswith("id,created_at,date")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["warnings"] == ["no records in the period"] and manifest["totals"] == []


def test_verbose_logs_each_request_without_the_key(sandbox, tmp_path):
    result = invoke("fetch", "--period", "2024-01", "--base-url", sandbox.url, "--api-key", DEMO_KEY,
                    "--output", str(tmp_path / "x.jsonl"), "-v")
    assert result.exit_code == 0
    assert "GET /api/v3/account/billings?start_date=2023-12-30&end_date=2024-02-02&page=1&page_size=100 -> 200" in result.stderr
    assert result.stderr.count("GET /api/v3/account/billings") == 44
    assert DEMO_KEY not in result.output


def test_a_failed_fetch_leaves_no_output_file(sandbox, api_args, tmp_path):
    target = tmp_path / "jan.jsonl"
    target.write_text("previous\n")
    sandbox.faults.malformed = {in_january(sandbox)[3]["id"]: "created_at"}
    result = invoke("fetch", "--period", "2024-01", "--output", str(target), *api_args)
    assert result.exit_code == 5
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jan.jsonl"]


def test_a_malformed_account_mapping_exits_2_naming_the_key(api_args, tmp_path):
    from exporter.books.mapping_toml import DEFAULT_ACCOUNTS_PATH

    template = DEFAULT_ACCOUNTS_PATH.read_text()
    assert 'type = "OCASSET"' in template
    mapping = tmp_path / "accounts.toml"
    mapping.write_text(template.replace('type = "OCASSET"', 'type = "NOPE"', 1))
    result = export(api_args, tmp_path / "out", "--accounts", str(mapping))
    assert result.exit_code == 2
    assert "prepaid" in result.output and "NOPE" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_progress_bar_on_a_terminal(monkeypatch, capsys):
    from exporter import cli_options as cli_module

    monkeypatch.setattr(cli_module.sys.stderr, "isatty", lambda: True, raising=False)
    show = cli_module._progress_printer(quiet=False)
    assert show is not None and cli_module._progress_printer(quiet=True) is None
    show(1, 4, 100)
    show(4, 4, 400)
    err = capsys.readouterr().err
    assert "\rpages [#######.......................] 1/4  records 100" in err
    assert err.endswith("4/4  records 400\n")


_CRC_PROBE = """
import sys, zipfile, zlib
import exporter.pipeline
from exporter import deflate_backend
import gc
print("import", zipfile.crc32 is zlib.crc32, gc.get_threshold()[0])
from exporter.cli import main
sys.argv = ["wavespeed-export", "--version"]
try:
    main()
except SystemExit:
    pass
print("script", zipfile.crc32 is (deflate_backend._isal_zlib.crc32 if deflate_backend.ISAL else zlib.crc32), gc.get_threshold()[0])
"""


def test_only_the_console_script_has_zipfile_checksum_through_isal_and_collects_less_often():
    import gc
    import subprocess
    import sys

    from exporter.process import YOUNG_THRESHOLD

    probe = subprocess.run([sys.executable, "-c", _CRC_PROBE], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).parents[1])
    # the library leaves zipfile and the collector as they are
    assert probe.stdout.splitlines()[0] == f"import True {gc.get_threshold()[0]}", probe.stdout
    assert probe.stdout.splitlines()[-1] == f"script True {YOUNG_THRESHOLD}", probe.stdout


_POOL_PROBE = """
import pyarrow as pa, sys
from exporter.cli import main
sys.argv = ["wavespeed-export", "--version"]
try:
    main()
except SystemExit:
    pass
print(pa.default_memory_pool().backend_name)
"""


@pytest.mark.parametrize("named, expected", [(None, "jemalloc"), ("mimalloc", "mimalloc"), ("system", "system")])
def test_the_console_script_allocates_through_jemalloc_unless_a_pool_is_named(named, expected):
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "ARROW_DEFAULT_MEMORY_POOL"}
    if named:
        env["ARROW_DEFAULT_MEMORY_POOL"] = named
    probe = subprocess.run([sys.executable, "-c", _POOL_PROBE], env=env, capture_output=True, text=True, check=True,
                           cwd=Path(__file__).parents[1])
    assert probe.stdout.splitlines()[-1] == expected, probe.stdout


_CSV_ONLY_PROBE = """
import sys
from exporter.cli import main
sys.argv = ["wavespeed-export", "export", *sys.argv[1:], "--format", "csv", "-q"]
try:
    main()
except SystemExit as exit:
    print("exit", exit.code)
print("openpyxl", "openpyxl" in sys.modules)
print("requests", "requests" in sys.modules)
"""


def test_a_csv_only_export_never_loads_openpyxl_nor_a_render_requests(tmp_path):
    """writers/__init__.py's promise: a module is imported when its format is used (the
    consolidated month's workbook layout too, which only several accounts' exports need); and the
    HTTP client only when the API is called, which a --from-source render never does."""
    import subprocess
    import sys

    def probe(*args: str) -> list[str]:
        run = subprocess.run([sys.executable, "-c", _CSV_ONLY_PROBE, *args], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).parents[1])
        return run.stdout.splitlines()

    assert probe("--sandbox", "--period", "2024-01", "--out", str(tmp_path / "api")) == [
        "exit 0", "openpyxl False", "requests True"]
    assert probe("--from-source", str(tmp_path / "api" / "2024-01"), "--out", str(tmp_path / "render")) == [
        "exit 0", "openpyxl False", "requests False"]
    fetched = read_csv(tmp_path / "api" / "2024-01" / "transactions.csv")
    assert fetched[0]["id"].startswith("txn_")
    assert read_csv(tmp_path / "render" / "2024-01" / "transactions.csv") == fetched
