"""The books remember: closed periods stay closed, late changes are booked once in the open period,
the credit rolls forward from month to month and ties to the provider's balance.

End to end through the CLI against the sandbox on 127.0.0.1, the sandbox's past changed between
runs (exporter.sandbox.revisions); every check reads the files (and the database) back.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from exporter.books.database import Books
from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread
from exporter.sandbox.data import Record, dataset_from_records
from exporter.sandbox.revisions import revise

FORMATS = "csv,quickbooks,beancount"
BOOK_FILES = ("adjustments.csv", "by_model.csv", "quickbooks.iif", "quickbooks_online_journal.csv",
              "quickbooks_online_bank.csv")


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def export(server: SandboxServer, out: Path, period: str, *extra: str):
    return run("export", "--period", period, "--out", str(out), "--format", FORMATS, "--base-url", server.url,
               "--api-key", DEMO_KEY, "--backoff", "0.01", "-q", *extra)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def manifest(out: Path, period: str) -> dict:
    return json.loads((out / period / "manifest.json").read_text())


def money(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def january(server: SandboxServer) -> list[Record]:
    return [r for r in server.dataset.records if r.created_at.strftime("%Y-%m") == "2024-01"]


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with serve_in_thread() as server:
        yield server


def change_january(server: SandboxServer) -> dict[str, tuple[str, Decimal]]:
    """Late changes to January: returns id -> (expected change, expected delta)."""
    records = january(server)
    pending = next(r for r in records if r.status == "pending" and r.type == "usage")
    done = [r for r in records if r.status == "completed" and r.type == "usage"]
    reversed_usage, repriced, vanished = done[10], done[20], done[30]
    topup = next(r for r in records if r.type == "topup" and r.amount == Decimal("10.00"))
    late = Record("txn_late_0001", "usage", Decimal("-0.0125"), "USD", "completed",
                  datetime(2024, 1, 20, 12, tzinfo=timezone.utc), model="wavespeed-ai/flux-dev")
    server.dataset = revise(
        server.dataset,
        statuses={pending.id: "completed", reversed_usage.id: "failed", topup.id: "failed"},
        amounts={repriced.id: repriced.amount * 2},
        removed=[vanished.id],
        added=[late],
    )
    return {
        pending.id: ("completed_late", pending.amount),
        reversed_usage.id: ("reversed", -reversed_usage.amount),
        topup.id: ("reversed", Decimal("-10.00")),
        repriced.id: ("amount_changed", repriced.amount),
        vanished.id: ("missing", Decimal(0)),
        late.id: ("arrived_late", late.amount),
    }


def test_a_month_end_loop_books_late_changes_once_in_the_open_period(server, tmp_path):
    out = tmp_path / "out"
    first = export(server, out, "2024-01", "--close")
    assert first.exit_code == 0, first.output
    jan_pack = {p.name: p.read_bytes() for p in (out / "2024-01").iterdir() if p.is_file()}

    expected = change_january(server)

    # the closed month stays closed: exit 2, one line, the pack untouched
    again = export(server, out, "2024-01")
    assert again.exit_code == 2 and "2024-01 was closed on" in again.stderr
    assert "next open period" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in (out / "2024-01").iterdir() if p.is_file()} == jan_pack

    february = export(server, out, "2024-02", "--format", FORMATS + ",html,xlsx")
    assert february.exit_code == 0, february.output
    adjustments = rows(out / "2024-02" / "adjustments.csv")
    assert {r["id"]: (r["change"], Decimal(r["delta"])) for r in adjustments} == expected
    assert {r["period"] for r in adjustments} == {"2024-01"}
    feb = manifest(out, "2024-02")
    (summary,) = feb["adjustments"]
    # the records that moved money: the missing one posts nothing (a warning), as in the journal's memos
    assert (summary["period"], summary["count"]) == ("2024-01", 5)
    assert Decimal(summary["total"]) == sum(delta for _, delta in expected.values())
    assert any("no longer returned by the API" in w for w in feb["warnings"])  # missing: warned, not posted
    late_line = "Late changes to closed periods, booked in this one (adjustments.csv): 2024-01: 5 records"
    assert late_line in (out / "2024-02" / "report.html").read_text()
    summary_sheet = load_workbook(out / "2024-02" / "wavespeed_2024-02.xlsx", read_only=True)["Summary"]
    assert any(str(cell).startswith(late_line) for row in summary_sheet.iter_rows(values_only=True) for cell in row if cell)

    # the adjustments are journal entries of their own, numbered WS2402A..., in every book format
    journal = rows(out / "2024-02" / "quickbooks_online_journal.csv")
    late = [r for r in journal if r["JournalNo"].startswith("WS2402A")]
    assert {r["JournalNo"] for r in late} == {"WS2402A", "WS2402A001"}
    for number in ("WS2402A", "WS2402A001"):
        lines = [r for r in late if r["JournalNo"] == number]
        assert sum(Decimal(r["Debits"] or 0) - Decimal(r["Credits"] or 0) for r in lines) == 0
    [memo] = {r["Description"] for r in late if r["JournalNo"] == "WS2402A" and "total" in r["Description"]}
    assert f"({summary['count'] - 1} records" in memo  # the summary entry's records + the one reversal entry
    reversal = [r for r in late if r["JournalNo"] == "WS2402A001"]
    assert {(r["AccountName"], r["Credits"] or r["Debits"]) for r in reversal} == {
        ("Prepaid Expenses:WaveSpeedAI Credits", "10.00"), ("WaveSpeedAI Clearing", "10.00")}
    assert "WS2402A" in (out / "2024-02" / "quickbooks.iif").read_text()
    assert 'journal_no: "WS2402A001"' in (out / "2024-02" / "wavespeed_2024-02.beancount").read_text()
    bank = rows(out / "2024-02" / "quickbooks_online_bank.csv")
    assert any(r["Description"].endswith("[WS2402A001]") and r["Amount"] == "-10.00" for r in bank)

    assert not any(note.startswith("new model") for note in feb["notes"])  # January had them all

    # exporting the open month again gives the same books, byte for byte
    first_bytes = {name: (out / "2024-02" / name).read_bytes() for name in BOOK_FILES}
    assert export(server, out, "2024-02").exit_code == 0
    assert {name: (out / "2024-02" / name).read_bytes() for name in BOOK_FILES} == first_bytes

    # once February is closed its adjustments are booked: March posts none of them again
    assert run("close", "--period", "2024-02", "--out", str(out)).exit_code == 0
    march = export(server, out, "2024-03", "--close")
    assert march.exit_code == 0, march.output
    assert rows(out / "2024-03" / "adjustments.csv") == []
    assert not any(r["JournalNo"].startswith("WS2403A") for r in rows(out / "2024-03" / "quickbooks_online_journal.csv"))

    # the credit rolls forward: each opening is the previous closing, the last ties to the provider
    jan, feb, mar = (manifest(out, p)["rollforward"][0] for p in ("2024-01", "2024-02", "2024-03"))
    assert jan["opening_source"].startswith("derived from the provider's balance")
    assert feb["opening"] == jan["closing"] and feb["opening_source"] == "closing of 2024-01 in the books"
    assert mar["opening"] == feb["closing"]
    assert money(feb["adjustments"]) == sum(delta for _, delta in expected.values())
    for row in (jan, feb, mar):
        parts = ("opening", "topups", "usage", "refunds", "other", "adjustments")
        assert sum(money(row[k]) for k in parts) == money(row["closing"])  # it foots
    after_march = sum(r.amount for r in server.dataset.records
                      if r.status == "completed" and r.created_at >= datetime(2024, 4, 1, tzinfo=timezone.utc))
    (vanished,) = [r for r in adjustments if r["change"] == "missing"]  # booked, then dropped by the provider
    provider_says = server.dataset.balance - after_march
    assert money(mar["closing"]) - provider_says == Decimal(vanished["amount_before"])  # nothing else differs
    assert not any("does not tie" in w for p in ("2024-01", "2024-02", "2024-03") for w in manifest(out, p)["warnings"])

    # one Beancount ledger across the three months (the latest accounts file, every month's
    # transactions) passes bean-check, balance assertions included
    ledger = out / "ledger.beancount"
    ledger.write_text('include "2024-03/accounts.beancount"\n' + "".join(
        f'include "{p}/wavespeed_{p}.beancount"\n' for p in ("2024-01", "2024-02", "2024-03")))
    bean_check = shutil.which("bean-check", path=str(Path(sys.executable).parent)) or "bean-check"
    checked = subprocess.run([bean_check, str(ledger)], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert sum(" balance " in (out / p / f"wavespeed_{p}.beancount").read_text() for p in ("2024-01", "2024-02", "2024-03")) == 3

    # the books list the three months as closed, with the adjustments where they were posted
    listed = run("books", "--out", str(out))
    assert listed.exit_code == 0
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert set(lines) == {"2024-01", "2024-02", "2024-03"} and " open " not in listed.stdout
    assert summary["total"] in lines["2024-02"]


def test_rounding_never_drifts_across_months(server, tmp_path):
    """The prepaid account's postings over three months equal the exact running balance rounded:
    the books carry the sub-cent rest from month to month (docs/booking.md, "Rounding")."""
    out = tmp_path / "out"
    for period in ("2024-01", "2024-02", "2024-03"):
        assert export(server, out, period, "--granularity", "daily").exit_code == 0
    first = manifest(out, "2024-01")["rollforward"][0]
    last = manifest(out, "2024-03")["rollforward"][0]
    posted = sum(
        Decimal(r["Debits"] or 0) - Decimal(r["Credits"] or 0)
        for p in ("2024-01", "2024-02", "2024-03")
        for r in rows(out / p / "quickbooks_online_journal.csv")
        if r["AccountName"] == "Prepaid Expenses:WaveSpeedAI Credits"
    )
    opening = Decimal(first["opening"]).quantize(Decimal("0.01"))
    assert opening + posted == Decimal(last["closing"]).quantize(Decimal("0.01"))


def test_close_refuses_what_it_cannot_vouch_for_and_books_check_names_an_edited_file(server, tmp_path):
    out = tmp_path / "out"
    never = run("close", "--period", "2024-01", "--out", str(out))
    assert never.exit_code == 2 and "no books database" in never.stderr
    assert export(server, out, "2024-01").exit_code == 0
    assert run("close", "--period", "2023-12", "--out", str(out)).exit_code == 2

    pack = out / "2024-01"
    original = (pack / "by_model.csv").read_bytes()
    (pack / "by_model.csv").write_bytes(original + b"tampered\r\n")
    refused = run("close", "--period", "2024-01", "--out", str(out))
    assert refused.exit_code == 2 and "by_model.csv was changed since the export" in refused.stderr

    (pack / "by_model.csv").write_bytes(original)
    closed = run("close", "--period", "2024-01", "--out", str(out))
    assert closed.exit_code == 0 and closed.stdout.startswith("closed 2024-01")
    with Books(out / "books.sqlite", write=False) as books:
        booked = books.snapshot("2024-01")
    statuses = booked["status"].value_counts().to_dict()
    assert statuses == {"completed": 3888, "pending": 62, "failed": 50}  # pending ones kept: they may complete late
    assert (booked["entry"] == "WS2401U").sum() == 3882
    assert run("books", "check", "--out", str(out)).exit_code == 0

    (pack / "quickbooks.iif").write_text("edited by hand\r\n")
    checked = run("books", "check", "--out", str(out))
    assert checked.exit_code == 5 and "quickbooks.iif was changed since the export" in checked.stderr


def test_reopen_keeps_the_reason_and_allows_a_restatement(server, tmp_path):
    out = tmp_path / "out"
    assert export(server, out, "2024-01", "--close").exit_code == 0
    assert run("reopen", "--period", "2024-01", "--out", str(out), "--reason", " ").exit_code == 2
    reopened = run("reopen", "--period", "2024-01", "--out", str(out), "--reason", "provider re-billed two tasks")
    assert reopened.exit_code == 0, reopened.output
    assert export(server, out, "2024-01").exit_code == 0  # a deliberate restatement
    events = sqlite3.connect(out / "books.sqlite").execute("SELECT action, detail FROM events ORDER BY rowid").fetchall()
    assert [action for action, _ in events] == ["export", "close", "reopen", "export"]
    assert events[2][1] == "provider re-billed two tasks"


def test_the_opening_is_unknown_unless_given_when_the_provider_cannot_tell(server, tmp_path):
    capped = export(server, tmp_path / "a", "2024-01", "--balance-max-records", "10")
    assert capped.exit_code == 0, capped.output
    (row,) = manifest(tmp_path / "a", "2024-01")["rollforward"]
    assert row["opening"] is None and row["closing"] is None and "--balance-max-records 10" in row["opening_source"]
    # the period's own fetch received the first days after it, the ranged fetch the rest: counted once each
    after = sum(r.created_at >= datetime(2024, 2, 1, tzinfo=timezone.utc) for r in server.dataset.records)
    assert f"unknown: {after} records after the period, over --balance-max-records 10" in row["opening_source"]

    given = export(server, tmp_path / "b", "2024-01", "--balance-max-records", "10", "--opening-balance", "50.0025")
    (row,) = manifest(tmp_path / "b", "2024-01")["rollforward"]
    assert given.exit_code == 0 and row["opening"] == "50.0025" and row["opening_source"] == "given with --opening-balance"
    assert money(row["closing"]) == sum(money(row[k]) for k in ("opening", "topups", "usage", "refunds", "other", "adjustments"))


def test_a_provider_balance_that_does_not_tie_is_a_warning_naming_both_figures(server, tmp_path):
    out = tmp_path / "out"
    assert export(server, out, "2024-01").exit_code == 0
    server.faults = replace(server.faults, balance_skew=Decimal("0.05"))
    result = export(server, out, "2024-02")
    assert result.exit_code == 0
    (warning,) = [w for w in manifest(out, "2024-02")["warnings"] if "does not tie" in w]
    closing = manifest(out, "2024-02")["rollforward"][0]["closing"]
    assert closing in warning and f"{Decimal(closing) + Decimal('0.05')}" in warning and "difference -0.05" in warning
    assert export(server, out, "2024-02", "--strict").exit_code == 6  # month-close automation stops


def test_two_processes_writing_the_books_at_once_never_corrupt_them(server, tmp_path):
    out = tmp_path / "out"
    assert export(server, out, "2024-01").exit_code == 0
    base = [sys.executable, "-m", "exporter"]
    api = ["--base-url", server.url, "--api-key", DEMO_KEY, "--format", "csv", "-q"]
    children = [
        subprocess.Popen([*base, "close", "--period", "2024-01", "--out", str(out)], stderr=subprocess.PIPE, text=True),
        subprocess.Popen([*base, "export", "--period", "2024-02", "--out", str(out), *api], stderr=subprocess.PIPE, text=True),
        subprocess.Popen([*base, "export", "--period", "2024-03", "--out", str(out), *api], stderr=subprocess.PIPE, text=True),
    ]
    results = [(child.wait(timeout=120), child.stderr.read() if child.stderr else "") for child in children]
    for code, stderr in results:  # each one finished, or said in one line why not
        assert code == 0 or (code == 2 and len(stderr.strip().splitlines()) == 1), stderr
    db = sqlite3.connect(out / "books.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    recorded = dict(db.execute("SELECT label, status FROM periods"))
    for (code, _), label in zip(results[1:], ("2024-02", "2024-03")):
        assert (label in recorded) == (code == 0) and (out / label).exists() == (code == 0)
    assert recorded["2024-01"] == ("closed" if results[0][0] == 0 else "open")


def test_a_model_new_to_the_books_is_a_note_not_a_warning():
    from exporter.books.ledger import BooksView, book_period
    from exporter.books.mapping_toml import load_mapping
    from exporter.period import month_window
    from factories import make_report, usage_record

    report = make_report([usage_record("old/model", "-1.00"), usage_record("new/model", "-2.00")])
    booked = book_period(report.summaries, month_window("2024-01"), load_mapping(), "monthly",
                         BooksView(known_models=frozenset({"old/model"})))
    assert booked.notes == ("new model: new/model",) and not any("new/model" in w for w in booked.warnings)
    fresh = book_period(report.summaries, month_window("2024-01"), load_mapping(), "monthly", BooksView())
    assert fresh.notes == ()  # empty books: every model is new, none is news


def test_a_refused_command_and_a_read_leave_the_books_file_byte_for_byte(server, tmp_path):
    """Opening the books rewrote their schema version each time, so a refused close or export, or
    a plain `books` listing, changed books.sqlite's bytes (found by tests/test_model_churn.py)."""
    out = tmp_path / "out"
    assert export(server, out, "2024-01", "--close").exit_code == 0
    before = (out / "books.sqlite").read_bytes()
    for args in (("close", "--period", "2024-02", "--out", str(out)),  # never exported
                 ("reopen", "--period", "2024-02", "--out", str(out), "--reason", "x")):  # not closed
        assert CliRunner().invoke(cli, list(args)).exit_code == 2
    assert export(server, out, "2024-Q1").exit_code == 2  # over the closed January
    assert run("books", "--out", str(out)).exit_code == 0
    assert run("books", "check", "--out", str(out)).exit_code == 0
    assert (out / "books.sqlite").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["2024-01", "books.sqlite"]


def test_a_month_that_would_leave_a_gap_is_refused_and_the_months_in_order_keep_the_exact_balance(tmp_path):
    """April exported right after January would leave February and March unbooked (issue 21, item
    6: found by tests/test_model_churn.py as a cent of drift once the gap was filled): refused,
    exit 2 naming the gap, nothing written. In order, the prepaid account ends at the exact
    balance rounded (docs/booking.md, "Rounding": never more than half a cent)."""
    def usage(rid: str, month: int, amount: str) -> Record:
        return Record(rid, "usage", Decimal(amount), "USD", "completed", datetime(2024, month, 10, tzinfo=timezone.utc),
                      model="wavespeed-ai/flux-dev")

    records = [usage("txn_jan", 1, "-0.003"), usage("txn_feb", 2, "-0.002"), usage("txn_mar", 3, "-0.001"),
               usage("txn_apr", 4, "-0.004")]
    out = tmp_path / "out"
    months = ("2024-01", "2024-02", "2024-03", "2024-04")
    with serve_in_thread(dataset=dataset_from_records(records, months, 0, Decimal("100.00"))) as server:
        assert export(server, out, "2024-01", "--close").exit_code == 0
        books_before = (out / "books.sqlite").read_bytes()
        refused = export(server, out, "2024-04", "--close")
        assert refused.exit_code == 2
        assert "would leave a gap in the books after 2024-01" in refused.output
        assert "2024-02-01 00:00 to 2024-04-01 00:00 UTC" in refused.output
        assert (out / "books.sqlite").read_bytes() == books_before and not (out / "2024-04").exists()
        for month in ("2024-02", "2024-03", "2024-04"):
            result = export(server, out, month, "--close")
            assert result.exit_code == 0, result.output
    posted = sum(Decimal(r["Debits"] or 0) - Decimal(r["Credits"] or 0) for month in months
                 for r in rows(out / month / "quickbooks_online_journal.csv")
                 if r["AccountName"] == "Prepaid Expenses:WaveSpeedAI Credits")
    assert Decimal("100.00") + posted == Decimal("99.99")  # the exact 99.990 rounded (opening 100.00, whole cents)
