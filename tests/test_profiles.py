"""Several accounts: wavespeed-export.toml, --profile/--all-profiles, one books file for all.

Two sandboxes on 127.0.0.1 with different records and different keys play two accounts; each
accepts only its own key, so a run that succeeds sent each key to its own server only.
"""

from __future__ import annotations

import csv
import json
import socket
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from exporter.cli import cli
from exporter.cli_options import CliState
from exporter.sandbox import SandboxServer, generate_dataset, serve_in_thread

KEY_A = "ws-test-key-alpha-0001"
KEY_B = "ws-test-key-beta-0002"
NOW = datetime(2024, 2, 20, 12, tzinfo=UTC)
TEXT_FILES = ("transactions.csv", "by_model.csv", "by_day.csv", "quickbooks.iif", "quickbooks_online_journal.csv",
              "wavespeed_2024-01.beancount", "accounts.beancount")


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), obj=CliState(clock=lambda: NOW), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[SandboxServer, SandboxServer]]:
    months = ("2023-12", "2024-01", "2024-02")
    alpha = generate_dataset(months, records_per_month=300, seed="alpha")
    beta = generate_dataset(months, records_per_month=200, seed="beta")
    with serve_in_thread(alpha, api="current", key=KEY_A) as a, serve_in_thread(beta, api="current", key=KEY_B) as b:
        yield a, b


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WS_KEY_A", KEY_A)
    monkeypatch.setenv("WS_KEY_B", KEY_B)
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)
    monkeypatch.delenv("WAVESPEED_EXPORT_CONFIG", raising=False)


def write_config(tmp_path: Path, servers: tuple[SandboxServer, SandboxServer], extra: str = "") -> Path:
    a, b = servers
    path = tmp_path / "wavespeed-export.toml"
    path.write_text(f"""
[defaults]
out = "out"
timezone = "UTC"
formats = ["csv", "quickbooks", "beancount"]
backoff = 0.01

[profiles.alpha]
api_key_env = "WS_KEY_A"
base_url = "{a.url}"

[profiles.beta]
api_key_env = "WS_KEY_B"
base_url = "{b.url}"
timezone = "Europe/Berlin"
{extra}""", encoding="utf-8")
    return path


def dead_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def docnums(folder: Path) -> set[str]:
    """The journal numbers (DOCNUM) of a pack's IIF file."""
    with open(folder / "quickbooks.iif", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    column = next(row for row in rows if row and row[0] == "!TRNS").index("DOCNUM")
    return {row[column] for row in rows if row and row[0] in ("TRNS", "SPL")}


def settings(output: str, profile: str) -> dict[str, dict[str, str]]:
    shown = json.loads(output)["profiles"]
    return next(p["settings"] for p in shown if p["profile"] == profile)


# -- the file ----------------------------------------------------------------------------------


def test_config_shows_each_value_and_where_it_came_from(tmp_path, servers, keys):
    config = write_config(tmp_path, servers)
    result = invoke("config", "--config", str(config), "--json", "--lookback", "30")
    assert result.exit_code == 0, result.output
    alpha, beta = settings(result.output, "alpha"), settings(result.output, "beta")
    assert alpha["timezone"] == {"value": "UTC", "from": "defaults"}
    assert beta["timezone"] == {"value": "Europe/Berlin", "from": "profile beta"}  # profile > defaults
    assert alpha["lookback"] == {"value": "30", "from": "command line"}  # command line > profile > defaults
    assert alpha["granularity"] == {"value": "monthly", "from": "built-in"}
    assert alpha["formats"] == {"value": "csv,quickbooks,beancount", "from": "defaults"}
    assert alpha["base_url"] == {"value": servers[0].url, "from": "profile alpha"}
    assert alpha["out"]["value"] == str(tmp_path / "out" / "alpha")  # relative to the file's folder
    assert alpha["books"] == {"value": str(tmp_path / "out" / "books.sqlite"), "from": "defaults"}  # one for all
    assert alpha["key"] == {"value": "environment variable WS_KEY_A (set)", "from": "profile alpha"}
    # the command line wins over the profile too, and the text form says the same
    text = invoke("config", "--config", str(config), "--profile", "beta", "--timezone", "Asia/Tokyo")
    assert text.exit_code == 0, text.output
    assert "[profiles.beta]" in text.output and "[profiles.alpha]" not in text.output
    line = next(line for line in text.output.splitlines() if line.strip().startswith("timezone"))
    assert line.split() == ["timezone", "Asia/Tokyo", "command", "line"]
    assert KEY_A not in text.output + result.output and KEY_B not in text.output + result.output


def test_the_file_is_found_in_the_working_directory_or_through_the_environment(tmp_path, servers, keys, monkeypatch):
    config = write_config(tmp_path, servers)
    monkeypatch.chdir(tmp_path)
    assert invoke("config", "--json").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert invoke("config").exit_code == 2  # none here
    monkeypatch.setenv("WAVESPEED_EXPORT_CONFIG", str(config))
    result = invoke("config", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["file"] == str(config)


@pytest.mark.parametrize("table, line", [
    ("profiles.alpha", 'api_key = "sk-live-0123456789abcdef"'),
    ("profiles.alpha", 'token = "x"'),
    ("defaults", 'api_key = "anything"'),
    ("profiles.beta", 'note = "ws-0123456789abcdefghij"'),  # a value that looks like a key, wherever it is
])
def test_a_literal_key_is_refused_naming_the_file_and_profile(tmp_path, servers, keys, table, line):
    config = write_config(tmp_path, servers)
    text = config.read_text(encoding="utf-8").replace(f"[{table}]\n", f"[{table}]\n{line}\n")
    config.write_text(text, encoding="utf-8")
    for command in (("config",), ("export", "--all-profiles", "--period", "2024-01")):
        result = invoke(*command, "--config", str(config))
        assert result.exit_code == 2, result.output
        assert str(config) in result.output and "looks like an API key" in result.output
        name = table.removeprefix("profiles.")
        assert (f"profile {name!r}" if table != "defaults" else "[defaults]") in result.output
        assert "0123456789abcdef" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_long_variable_name_is_not_a_key(tmp_path, servers, keys, monkeypatch):
    config = write_config(tmp_path, servers)
    name = "WAVESPEED_KEY_OF_OUR_LARGEST_CLIENT_2024"
    config.write_text(config.read_text(encoding="utf-8").replace('"WS_KEY_B"', f'"{name}"'), encoding="utf-8")
    result = invoke("config", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    assert settings(result.output, "beta")["key"]["value"] == f"environment variable {name} (NOT SET)"


def test_a_key_given_instead_of_a_variable_name_is_refused(tmp_path, servers, keys):
    config = write_config(tmp_path, servers)
    config.write_text(config.read_text(encoding="utf-8").replace('"WS_KEY_B"', '"ws-test-key-beta-0002"'),
                      encoding="utf-8")
    result = invoke("export", "--config", str(config), "--profile", "alpha", "--period", "2024-01")
    assert result.exit_code == 2
    assert "profile 'beta'" in result.output and str(config) in result.output
    assert KEY_B not in result.output


@pytest.mark.parametrize("table, line, named", [
    ("defaults", 'colour = "red"', "'colour'"),
    ("profiles.alpha", 'lookback = -1', "lookback"),
    ("profiles.alpha", 'lookback = "many"', "lookback"),
    ("profiles.alpha", 'timezone = "Mars/Olympus"', "timezone"),
    ("profiles.alpha", 'formats = ["csv", "pdf"]', "formats"),
    ("defaults", 'strict = "yes"', "strict"),
    ("profiles.beta", 'granularity = "weekly"', "granularity"),
    ("profiles.beta", 'books = "other.sqlite"', "'books'"),  # one books file: [defaults] only
    ("profiles.alpha", 'sandbox = true', "exactly one of"),
])
def test_unknown_keys_and_bad_values_exit_2_naming_file_and_key(tmp_path, servers, keys, table, line, named):
    config = write_config(tmp_path, servers)
    config.write_text(config.read_text(encoding="utf-8").replace(f"[{table}]\n", f"[{table}]\n{line}\n"),
                      encoding="utf-8")
    result = invoke("export", "--config", str(config), "--all-profiles", "--period", "2024-01")
    assert result.exit_code == 2, result.output
    assert str(config) in result.output and named in result.output and f"[{table}]" in result.output
    assert not (tmp_path / "out").exists()


def test_profiles_need_a_file_and_decide_their_own_key_and_url(tmp_path, servers, keys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "configuration file" in invoke("export", "--profile", "alpha", "--period", "2024-01").output
    config = write_config(tmp_path, servers)
    for extra in (("--api-key", KEY_A), ("--base-url", servers[0].url), ("--sandbox",)):
        result = invoke("export", "--config", str(config), "--profile", "alpha", "--period", "2024-01", *extra)
        assert result.exit_code == 2 and "each profile decides it" in result.output
    result = invoke("export", "--config", str(config), "--all-profiles", "--period", "2024-01", "--opening-balance", "5")
    assert result.exit_code == 2 and "one account's figure" in result.output
    result = invoke("export", "--config", str(config), "--profile", "gamma", "--period", "2024-01")
    assert result.exit_code == 2 and "no profile 'gamma'" in result.output
    # the environment's key is never sent to a profile's server
    monkeypatch.delenv("WS_KEY_A")
    monkeypatch.setenv("WAVESPEED_API_KEY", KEY_A)
    result = invoke("export", "--config", str(config), "--profile", "alpha", "--period", "2024-01")
    assert result.exit_code == 2 and "WS_KEY_A is not set" in result.output


# -- running several accounts ------------------------------------------------------------------


def test_each_profile_gets_the_pack_a_single_account_export_gets(tmp_path, servers, keys):
    a, b = servers
    config = write_config(tmp_path, servers)
    result = invoke("export", "--config", str(config), "--all-profiles", "--period", "2024-01")
    assert result.exit_code == 0, result.output
    assert "profiles: alpha ok, beta ok" in result.output
    out = tmp_path / "out"
    single = tmp_path / "single"
    for server, key, tz, name in ((a, KEY_A, "UTC", "alpha"), (b, KEY_B, "Europe/Berlin", "beta")):
        alone = invoke("export", "--period", "2024-01", "--base-url", server.url, "--api-key", key, "--timezone", tz,
                       "--format", "csv,quickbooks,beancount", "--backoff", "0.01", "-q", "--out", str(single / name))
        assert alone.exit_code == 0, alone.output
        letter = "A" if name == "alpha" else "B"  # the books gave each account its letter, in the order of the file
        for file in TEXT_FILES:
            expected = (single / name / "2024-01" / file).read_text(encoding="utf-8").replace("WS2401", f"W{letter}2401")
            assert (out / name / "2024-01" / file).read_text(encoding="utf-8") == expected, (name, file)
    # each pack names its account: the profile's name (a single-account export's is "default")
    named = invoke("export", "--config", str(config), "--profile", "beta", "--period", "2024-01", "--format", "html",
                   "--out", str(tmp_path / "named"))
    assert named.exit_code == 0, named.output
    assert "Account <b>beta</b>" in (tmp_path / "named/beta/2024-01/report.html").read_text(encoding="utf-8")
    # two accounts, two different packs; journal numbers unique across them
    assert read_csv(out / "alpha/2024-01/transactions.csv") != read_csv(out / "beta/2024-01/transactions.csv")
    alpha_numbers, beta_numbers = docnums(out / "alpha/2024-01"), docnums(out / "beta/2024-01")
    assert alpha_numbers and beta_numbers and not alpha_numbers & beta_numbers
    # one books file, the account column = the profile name
    with sqlite3.connect(out / "books.sqlite") as db:
        rows = db.execute("SELECT account, label, records, pack FROM periods ORDER BY account").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("alpha", "2024-01"), ("beta", "2024-01")]
    assert rows[0][2] == len(read_csv(out / "alpha/2024-01/transactions.csv"))
    assert rows[1][2] == len(read_csv(out / "beta/2024-01/transactions.csv"))
    assert not list(out.glob("2024-01"))  # no pack outside the profiles' folders
    # a profile run alone writes exactly what it wrote in company
    again = invoke("export", "--config", str(config), "--profile", "beta", "--period", "2024-01", "--out",
                   str(tmp_path / "again"))
    assert again.exit_code == 0, again.output
    for file in TEXT_FILES:
        alone_text = (tmp_path / "again/beta/2024-01" / file).read_text(encoding="utf-8")
        assert alone_text == (single / "beta/2024-01" / file).read_text(encoding="utf-8").replace("WS2401", "WA2401")


def test_closing_one_accounts_month_leaves_the_others_open(tmp_path, servers, keys):
    config = write_config(tmp_path, servers)
    base = ("--config", str(config))
    assert invoke("export", *base, "--all-profiles", "--period", "2023-12").exit_code == 0
    assert invoke("export", *base, "--all-profiles", "--period", "2024-01").exit_code == 0
    closed = invoke("close", *base, "--profile", "alpha", "--period", "2023-12")
    assert closed.exit_code == 0, closed.output
    listing = invoke("books", *base, "--all-profiles")
    assert listing.exit_code == 0, listing.output
    alpha, beta = listing.output.split("== profile beta ==")
    alpha_rows = {line.split()[0]: line for line in alpha.splitlines() if line.startswith("20")}
    beta_rows = {line.split()[0]: line for line in beta.splitlines() if line.startswith("20")}
    assert alpha_rows["2023-12"].split()[3] != "open" and beta_rows["2023-12"].split()[3] == "open"
    assert alpha_rows["2024-01"].split()[3] == "open"
    # alpha's December is closed: exporting it again is refused, beta's is not
    refused = invoke("export", *base, "--all-profiles", "--period", "2023-12")
    assert refused.exit_code == 2
    assert "alpha FAILED (exit 2), beta ok" in refused.output
    # books check and close in order: per account
    assert invoke("books", "check", *base, "--all-profiles").exit_code == 0
    checked = invoke("books", *base, "--profile", "alpha", "check")  # the group's options reach check
    assert checked.exit_code == 0 and "1 closed period(s) match the books: 2023-12" in checked.output
    assert "beta" not in checked.output
    out_of_order = invoke("close", *base, "--profile", "beta", "--period", "2024-01")
    assert out_of_order.exit_code == 2 and "close it first" in out_of_order.output
    assert invoke("close", *base, "--profile", "alpha", "--period", "2024-01").exit_code == 0
    with sqlite3.connect(tmp_path / "out" / "books.sqlite") as db:
        status = {(a, label): s for a, label, s in db.execute("SELECT account, label, status FROM periods")}
    assert status == {("alpha", "2023-12"): "closed", ("alpha", "2024-01"): "closed",
                      ("beta", "2023-12"): "open", ("beta", "2024-01"): "open"}
    # a books file without profiles knows nothing of them: the default account is empty
    plain = invoke("books", "--out", str(tmp_path / "out"))
    assert plain.exit_code == 0 and "2023-12" not in plain.output


def dead_profile() -> str:
    """A third profile whose server is gone."""
    return f"""
[profiles.dead]
api_key_env = "WS_KEY_A"
base_url = "http://127.0.0.1:{dead_port()}"
retries = 1
"""


def test_a_dead_account_does_not_stop_or_spoil_the_others(tmp_path, servers, keys):
    config = write_config(tmp_path, servers, dead_profile())
    result = invoke("export", "--config", str(config), "--all-profiles", "--period", "2024-01")
    assert result.exit_code == 4, result.output
    assert "profiles: alpha ok, beta ok, dead FAILED (exit 4)" in result.output
    assert "1 of 3 profile(s) failed: dead (exit 4)" in result.output
    out = tmp_path / "out"
    for name in ("alpha", "beta"):
        assert (out / name / "2024-01" / "manifest.json").exists()
    assert not (out / "dead").exists() or not list((out / "dead").glob("2024-01"))
    with sqlite3.connect(out / "books.sqlite") as db:
        assert {a for (a,) in db.execute("SELECT account FROM periods")} == {"alpha", "beta"}
    # --json: one object, each profile's result or error
    again = invoke("export", "--config", str(config), "--all-profiles", "--period", "2024-01", "--json")
    assert again.exit_code == 4
    shown = json.loads(again.output[:again.output.rindex("}") + 1])
    assert [(p["profile"], p["exit_code"]) for p in shown["profiles"]] == [("alpha", 0), ("beta", 0), ("dead", 4)]
    assert shown["profiles"][0]["result"]["period"]["label"] == "2024-01"


def test_a_wrong_key_fails_its_own_profile_only(tmp_path, servers, keys, monkeypatch):
    config = write_config(tmp_path, servers)
    monkeypatch.setenv("WS_KEY_B", KEY_A)  # alpha's key would reach beta's server: it answers 401
    result = invoke("export", "--config", str(config), "--all-profiles", "--period", "2024-01", "-q")
    assert result.exit_code == 3, result.output
    assert "beta FAILED (exit 3)" in result.output
    assert (tmp_path / "out/alpha/2024-01/manifest.json").exists()


def test_a_key_command_and_summary_per_profile(tmp_path, servers, keys):
    config = write_config(tmp_path, servers)
    command = f"{sys.executable} -c \\\"import os; print(os.environ['WS_KEY_A'])\\\""
    config.write_text(config.read_text(encoding="utf-8").replace('api_key_env = "WS_KEY_A"',
                                                                 f'api_key_command = "{command}"'), encoding="utf-8")
    shown = invoke("config", "--config", str(config), "--json", "--profile", "alpha")
    assert settings(shown.output, "alpha")["key"]["value"].startswith("command: ")
    result = invoke("summary", "--config", str(config), "--all-profiles", "--period", "2024-01", "--json")
    assert result.exit_code == 0, result.output
    profiles = json.loads(result.output)["profiles"]
    assert [p["profile"] for p in profiles] == ["alpha", "beta"]
    assert profiles[0]["result"] != profiles[1]["result"]
    failing = config.read_text(encoding="utf-8").replace("print(os.environ['WS_KEY_A'])", "raise SystemExit(3)")
    config.write_text(failing, encoding="utf-8")
    result = invoke("summary", "--config", str(config), "--profile", "alpha", "--period", "2024-01")
    assert result.exit_code == 2 and "api_key_command exited with status 3" in result.output


def test_defaults_apply_without_a_profile(tmp_path, servers, keys, monkeypatch):
    a, _ = servers
    write_config(tmp_path, servers)
    monkeypatch.chdir(tmp_path)
    result = invoke("export", "--period", "2024-01", "--base-url", a.url, "--api-key", KEY_A, "-q")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "2024-01"  # [defaults] out; the default account's numbers
    names = {p.name for p in folder.iterdir()}
    assert {"transactions.csv", "quickbooks.iif", "wavespeed_2024-01.beancount"} <= names  # [defaults] formats
    assert not {"wavespeed_2024-01.xlsx", "report.html"} & names
    assert all(n.startswith("WS2401") for n in docnums(folder))


# -- journal numbers ---------------------------------------------------------------------------


def test_each_account_has_its_own_letter_in_journal_numbers(tmp_path):
    from datetime import date

    from exporter.books.database import Books
    from exporter.books.numbering import ACCOUNT_CODES, journal_prefix
    from exporter.errors import ConfigError
    from exporter.period import Window

    month, quarter = Window(date(2024, 1, 1), date(2024, 1, 31), "UTC", "2024-01"), Window(
        date(2024, 1, 1), date(2024, 3, 31), "UTC", "2024-Q1")
    span = Window(date(2024, 1, 5), date(2024, 2, 4), "UTC", "2024-01-05..2024-02-04")
    assert [journal_prefix(w) for w in (month, quarter, span)] == ["WS2401", "WS24Q1", "W240105"]
    assert [journal_prefix(w, "A") for w in (month, quarter, span)] == ["WA2401", "WA24Q1", "A240105"]
    prefixes = {journal_prefix(w, code) for w in (month, quarter, span) for code in ("S", *ACCOUNT_CODES)}
    assert len(prefixes) == 3 * (1 + len(ACCOUNT_CODES))  # no two accounts share a prefix
    path = tmp_path / "books.sqlite"
    for n, code in enumerate(ACCOUNT_CODES):
        with Books(path, f"account{n}") as books, books.transaction():
            assert books.journal_code() == code
            books.keep_journal_code(code)
    with Books(path, "account0") as books:
        assert books.journal_code() == "A"  # kept for good
    with Books(path, "default") as books:
        assert books.journal_code() == "S"
    with Books(path, "one-too-many") as books, pytest.raises(ConfigError, match="books of its own"):
        books.journal_code()


def test_the_example_configuration_runs_with_no_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WAVESPEED_EXPORT_CONFIG", raising=False)
    example = Path(__file__).parent.parent / "templates" / "wavespeed-export.example.toml"
    shown = invoke("config", "--config", str(example), "--json")
    assert shown.exit_code == 0, shown.output
    assert [p["profile"] for p in json.loads(shown.output)["profiles"]] == ["demo-prod", "demo-staging"]
    result = invoke("export", "--config", str(example), "--all-profiles", "--period", "2024-01", "--out",
                    str(tmp_path), "--format", "csv", "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo-prod/2024-01/transactions.csv").exists()
    assert (tmp_path / "demo-staging/2024-01/transactions.csv").exists()
