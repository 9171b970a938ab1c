"""Books you can trust month after month (issue 17), end to end through the CLI against the
sandbox on 127.0.0.1: the month after a model disappears, periods that cannot overlap, sources
that cannot mix. Every check reads the files (and the database) back.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook

from factories import booked_ids
from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, SandboxServer, generate_dataset, serve_in_thread
from exporter.sandbox.revisions import revise

ALL_FORMATS = "csv,xlsx,quickbooks,beancount,focus,html"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def export(server: SandboxServer, out: Path, period: str, *extra: str, key: str = DEMO_KEY,
           formats: str = "csv,quickbooks"):
    return run("export", "--period", period, "--out", str(out), "--format", formats, "--base-url", server.url,
               "--api-key", key, "--backoff", "0.01", "-q", *extra)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_month_after_every_model_disappears_exports_every_model_at_zero(server, tmp_path):
    april = [r.id for r in server.dataset.records if r.created_at.strftime("%Y-%m") == "2024-04"]
    server.dataset = revise(server.dataset, removed=april)  # an idle April
    assert export(server, tmp_path, "2024-03", formats=ALL_FORMATS).exit_code == 0
    march = {r["model"] for r in rows(tmp_path / "2024-03" / "by_model.csv")}
    for formats in (ALL_FORMATS, "html"):
        out = tmp_path / formats.replace(",", "_")
        out.mkdir()  # the same books each time: March closed the models April no longer uses
        (out / "books.sqlite").write_bytes((tmp_path / "books.sqlite").read_bytes())
        result = export(server, out, "2024-04", formats=formats)
        assert result.exit_code == 0, result.output
        report = re.sub(r"<[^>]+>", "", (out / "2024-04" / "report.html").read_text(encoding="utf-8"))
        for model in march:
            assert model in report
    by_model = rows(tmp_path / ALL_FORMATS.replace(",", "_") / "2024-04" / "by_model.csv")
    assert {r["model"] for r in by_model} == march
    for line in by_model:
        assert Decimal(line["amount"]) == 0 and Decimal(line["share"]) == 0 and line["count"] == "0"
        assert Decimal(line["change"]) == -Decimal(line["previous_amount"])
    book = load_workbook(tmp_path / ALL_FORMATS.replace(",", "_") / "2024-04" / "wavespeed_2024-04.xlsx")
    assert book.sheetnames


def booked_rows(out: Path) -> list[tuple[str, int]]:
    return sorted((label, len(ids)) for label, ids in booked_ids(out / "books.sqlite").items() if ids)


def periods(out: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(out / "books.sqlite") as db:
        return db.execute("SELECT label, status FROM periods ORDER BY start_utc, label").fetchall()


def test_a_quarter_over_closed_months_is_refused_and_the_books_stay_exact(server, tmp_path):
    for month in ("2024-01", "2024-02"):
        assert export(server, tmp_path, month, "--close").exit_code == 0
    before = booked_rows(tmp_path), periods(tmp_path)
    quarter = export(server, tmp_path, "2024-Q1")
    assert quarter.exit_code == 2
    assert "2024-Q1 overlaps 2024-01" in quarter.output and "2024-02" in quarter.output
    closing = run("close", "--period", "2024-Q1", "--out", str(tmp_path))
    assert closing.exit_code == 2
    across = export(server, tmp_path, "", "--start", "2024-02-20", "--end", "2024-03-10")
    assert across.exit_code == 2 and "overlaps 2024-02" in across.output
    assert (booked_rows(tmp_path), periods(tmp_path)) == before
    assert not (tmp_path / "2024-Q1").exists()
    march = export(server, tmp_path, "2024-03")
    assert march.exit_code == 0, march.output
    assert rows(tmp_path / "2024-03" / "adjustments.csv") == []  # no phantom late changes
    assert "WS2403A" not in (tmp_path / "2024-03" / "quickbooks.iif").read_text(encoding="utf-8")


def test_a_month_inside_a_closed_quarter_is_refused(server, tmp_path):
    assert export(server, tmp_path, "2024-Q2", "--close").exit_code == 0
    month = export(server, tmp_path, "2024-05")
    assert month.exit_code == 2 and "2024-05 overlaps 2024-Q2" in month.output
    assert periods(tmp_path) == [("2024-Q2", "closed")]
    assert not (tmp_path / "2024-05").exists()


def test_closing_supersedes_open_drafts_that_overlap_and_says_so(server, tmp_path):
    assert export(server, tmp_path, "2024-Q1").exit_code == 0
    result = run("export", "--period", "2024-01", "--out", str(tmp_path), "--format", "csv", "--base-url", server.url,
                 "--api-key", DEMO_KEY, "--close")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "closed 2024-01" in lines
    assert any(line.startswith("note: 2024-Q1 (open, overlapping 2024-01) dropped from the books") for line in lines)
    assert periods(tmp_path) == [("2024-01", "closed")]
    assert (tmp_path / "2024-Q1" / "manifest.json").exists()  # the pack stays on disk


def sources(out: Path) -> list[tuple[str, str, str, object]]:
    with sqlite3.connect(out / "books.sqlite") as db:
        return db.execute("SELECT label, base_url, key_fingerprint, api FROM sources ORDER BY label").fetchall()


def test_books_record_their_source_and_refuse_another_account(server, tmp_path):
    first = run("export", "--sandbox", "--period", "2024-01", "--out", str(tmp_path), "--format", "csv", "--close", "-q")
    assert first.exit_code == 0, first.output
    [(label, name, fingerprint, api)] = sources(tmp_path)
    assert (label, name, api) == ("2024-01", "sandbox", "current")  # the generation that answered (docs/api.md)
    assert len(fingerprint) == 64 and DEMO_KEY not in fingerprint
    assert DEMO_KEY.encode() not in (tmp_path / "books.sqlite").read_bytes()
    # the same account at another address: it serves January as booked, so the books continue
    moved = run("export", "--period", "2024-02", "--out", str(tmp_path), "--format", "csv", "--base-url", server.url,
                "--api-key", DEMO_KEY, "--backoff", "0.01")
    assert moved.exit_code == 0, moved.output
    note = [line for line in moved.output.splitlines() if line.startswith("note: the source changed")]
    assert note and "sandbox" in note[0] and server.url in note[0] and "2024-01 as booked" in note[0]
    assert [s[:2] for s in sources(tmp_path)] == [("2024-01", "sandbox"), ("2024-02", server.url)]
    # another account: it does not serve January as booked
    with serve_in_thread(generate_dataset(seed="another account")) as other:
        foreign = run("export", "--period", "2024-03", "--out", str(tmp_path), "--format", "csv", "--base-url",
                      other.url, "--api-key", DEMO_KEY, "--backoff", "0.01", "-q")
    assert foreign.exit_code == 2
    message = foreign.output.strip().splitlines()[-1]
    assert "sandbox" in message and other.url in message and "2024-01" in message and "--books" in message
    assert not (tmp_path / "2024-03").exists()
    assert [s[0] for s in sources(tmp_path)] == ["2024-01", "2024-02"]
