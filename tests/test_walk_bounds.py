"""Neither memory nor the number of requests follows a page count the server makes up (issue 9, item 4)."""

from __future__ import annotations

import tracemalloc

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.errors import ApiError
from exporter.extract import extract
from exporter.extract.client import BillingClient
from exporter.extract.billings import QUEUED_PER_WORKER
from exporter.extract.paginators import MAX_RECORDS, remaining_pages
from exporter.period import month_window
from hostile import BILLINGS, Reply, Request, json_reply, raw_record, serve

KEY = "sk-walk-bounds-0000"


def claiming(total: int, page_size: int, later: Reply | None = None):
    """Page 1 claims ``total`` records in pages of ``page_size``; later pages answer ``later``."""
    def handle(request: Request) -> Reply:
        if request.path != BILLINGS:
            return json_reply(None, 404)
        if request.query.get("page") == "1" or later is None:
            return json_reply({"items": [raw_record(1)], "pagination": {"page": 1, "page_size": page_size, "total": total}})
        return later
    return handle


@pytest.mark.parametrize("total, page_size", [(10**12, 100), (MAX_RECORDS + 1, 10**9), (MAX_RECORDS, 1)])
def test_an_impossible_total_is_refused_before_any_page_is_queued(tmp_path, total, page_size):
    with serve(claiming(total, page_size)) as server:
        result = CliRunner().invoke(cli, ["export", "--period", "2024-01", "--base-url", server.url, "--api-key", KEY,
                                          "--out", str(tmp_path), "--format", "csv", "--no-reconcile", "-q"])
        asked = [r for r in server.requests if r.path == BILLINGS]
    assert result.exit_code == 4, result.output
    assert "claims" in result.output
    assert len(asked) == 1
    assert list(tmp_path.iterdir()) == []  # no staging folder, no page cache, no pack


def test_pages_are_scheduled_a_few_at_a_time(tmp_path):
    """200,000 claimed pages and page 2 fails: the walk stops after a handful of requests, in little memory."""
    failure = Reply(400, b'{"code": 400, "message": "stop", "data": null}')
    with serve(claiming(200_000, 1, later=failure)) as server, BillingClient(server.url, KEY) as client:
        tracemalloc.start()
        try:
            with pytest.raises(ApiError, match="stop"):
                extract(client, month_window("2024-01"), page_size=1, concurrency=4, store_folder=tmp_path / "pages")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        asked = len([r for r in server.requests if r.path == BILLINGS])
    assert asked <= 1 + QUEUED_PER_WORKER * 4  # page 1, then at most a few requests per worker queued
    assert peak < 16 * 2**20


def test_the_page_count_is_capped_at_the_requested_size():
    with pytest.raises(ApiError, match="pages"):
        remaining_pages(MAX_RECORDS, 100)  # 10**8 pages of 1 when 10**6 pages of 100 would do
    remaining = remaining_pages(MAX_RECORDS // 100, 100)
    assert isinstance(remaining, range) and remaining[0] == 2  # a range, not a list of a million


@pytest.mark.parametrize("value", ["1e999999999", "1.5", '"abc"', "true", "-1", '"12345678901234567890123"'])
def test_pagination_values_that_are_not_counts_are_api_errors(tmp_path, value):
    body = ('{"code": 200, "message": "ok", "data": {"items": [], "pagination": '
            '{"page": 1, "page_size": 100, "total": %s}}}' % value).encode()
    with serve(lambda request: Reply(200, body)) as server, BillingClient(server.url, KEY) as client:
        with pytest.raises(ApiError):
            extract(client, month_window("2024-01"), store_folder=tmp_path / "pages")
