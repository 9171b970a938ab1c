"""The frames the stages hand on hold what exporter/tables.py declares: the columns in order (the
models refuse others) and the kind of each column, on a real month and on the month after it,
which books late changes (a closed January changed by the provider, then February)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from exporter import tables
from exporter.config import ApiSettings, BooksSettings, ExportConfig, LiveSource, OutputSettings
from exporter.models import Summaries
from exporter.period import month_window
from exporter.pipeline import run_export
from exporter.report import Reconciliation
from exporter.sandbox import DEMO_KEY, SandboxServer
from test_books import change_january

NOW = datetime(2024, 3, 2, tzinfo=timezone.utc)


def export(server: SandboxServer, out: Path, label: str, close: bool = False):
    return run_export(ExportConfig(LiveSource(month_window(label)),
                                   ApiSettings(base_url=server.url, api_key=DEMO_KEY, generation="legacy"),
                                   OutputSettings(out=out, formats=("csv",)), BooksSettings(close=close),
                                   clock=lambda: NOW)).report


def test_every_frame_is_of_its_declared_kinds(server: SandboxServer, tmp_path: Path):
    january = export(server, tmp_path, "2024-01", close=True)
    change_january(server)
    february = export(server, tmp_path, "2024-02")
    assert february.booked.adjustments is not None and len(february.booked.adjustments) > 0
    assert february.reconciliation.frame is not None and len(february.reconciliation.frame) > 0
    assert "previous_amount_micros" in february.summaries.by_model  # compared with the closed January
    problems = []
    for report in (january, february):
        s = report.summaries
        for table, frame in ((tables.TRANSACTIONS, s.transactions), (tables.BY_MODEL, s.by_model),
                             (tables.BY_KEY, s.by_key), (tables.BY_DAY, s.by_day), (tables.TOTALS, s.totals),
                             (tables.STATUS_COUNTS, s.status_counts), (tables.RECONCILIATION, report.reconciliation.frame),
                             (tables.ADJUSTMENTS, report.booked.adjustments)):
            if frame is not None:
                table.require(frame)
                problems += table.kind_problems(frame)
    assert problems == []


def test_a_frame_that_is_not_its_table_is_refused(server: SandboxServer, tmp_path: Path):
    report = export(server, tmp_path, "2024-01")
    s = report.summaries
    with pytest.raises(ValueError, match=r"by_day: columns .*expected \['date', 'currency', 'topups_micros'"):
        replace(s, by_day=s.by_day.drop(columns="count"))
    with pytest.raises(ValueError, match="by_model"):
        replace(s, by_model=s.by_model.assign(extra=1))
    with pytest.raises(ValueError, match="reconciliation"):
        Reconciliation(pd.DataFrame({"model": []}))
    assert isinstance(replace(s, warnings=("kept",)), Summaries)  # the same frames pass
