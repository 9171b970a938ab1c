"""Extraction over real HTTP against the sandbox: paging, faults, dedupe, period cuts.

Every sandbox test here runs against both API generations (docs/api.md): the legacy API serves
every record newest first; the current one serves charges and refunds (no top-ups, no failed
tasks) oldest first, and the walk must give the same records either way.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from exporter.extract.client import BillingClient, RetryPolicy
from exporter.errors import ApiError, AuthError, DataError
from exporter.extract import extract
from exporter.period import month_window, range_window
from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread
from loopback import record_line, serve_billings

QUICK = RetryPolicy(attempts=5, backoff=0.01, max_backoff=0.05, max_wait=5)
# Every Nth request failing while pages are fetched concurrently: a page's retries can keep landing
# on the failing turns by chance, so these tests allow attempts enough that only a bug exhausts them.
PATIENT = RetryPolicy(attempts=40, backoff=0.001, max_backoff=0.005, max_wait=10)


def run(server: SandboxServer, window=None, key: str = DEMO_KEY, retry: RetryPolicy = QUICK, **kwargs):
    with BillingClient(server.url, key, retry=retry) as client:
        return extract(client, window or month_window("2024-01"), **kwargs)


@pytest.fixture(params=["legacy", "current"])
def sandbox(request):
    """The sandbox serving one API generation (this module's tests run against both)."""
    with serve_in_thread(api=request.param) as server:
        yield server


def expected_ids(server: SandboxServer, start: datetime, end: datetime) -> list[str]:
    """The ids the server's generation serves in [start, end), in the order it serves them."""
    records = [r for r in server.dataset.records if start <= r["created_at"] < end]
    if server.api == "legacy":
        return [r["id"] for r in records]  # newest first
    return [r["id"] for r in reversed(records) if r["type"] in ("usage", "refund") and r["status"] != "failed"]


def billing_requests(server: SandboxServer) -> list:
    path = "/api/v3/billings/search" if server.api == "current" else "/api/v3/account/billings"
    return [r for r in server.requests if r.path == path]


def test_every_record_of_the_month_arrives_once_across_capped_pages(sandbox):
    window = month_window("2024-01")
    result = run(sandbox, window, page_size=500)  # the server caps pages at 100
    ids = list(result.records["id"])
    assert ids == expected_ids(sandbox, window.start, window.end)
    assert len(ids) == len(set(ids)) > 1000
    assert result.stats.duplicates_dropped == 0
    assert result.stats.unique_fetched == result.stats.server_total
    assert result.warnings == []
    served = {int(r.query["page_size"]) for r in billing_requests(sandbox) if r.query["page"] != "1"}
    assert served == {100}  # pages after the first follow the size the server actually served


def test_amounts_are_exact_decimal_text(sandbox):
    result = run(sandbox)
    by_id = {r["id"]: r for r in sandbox.dataset.records}
    for row in result.records.itertuples():
        source = by_id[row.id]["amount"]
        assert row.amount == format(source, "f")
        assert row.amount_micros == int(source * 1_000_000)


def test_month_boundaries_are_cut_exactly_in_utc(sandbox):
    result = run(sandbox)
    times = list(result.records["created_at"])
    assert max(times) == datetime(2024, 1, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)
    assert min(times) >= datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert all(t < datetime(2024, 2, 1, tzinfo=timezone.utc) for t in times)


def test_period_in_another_time_zone_uses_local_midnights(sandbox):
    window = month_window("2024-01", "America/Los_Angeles")
    result = run(sandbox, window)
    assert window.start == datetime(2024, 1, 1, 8, tzinfo=timezone.utc)
    assert list(result.records["id"]) == expected_ids(sandbox, window.start, window.end)
    # the UTC boundary records of 31 Jan 23:59:59.999 and 1 Feb 00:00 both fall inside in Los Angeles
    assert set(result.records["created_at"]) >= {
        datetime(2024, 1, 31, 23, 59, 59, 999000, tzinfo=timezone.utc),
        datetime(2024, 2, 1, tzinfo=timezone.utc),
    }


def test_date_range_window(sandbox):
    window = range_window("2024-01-10", "2024-01-12")
    result = run(sandbox, window)
    assert len(result.records)
    assert set(result.records["created_at"].dt.date) <= {date(2024, 1, 10), date(2024, 1, 11), date(2024, 1, 12)}
    assert list(result.records["id"]) == expected_ids(sandbox, window.start, window.end)


def test_concurrency_does_not_change_the_result(sandbox):
    sandbox.faults.latency_ms = 2
    lines_one: list[str] = []
    lines_many: list[str] = []
    one = run(sandbox, concurrency=1, sink=lines_one.append)
    many = run(sandbox, concurrency=8, page_size=37, sink=lines_many.append)
    assert one.records.equals(many.records)
    assert lines_one == lines_many and len(lines_one) == len(one.records)


def test_rate_limits_are_retried_until_every_page_arrives(sandbox):  # the wait itself: test_client.py
    sandbox.faults.rate_limit_every = 3
    sandbox.faults.retry_after = "0"
    result = run(sandbox, concurrency=2, retry=PATIENT)
    statuses = [r.status for r in sandbox.requests]
    assert statuses.count(429) >= 5
    assert len(result.records) == len(expected_ids(sandbox, *_bounds()))


def test_transient_html_gateway_errors_are_retried(sandbox):
    sandbox.faults.error_every = 4
    sandbox.faults.error_status = 502
    sandbox.faults.error_html = True
    result = run(sandbox, retry=PATIENT)
    assert [r.status for r in sandbox.requests].count(502) >= 5
    assert len(result.records) == len(expected_ids(sandbox, *_bounds()))


def test_duplicates_across_pages_are_dropped_and_reported(sandbox):
    sandbox.faults.duplicate_across_pages = True
    result = run(sandbox)
    ids = list(result.records["id"])
    assert len(ids) == len(set(ids))
    assert ids == expected_ids(sandbox, *_bounds())
    assert result.stats.duplicates_dropped == result.stats.pages - 1
    assert any("duplicate record(s) dropped" in w for w in result.warnings)


def test_a_server_that_ignores_page_is_an_api_error(sandbox):
    sandbox.faults.ignore_page = True
    sandbox.faults.latency_ms = 5
    with pytest.raises(ApiError, match="ignores the 'page' parameter"):
        run(sandbox, concurrency=2)
    assert len(billing_requests(sandbox)) < 10  # stops at the first repeated page, never walks on


def test_server_total_mismatch_is_reported(sandbox):
    sandbox.faults.wrong_total = 5000  # more than it serves: fewer distinct records than promised
    result = run(sandbox, page_size=100)
    assert any("reported 5000 records" in w for w in result.warnings)


def test_wrong_key_is_an_auth_error_without_the_key(sandbox):
    with pytest.raises(AuthError) as caught:
        run(sandbox, key="sk-very-secret-123")
    assert "sk-very-secret-123" not in str(caught.value)


def test_malformed_record_names_the_record_and_field(sandbox):
    victim = expected_ids(sandbox, *_bounds())[150]
    sandbox.faults.malformed = {victim: "amount"}
    with pytest.raises(DataError, match=rf"{victim}.*'amount'"):
        run(sandbox)


def test_malformed_timestamp_is_named(sandbox):
    victim = expected_ids(sandbox, *_bounds())[7]
    sandbox.faults.malformed = {victim: "created_at"}
    with pytest.raises(DataError, match=rf"{victim}.*'created_at'"):
        run(sandbox)


def test_api_down_fails_within_bounded_attempts(sandbox):
    sandbox.faults.down = True
    with pytest.raises(ApiError, match=r"failed after 5 attempts: 503.*HTML page") as caught:
        run(sandbox)
    assert caught.value.status == 503
    assert len(sandbox.requests) == 5


def _bounds() -> tuple[datetime, datetime]:
    window = month_window("2024-01")
    return window.start, window.end


def test_records_arriving_while_paging_trigger_a_second_walk(sandbox):
    window = month_window("2024-01")
    if sandbox.api == "legacy":  # the queried days: two more on each side
        everything = len(sandbox.dataset.select(None, date(2023, 12, 30), date(2024, 2, 2)))
    else:  # the queried instants: the month itself
        everything = len(expected_ids(sandbox, window.start, window.end))
    sandbox.faults.arrivals = 3  # the 3 newest records appear after the 5th page request
    sandbox.faults.arrive_after = 5
    result = run(sandbox, window, concurrency=1)
    first_pages = [r.query["page"] for r in billing_requests(sandbox)].count("1")
    assert first_pages == 2  # the walk saw the total change and went round once more
    assert result.stats.server_total == result.stats.unique_fetched == everything
    assert result.stats.duplicates_dropped == 0 and result.warnings == []
    assert list(result.records["id"]) == expected_ids(sandbox, window.start, window.end)



def run_against(url: str, **kwargs):
    with BillingClient(url, DEMO_KEY, retry=QUICK) as client:
        return extract(client, month_window("2024-01"), page_size=2, concurrency=1, **kwargs)


def test_a_duplicate_that_differs_in_content_is_reported_and_the_first_copy_kept():
    pages = [
        record_line("txn_d", "-4.00", created_at="2024-01-20T10:00:00Z"),
        record_line("txn_b", "-2.00", created_at="2024-01-19T10:00:00Z"),
        record_line("txn_b", "-9.99", created_at="2024-01-19T10:00:00Z"),  # page 2 repeats txn_b, changed
        record_line("txn_a", "-1.00", created_at="2024-01-18T10:00:00Z"),
    ]
    with serve_billings(lambda n: pages) as url:
        result = run_against(url)
    assert list(result.records["id"]) == ["txn_d", "txn_b", "txn_a"]
    assert result.records.set_index("id").loc["txn_b", "amount"] == "-2.00"
    assert "1 duplicate id(s) differed in content; the first copy was kept: txn_b" in result.warnings
    assert "1 duplicate record(s) dropped (same id on more than one page)" in result.warnings


def test_an_identical_duplicate_is_not_called_conflicting():
    line = record_line("txn_b", "-2.00")
    with serve_billings(lambda n: [record_line("txn_c"), line, line, record_line("txn_a")]) as url:
        result = run_against(url)
    assert not any("differed in content" in w for w in result.warnings)


def arriving(n: int) -> list[str]:
    """Five records, plus one newer record for every request so far: the total never settles."""
    new = [record_line(f"txn_new{k:02d}", created_at=f"2024-01-31T{k:02d}:00:00Z") for k in range(n, 0, -1)]
    return new + [record_line(f"txn_{k}", created_at=f"2024-01-0{k}T00:00:00Z") for k in range(5, 0, -1)]


def test_records_that_keep_arriving_through_the_second_walk_give_a_warning():
    with serve_billings(arriving) as url:
        result = run_against(url)
    # walk 1: requests 1-3 see totals 6..8; walk 2: page 1 sees 9 (5 pages), page 5 sees 13
    (warning,) = [w for w in result.warnings if "kept arriving" in w]
    assert "the total went from 9 to 13 on the second walk too" in warning
    assert "some may be missing; export again once the period is closed" in warning
    assert result.stats.server_total == 13 and result.records["id"].is_unique


def test_a_failing_second_walk_is_an_error_not_a_partial_result(tmp_path):
    # the first walk sees the total move (a second walk is due); the second walk's first page fails
    with serve_billings(lambda n: arriving(n) if n <= 3 else 400) as url:
        with pytest.raises(ApiError, match="answered 400"):
            run_against(url, store_folder=tmp_path / "pages")
