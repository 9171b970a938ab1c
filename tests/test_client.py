"""The HTTP client against real loopback servers: envelopes, statuses, Retry-After, secrecy."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime

import pytest

from exporter.errors import ApiError, AuthError
from exporter.extract import BILLINGS_PATH
from exporter.extract.client import BillingClient, RetryPolicy, _retry_after
from exporter.sandbox import DEMO_KEY
from loopback import QuietHandler, serve

QUICK = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, max_wait=2)
SECRET = "sk-live-DO-NOT-LEAK-42"


@pytest.fixture
def canned() -> Iterator[tuple[str, list, list]]:
    """A server answering each request with the next (status, content type, body, headers)."""
    answers: list = []
    seen: list[dict] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            status, ctype, body, headers = answers.pop(0) if len(answers) > 1 else answers[0]
            self.send(status, body, ctype, headers)

    with serve(Handler) as url:
        yield url, answers, seen


def json_answer(status: int, body: str, **headers: str):
    return (status, "application/json", body, headers)


def test_data_is_returned_with_exact_numbers(canned):
    url, answers, seen = canned
    answers.append(json_answer(200, '{"code": 200, "message": "success", "data": {"balance": 156.78}}'))
    with BillingClient(url, SECRET, retry=QUICK) as client:
        assert client.get_data("/api/v3/account/balance", {}) == {"balance": Decimal("156.78")}
    assert seen[0]["Authorization"] == f"Bearer {SECRET}"


def test_failure_envelope_carries_the_server_message(canned):
    url, answers, _ = canned
    answers.append(json_answer(200, '{"code": 500, "message": "internal\\nbilling error", "data": null}'))
    with BillingClient(url, SECRET, retry=QUICK) as client, pytest.raises(ApiError, match="code 500: internal billing error"):
        client.get_data("/x", {})


def test_a_server_message_with_a_lone_surrogate_stays_printable(canned):
    url, answers, _ = canned
    answers.append(json_answer(400, '{"code": 400, "message": "bad \\ud800 input", "data": null}'))
    with BillingClient(url, SECRET, retry=QUICK) as client, pytest.raises(ApiError) as caught:
        client.get_data("/x", {})
    assert "bad \\ud800 input" in str(caught.value)
    str(caught.value).encode("utf-8")  # writable to any log, manifest or terminal


def test_non_json_success_body_is_an_api_error(canned):
    url, answers, _ = canned
    answers.append((200, "text/html", "<html>captive portal</html>", {}))
    with BillingClient(url, SECRET, retry=QUICK) as client, pytest.raises(ApiError, match="not JSON"):
        client.get_data("/x", {})


@pytest.mark.parametrize("status", [400, 404])
def test_client_errors_are_not_retried(canned, status):
    url, answers, seen = canned
    answers.append(json_answer(status, '{"code": %d, "message": "bad request", "data": null}' % status))
    with BillingClient(url, SECRET, retry=QUICK) as client, pytest.raises(ApiError, match=f"{status}.*bad request"):
        client.get_data("/x", {})
    assert len(seen) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_is_an_auth_error_without_the_key(canned, status):
    url, answers, seen = canned
    answers.append(json_answer(status, '{"code": %d, "message": "invalid key", "data": null}' % status))
    with BillingClient(url, SECRET, retry=QUICK) as client, pytest.raises(AuthError) as caught:
        client.get_data("/x", {})
    assert SECRET not in str(caught.value)
    assert len(seen) == 1


def test_retry_then_success(canned):
    url, answers, seen = canned
    answers.extend([
        (503, "text/html", "<html><body>Service Unavailable</body></html>", {}),
        json_answer(429, '{"code": 429, "message": "slow down", "data": null}', **{"Retry-After": "0"}),
        json_answer(200, '{"code": 200, "message": "success", "data": [1]}'),
    ])
    with BillingClient(url, SECRET, retry=QUICK) as client:
        assert client.get_data("/x", {}) == [1]
    assert len(seen) == 3


def test_total_wait_is_bounded(canned):
    url, answers, seen = canned
    answers.append(json_answer(429, '{"code": 429, "message": "slow down", "data": null}', **{"Retry-After": "30"}))
    policy = RetryPolicy(attempts=10, backoff=0.01, max_wait=5)
    with BillingClient(url, SECRET, retry=policy) as client, pytest.raises(ApiError, match="429.*slow down"):
        client.get_data("/x", {})
    assert len(seen) == 1  # a 30 s Retry-After exceeds the 5 s budget: give up at once, do not hang


def test_connection_refused_is_an_api_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    with BillingClient(f"http://127.0.0.1:{port}", SECRET, retry=QUICK) as client:
        with pytest.raises(ApiError, match="failed after 3 attempts: ConnectionError"):
            client.get_data("/x", {})


def test_verbose_logging_never_shows_the_key(canned, caplog):
    url, answers, _ = canned
    answers.extend([(502, "text/html", "<html>bad gateway</html>", {}),
                    json_answer(200, '{"code": 200, "message": "success", "data": {}}')])
    with caplog.at_level(logging.INFO, logger="exporter.api"):
        with BillingClient(url, SECRET, retry=QUICK) as client:
            client.get_data("/api/v3/account/billings", {"page": 2})
    assert "GET /api/v3/account/billings?page=2 -> 502" in caplog.text
    assert "retrying in" in caplog.text
    assert SECRET not in caplog.text


def test_retry_after_accepts_seconds_and_http_dates():
    assert _retry_after("3") == 3.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    assert 15 <= _retry_after(later) <= 20
    earlier = format_datetime(datetime.now(timezone.utc) - timedelta(seconds=20), usegmt=True)
    assert _retry_after(earlier) == 0.0


def test_retry_after_is_waited_for(sandbox):
    sandbox.faults.rate_limit_every = 2  # the 2nd billings request gets a 429
    sandbox.faults.retry_after = "1"
    query = {"start_date": "2024-01-01", "end_date": "2024-01-31", "page_size": 1}
    with BillingClient(sandbox.url, DEMO_KEY, retry=QUICK) as client:
        client.get_data(BILLINGS_PATH, {**query, "page": 1})
        started = time.monotonic()
        data = client.get_data(BILLINGS_PATH, {**query, "page": 2})  # 429 "Retry-After: 1", then answered
        waited = time.monotonic() - started
    assert [r.status for r in sandbox.requests] == [200, 429, 200]
    assert len(data["items"]) == 1
    assert waited >= 1.0  # QUICK's own backoff is at most 0.02 s: the second is the server's


def test_a_read_timeout_is_retried():
    release = threading.Event()  # set at the end, so the stalled handler never holds up teardown
    requests_seen: list[float] = []

    class Stalling(QuietHandler):
        def do_GET(self) -> None:
            requests_seen.append(time.monotonic())
            if len(requests_seen) == 1:
                release.wait(2.0)  # far longer than the client's read timeout, then answers anyway
            self.send(200, '{"code": 200, "message": "success", "data": {"ok": true}}')

    with serve(Stalling) as url:
        try:
            with BillingClient(url, SECRET, retry=QUICK, timeout=(1.0, 0.2)) as client:
                assert client.get_data("/x", {}) == {"ok": True}
        finally:
            release.set()
    assert len(requests_seen) == 2
    assert requests_seen[1] - requests_seen[0] >= 0.2  # the retry came after the read timeout
