"""The resume cache serves only the run it was made for: same server, same key, same window and
page size, within a day (issue 9, item 2)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from exporter.cli import cli
from hostile import BILLINGS, Reply, Request, billing_api, raw_record, serve

KEY_A, KEY_B = "sk-account-A-0123456789", "sk-account-B-9876543210"


def export(url: str, key: str, out: Path):
    return CliRunner().invoke(cli, ["export", "--period", "2024-01", "--base-url", url, "--api-key", key, "--out", str(out),
                                    "--format", "csv", "--no-reconcile", "--retries", "1", "-q"])


def failing_on_page(handler: Callable[[Request], Reply], page: int) -> Callable[[Request], Reply]:
    """``handler``, but page ``page`` answers a 400 (not retried): the run stops with its pages stored."""
    def handle(request: Request) -> Reply:
        if request.path == BILLINGS and request.query.get("page") == str(page):
            return Reply(400, b'{"code": 400, "message": "no", "data": null}')
        return handler(request)
    return handle


def exported_ids(out: Path) -> set[str]:
    lines = (out / "2024-01" / "transactions.csv").read_text().splitlines()[1:]
    return {line.split(",")[0] for line in lines}


def test_pages_of_another_key_and_server_are_never_reused(tmp_path):
    out = tmp_path / "out"
    records_a = [raw_record(n, id=f"A-{n}") for n in range(6)]
    records_b = [raw_record(n, id=f"B-{n}") for n in range(6)]  # same total: the old key matched
    with serve(failing_on_page(billing_api(records_a), 3)) as server_a:
        assert export(server_a.url, KEY_A, out).exit_code == 4
    pages = out / ".2024-01.pages"
    assert len(list(pages.glob("page-*.jsonl"))) == 2  # a resumable run was left
    stored = b"".join(p.read_bytes() for p in pages.iterdir())
    assert KEY_A.encode() not in stored  # the key is never written, only a salted hash of it

    with serve(billing_api(records_b)) as server_b:
        result = export(server_b.url, KEY_B, out)
        asked = {r.query["page"] for r in server_b.requests if r.path == BILLINGS}
    assert result.exit_code == 0, result.output
    assert exported_ids(out) == {f"B-{n}" for n in range(6)}
    assert asked == {"1", "2", "3"}


def test_pages_fetched_with_another_key_are_not_reused_on_the_same_server(tmp_path):
    out = tmp_path / "out"
    records = [raw_record(n) for n in range(6)]
    with serve(failing_on_page(billing_api(records), 3)) as server:
        assert export(server.url, KEY_A, out).exit_code == 4
        server.handler, server.requests[:] = billing_api(records), []  # only the second run's requests
        assert export(server.url, KEY_B, out).exit_code == 0
        pages_asked = [r.query["page"] for r in server.requests if r.path == BILLINGS]
    # every page once, page 2 fetched again (another key, maybe another account); pages after the
    # first are fetched concurrently, so in any order
    assert sorted(pages_asked) == ["1", "2", "3"]


def test_the_same_run_resumes(tmp_path):
    out = tmp_path / "out"
    records = [raw_record(n) for n in range(6)]
    with serve(failing_on_page(billing_api(records), 3)) as server:
        assert export(server.url, KEY_A, out).exit_code == 4
        server.handler, server.requests[:] = billing_api(records), []
        assert export(server.url, KEY_A, out).exit_code == 0
        assert sorted(r.query["page"] for r in server.requests if r.path == BILLINGS) == ["1", "3"]


def test_a_cache_older_than_a_day_is_discarded(tmp_path):
    out = tmp_path / "out"
    records = [raw_record(n) for n in range(6)]
    with serve(failing_on_page(billing_api(records), 3)) as server:
        assert export(server.url, KEY_A, out).exit_code == 4
        yesterday = time.time() - 25 * 3600
        for path in (out / ".2024-01.pages").iterdir():
            os.utime(path, (yesterday, yesterday))
        records[2] = raw_record(2, status="refunded")  # the record on page 2 changed since (same total)
        server.handler = billing_api(records)
        assert export(server.url, KEY_A, out).exit_code == 0
    rows = (out / "2024-01" / "transactions.csv").read_text()
    assert "refunded" in rows


def test_a_cache_with_a_foreign_key_file_is_discarded(tmp_path):
    out = tmp_path / "out"
    pages = out / ".2024-01.pages"
    pages.mkdir(parents=True)
    (pages / "key.json").write_text(json.dumps({"stale": True}))
    (pages / "page-000000002.jsonl").write_text(json.dumps(raw_record(99, id="planted", amount=-1)) + "\n")
    (pages / "page-000000009.jsonl").write_text(json.dumps(raw_record(98, id="planted-too", amount=-1)) + "\n")
    with serve(billing_api([raw_record(n) for n in range(6)])) as server:
        assert export(server.url, KEY_A, out).exit_code == 0
    assert exported_ids(out) == {f"txn_{n:06d}" for n in range(6)}
