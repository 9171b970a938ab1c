"""The re-read of closed periods (for late changes) reports what it finds wrong in the answers,
as the walk of the period itself does (issue 21, item 9): duplicate ids that differ, zoneless times."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from exporter.cli import cli
from tests.hostile import BILLINGS, Reply, Request, json_reply, raw_record, serve


def dated_api(records: list[dict[str, Any]], page_size: int = 50):
    """The legacy billing API over ``records``, answering only those within start_date..end_date."""
    def handle(request: Request) -> Reply:
        if request.path != BILLINGS:
            return json_reply(None, 404)
        first = date.fromisoformat(request.query["start_date"])
        last = date.fromisoformat(request.query["end_date"])
        chosen = [r for r in records if first <= date.fromisoformat(r["created_at"][:10]) <= last]
        page = int(request.query.get("page", "1"))
        items = chosen[(page - 1) * page_size: page * page_size]
        return json_reply({"items": items, "pagination": {"page": page, "page_size": page_size, "total": len(chosen)}})
    return handle


def export(url: str, out: Path, period: str, *extra: str):
    return CliRunner().invoke(cli, ["export", "--period", period, "--out", str(out), "--format", "csv", "--base-url",
                                    url, "--api-key", "ws-test-key-123", "--no-reconcile", "--json", *extra])


def test_the_closed_period_re_read_reports_its_warnings(tmp_path):
    december = [raw_record(n, created_at=f"2023-12-10T10:00:{n:02d}.000Z") for n in range(1, 5)]
    january = [raw_record(n) for n in range(10, 14)]
    records = december + january
    with serve(dated_api(records)) as server:
        url = server.url
        assert export(url, tmp_path, "2023-12", "--close").exit_code == 0
        # the provider now serves December's first record twice, the copy with another amount, and a
        # record with a time that names no zone
        records[1:1] = [{**december[0], "amount": Decimal("-0.0050")},
                        raw_record(99, created_at="2023-12-11T09:00:00")]
        result = export(url, tmp_path, "2024-01")
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.stdout)["warnings"]
    assert any(w.startswith("closed periods re-read: ") and "differed in content" in w and "txn_000001" in w
               for w in warnings), warnings
    assert any(w.startswith("closed periods re-read: ") and "without a time zone" in w and "txn_000099" in w
               for w in warnings), warnings
