"""Books you can trust month after month (issue 17), end to end through the CLI against the
sandbox on 127.0.0.1: the month after a model disappears, periods that cannot overlap, sources
that cannot mix. Every check reads the files (and the database) back.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread
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


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with serve_in_thread() as server:
        yield server


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
