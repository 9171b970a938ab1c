"""The resume cache serves only the run it was made for: same server, same key, same window and
page size, within a day (issue 9, item 2)."""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.extract.pagestore import PageStore, stored_pages
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
    assert stored_pages(pages) == {1, 2}  # a resumable run was left
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
    planted = PageStore(pages)
    planted.open({"stale": True}, lambda salt: salt)
    planted.save(2, [raw_record(99, id="planted", amount=-1)])
    planted.save(9, [raw_record(98, id="planted-too", amount=-1)])
    planted.close()
    assert stored_pages(pages) == {2, 9}
    with serve(billing_api([raw_record(n) for n in range(6)])) as server:
        assert export(server.url, KEY_A, out).exit_code == 0
    assert exported_ids(out) == {f"txn_{n:06d}" for n in range(6)}


# -- the log: a frame cut short or damaged is dropped, the log cut back to the whole frames ---


def stored_log(folder: Path, pages: dict[int, list[dict]]) -> Path:
    store = PageStore(folder)
    assert store.open({"run": 1}, lambda salt: "fp") == set()
    for number, items in pages.items():
        assert store.save(number, items) == [json.dumps(item, separators=(",", ":"), ensure_ascii=False) for item in items]
    store.close()
    return folder / "pages.log"


def reopen(folder: Path) -> tuple[PageStore, set[int]]:
    store = PageStore(folder)
    return store, store.open({"run": 1}, lambda salt: "fp")


def test_the_log_gives_back_each_page_as_stored(tmp_path):
    stored_log(tmp_path, {3: [{"id": "c", "amount": 1}], 1: [{"id": "a"}, {"id": "é"}]})
    store, have = reopen(tmp_path)
    assert have == {1, 3} and store.pages() == [1, 3]
    assert store.lines(1) == ['{"id":"a"}', '{"id":"é"}'] and store.lines(3) == ['{"id":"c","amount":1}']
    store.close()


def test_a_frame_cut_short_is_dropped_and_the_next_page_appended_after_the_whole_ones(tmp_path):
    log = stored_log(tmp_path, {1: [{"id": "a"}], 2: [{"id": "b"}]})
    whole = log.read_bytes()
    log.write_bytes(whole[:-3])  # killed while writing page 2
    assert stored_pages(tmp_path) == {1}
    store, have = reopen(tmp_path)
    assert have == {1}
    store.save(2, [{"id": "b2"}])
    store.close()
    assert log.read_bytes().count(b"page ") == 2  # the torn frame is gone, not left in the middle
    store, have = reopen(tmp_path)
    assert have == {1, 2} and store.lines(2) == ['{"id":"b2"}']
    store.close()


@pytest.mark.parametrize("damage, kept", [
    pytest.param(lambda data: data.replace(b'"b"', b'"B"'), {1}, id="a changed byte: the checksum"),
    pytest.param(lambda data: data.replace(b"page 2 1", b"page 2 2"), {1}, id="a line count that does not match"),
    pytest.param(lambda data: data.replace(b"page 2", b"pagf 2"), {1}, id="a header that is not one"),
    pytest.param(lambda data: data + b"page 3 1 999999 00000000\n{}", {1, 2, 4}, id="a payload shorter than its header says"),
])
def test_a_damaged_frame_and_all_after_it_are_dropped(tmp_path, damage, kept):
    log = stored_log(tmp_path, {1: [{"id": "a"}], 2: [{"id": "b"}], 4: [{"id": "d"}]})
    log.write_bytes(damage(log.read_bytes()))
    assert stored_pages(tmp_path) == kept


def test_a_whole_frame_that_is_not_utf8_is_bad_data(tmp_path):
    out = tmp_path / "out"
    records = [raw_record(n) for n in range(6)]
    with serve(failing_on_page(billing_api(records), 3)) as server:
        assert export(server.url, KEY_A, out).exit_code == 4
        log = out / ".2024-01.pages" / "pages.log"
        payload = b'{"id":"caf\xe9"}\n{"id":"x"}\n'  # whole and checksummed, but not UTF-8
        log.write_bytes(log.read_bytes() + b"page 3 2 %d %08x\n" % (len(payload), zlib.crc32(payload)) + payload)
        server.handler = billing_api(records)
        result = export(server.url, KEY_A, out)
    assert result.exit_code == 5, result.output
    assert "stored page 3 is not UTF-8 text (the resume folder is damaged)" in result.output
    assert not (out / ".2024-01.pages").exists() and not (out / "2024-01").exists()
