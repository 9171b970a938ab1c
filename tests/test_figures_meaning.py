"""Figures that mean what they say (issue 17), read back from the pack written through the CLI:
late changes as spend, the headline with and without them, no runway or top models made of nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from exporter.cli import cli
from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread
from exporter.sandbox.revisions import revise


def export(server: SandboxServer, out: Path, period: str, *extra: str):
    return CliRunner().invoke(cli, ["export", "--period", period, "--out", str(out), "--format", "csv,xlsx,html",
                                    "--base-url", server.url, "--api-key", DEMO_KEY, "--backoff", "0.01", *extra],
                              catch_exceptions=False)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with serve_in_thread() as server:
        yield server


def test_a_tiny_month_shows_no_runway_and_no_top_models_at_zero(server, tmp_path):
    assert export(server, tmp_path, "2024-03", "-q").exit_code == 0
    april = export(server, tmp_path, "2024-04", "-q")  # one 0.0025 USD task; March's models gone
    assert april.exit_code == 0, april.output
    html = (tmp_path / "2024-04" / "report.html").read_text(encoding="utf-8")
    runway = re.search(r'data-figure="runway">([^<]*)<', html)
    assert runway and runway.group(1) == "–"  # not "12,791,574 days"
    top = re.search(r'<table id="top-models-USD".*?</table>', html, re.S)
    assert top
    model_rows = [row for row in re.findall(r"<tr>(.*?)</tr>", top.group(0), re.S) if "<td" in row]
    labels = [text_of(row).strip() for row in model_rows]
    # the one model used in April, then the total: none of March's models at 0.00
    assert len(labels) == 1 and "sdxl" in labels[0]
    sheet = load_workbook(tmp_path / "2024-04" / "wavespeed_2024-04.xlsx", read_only=True)["Summary"]
    cells = [row for row in sheet.iter_rows(values_only=True)]
    [runway_row] = [row for row in cells if row[0] == "Runway"]
    assert runway_row[1] in (None, "-", "–") and "0.01 a day" in str(runway_row[2])


def test_late_changes_are_shown_as_spend_and_the_headline_with_and_without_them(server, tmp_path):
    assert export(server, tmp_path, "2024-01", "--close", "-q").exit_code == 0
    usage = next(r for r in server.dataset.records if r.created_at.strftime("%Y-%m") == "2024-01"
                 and r.status == "completed" and r.type == "usage" and r.amount <= Decimal("-1"))
    server.dataset = revise(server.dataset, amounts={usage.id: usage.amount * 2})  # re-priced: more spend
    more = -usage.amount  # positive: this much more AI spend
    result = export(server, tmp_path, "2024-02")
    assert result.exit_code == 0, result.output
    shown = f"{more:.2f}"
    assert f"late changes to 2024-01: 1 record, AI spend +{shown} USD; posted in 2024-02" in result.output
    spend_line = next(line for line in result.output.splitlines() if line.startswith("AI spend USD:"))
    this, late = (Decimal(v.replace(",", "")) for v in re.findall(r"([\d,]+\.\d+) (?:this period|with the late)", spend_line))
    assert late - this == more
    html = text_of((tmp_path / "2024-02" / "report.html").read_text(encoding="utf-8"))
    assert f"2024-01: 1 record, AI spend +{shown} USD" in html
    assert "AI spend with late changes" in html and f"plus +{shown} of late changes" in html
