"""The client against hostile loopback servers: the key never comes back out, plain http only to
loopback, redirects stay on the origin, every answer is bounded in time and size, and an answer
that is JSON but for a NaN or a non-UTF-8 byte is bad data (issue 9, items 5-8, 13, 14)."""

from __future__ import annotations

import gzip
import zlib

import pytest
from click.testing import CliRunner

from exporter.cli import cli
from exporter.config import RetryPolicy
from exporter.errors import ApiError, ConfigError, DataError
from exporter.extract.client import BillingClient
from exporter.extract.urls import check_base_url
from exporter.sandbox import DEMO_KEY
from hostile import BILLINGS, Reply, Request, billing_api, envelope, everything_under, raw_record, serve

KEY = "sk-live-Hostile-Echo-7f3a9c"
QUICK = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.02, max_wait=1)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def export(url: str, out, *extra: str):
    return run("export", "--period", "2024-01", "--base-url", url, "--api-key", KEY, "--out", str(out),
               "--backoff", "0.01", "--retries", "2", *extra)


def assert_no_key(result, out) -> None:
    assert KEY not in result.stdout and KEY not in result.stderr
    for name, data in everything_under(out).items():
        assert KEY.encode() not in data, name


# -- item 5: the key echoed back ---------------------------------------------------------------


def test_a_key_echoed_back_is_written_nowhere(tmp_path):
    escaped = "".join(f"\\u{ord(c):04x}" for c in KEY)  # the key without its bytes
    records = [raw_record(1, model=f"echo {KEY} model"), raw_record(2, model="escaped-in-json"),
               raw_record(3, payment_method=f"Bearer {KEY}"), raw_record(4)]
    pages = billing_api(records, page_size=2,
                        usage=Reply(400, envelope(None, 400, f"bad request; you sent Authorization: Bearer {KEY}")))

    def handle(request: Request) -> Reply:
        reply = pages(request)
        if request.path == BILLINGS:
            reply.body = reply.body.replace(b"escaped-in-json", escaped.encode())
        return reply

    with serve(handle) as server:
        result = export(server.url, tmp_path)
    assert result.exit_code == 0, result.output
    assert "reconciliation skipped" in result.stdout  # the usage error's message made it, cleaned
    assert "[redacted]" in result.stdout
    assert_no_key(result, tmp_path)
    assert "[redacted]" in (tmp_path / "2024-01" / "transactions.csv").read_text()


@pytest.mark.parametrize("status", [500, 400, 200])
def test_a_key_echoed_in_an_error_never_reaches_stderr(tmp_path, status):
    body = envelope(None, 500 if status == 200 else status, f"upstream said: token {KEY} rejected, Bearer {KEY[:-1]}x")
    with serve(lambda request: Reply(status, body, {"X-Echo": KEY})) as server:
        result = export(server.url, tmp_path, "-v")
    assert result.exit_code == 4, result.output
    assert "upstream said" in result.stderr
    assert_no_key(result, tmp_path)


def test_a_key_in_the_reason_phrase_is_cleaned(tmp_path):
    with serve(lambda request: Reply(502, b"", reason=f"Bad {KEY}")) as server:
        result = export(server.url, tmp_path)
    assert result.exit_code == 4
    assert "502 Bad [redacted]" in result.stderr
    assert_no_key(result, tmp_path)


# -- item 6: plain http, redirects -------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://192.0.2.1", "http://example.com:8080", "ftp://127.0.0.1", "http://user:pw@127.0.0.1",
                                 "https://"])
def test_plain_http_to_a_remote_host_is_refused(tmp_path, url):
    result = run("export", "--period", "2024-01", "--base-url", url, "--api-key", KEY, "--out", str(tmp_path),
                 "--retries", "1", "--timeout", "0.2", "-q")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: --base-url")
    assert "pw" not in result.stderr and not (tmp_path / "2024-01").exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://127.9.9.9", "http://[::1]:80/", "http://localhost:1",
                                 "https://api.wavespeed.ai", "HTTPS://api.example.com/"])
def test_https_anywhere_and_http_on_loopback_are_accepted(url):
    assert check_base_url(url) == url.rstrip("/")


def test_a_redirect_to_another_origin_is_refused(tmp_path):
    records = [raw_record(n, id=f"other-{n}") for n in range(3)]
    with serve(billing_api(records)) as other:
        target = other.url.replace("127.0.0.1", "localhost")  # same machine, another origin

        def redirect(request: Request) -> Reply:
            return Reply(302, b"", {"Location": f"{target}{request.path}?page={request.query.get('page', '1')}"})

        with serve(redirect) as server:
            result = export(server.url, tmp_path)
        assert other.requests == []  # never even asked
    assert result.exit_code == 4, result.output
    assert "another origin" in result.stderr
    assert not (tmp_path / "2024-01").exists()


@pytest.mark.parametrize("location", ["http://[::1", "//", "javascript:alert(1)"])
def test_a_redirect_to_an_unreadable_location_is_an_api_error(location):
    """Found by the fuzz test: requests parses a Location even when told not to follow it."""
    with serve(lambda request: Reply(302, b"", {"Location": location})) as server:
        with BillingClient(server.url, KEY, retry=QUICK) as client, pytest.raises(ApiError, match="redirect|header"):
            client.get_data("/x", {})


def test_a_redirect_within_the_origin_is_followed(tmp_path):
    pages = billing_api([raw_record(n) for n in range(3)])

    def handle(request: Request) -> Reply:
        if request.path == "/moved" + BILLINGS:
            return pages(Request(BILLINGS, request.query, request.headers))
        if request.path == BILLINGS:
            return Reply(307, b"", {"Location": f"/moved{BILLINGS}?page={request.query['page']}&page_size=2"})
        return pages(request)

    with serve(handle) as server:
        result = export(server.url, tmp_path, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "2024-01" / "transactions.csv").read_text().splitlines()) == 4


# -- items 7 and 8: time and size --------------------------------------------------------------


def test_a_trickling_answer_is_cut_at_the_deadline():
    body = envelope({"balance": 1})  # valid, but one byte every 0.1 s: about 5 s in all
    with serve(lambda request: Reply(200, body, trickle=0.1)) as server:
        with BillingClient(server.url, KEY, retry=RetryPolicy(attempts=1), timeout=(1, 1)) as client:
            with pytest.raises(ApiError, match="no complete answer within 1 s"):
                client.get_data("/x", {})


def test_a_slow_but_steady_answer_within_the_deadline_is_read():
    with serve(lambda request: Reply(200, envelope({"b": 1}), trickle=0.005)) as server:
        with BillingClient(server.url, KEY, retry=QUICK, timeout=(1, 20)) as client:
            assert client.get_data("/x", {}) == {"b": 1}


def test_a_decompression_bomb_is_refused():
    padding = 80 * 1024 * 1024  # 80 MiB of spaces inside a valid answer: about 80 KB compressed
    inflated = b'{"code": 200, "message": "' + b" " * padding + b'", "data": 1}'
    bomb = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    body = bomb.compress(inflated) + bomb.flush()
    del inflated
    with serve(lambda request: Reply(200, body, {"Content-Encoding": "gzip"})) as server:
        with BillingClient(server.url, KEY, retry=QUICK) as client:
            with pytest.raises(ApiError, match="larger than"):
                client.get_data("/x", {})


def test_gzip_and_deflate_answers_are_decoded():
    body = envelope({"n": 1})
    answers = {"/gzip": Reply(200, gzip.compress(body), {"Content-Encoding": "gzip"}),
               "/deflate": Reply(200, zlib.compress(body), {"Content-Encoding": "deflate"}),
               "/br": Reply(200, body, {"Content-Encoding": "br"}),
               "/broken": Reply(200, gzip.compress(body)[:-12], {"Content-Encoding": "gzip"})}
    with serve(lambda request: answers[request.path]) as server, BillingClient(server.url, KEY, retry=QUICK) as client:
        assert client.get_data("/gzip", {}) == {"n": 1}
        assert client.get_data("/deflate", {}) == {"n": 1}
        with pytest.raises(ApiError, match="Content-Encoding"):
            client.get_data("/br", {})
        with pytest.raises(ApiError, match="ends early"):
            client.get_data("/broken", {})
        assert server.requests[0].headers["Accept-Encoding"] == "gzip, deflate"


# -- item 13: bad data inside a JSON answer ----------------------------------------------------


@pytest.mark.parametrize("amount", [b"NaN", b"-Infinity"])
def test_nan_inside_an_answer_is_bad_data(tmp_path, amount):
    def handle(request: Request) -> Reply:
        reply = billing_api([raw_record(1, amount="AMOUNT")])(request)
        reply.body = reply.body.replace(b'"AMOUNT"', amount)
        return reply

    with serve(handle) as server:
        result = export(server.url, tmp_path)
    assert result.exit_code == 5, result.output
    assert "not a JSON number" in result.stderr and not (tmp_path / "2024-01").exists()


def test_text_that_is_not_utf8_inside_an_answer_is_bad_data():
    body = envelope({"model": "MODEL"}).replace(b"MODEL", b"caf\xe9")
    with serve(lambda request: Reply(200, body)) as server, BillingClient(server.url, KEY, retry=QUICK) as client:
        with pytest.raises(DataError, match="not UTF-8"):
            client.get_data("/x", {})


def test_a_body_that_is_not_json_stays_an_api_error():
    with serve(lambda request: Reply(200, b"<html>captive portal</html>")) as server:
        with BillingClient(server.url, KEY, retry=QUICK) as client, pytest.raises(ApiError, match="not JSON"):
            client.get_data("/x", {})


def test_the_client_refuses_plain_http_to_a_remote_host_itself():
    with pytest.raises(ConfigError, match="unencrypted"):
        BillingClient("http://192.0.2.1", KEY)


# -- item 14: --api-key on the command line ----------------------------------------------------


def test_a_key_on_the_command_line_gets_a_note(sandbox, monkeypatch):
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)
    args = ["summary", "--period", "2024-01", "--base-url", sandbox.url]
    noted = run(*args, "--api-key", DEMO_KEY)
    assert noted.exit_code == 0, noted.output
    (note,) = [line for line in noted.stderr.splitlines() if "--api-key" in line]
    assert "WAVESPEED_API_KEY" in note and DEMO_KEY not in noted.stderr

    assert "--api-key" not in run(*args, "--api-key", DEMO_KEY, "-q").stderr
    monkeypatch.setenv("WAVESPEED_API_KEY", DEMO_KEY)
    from_env = run(*args)
    assert from_env.exit_code == 0 and "--api-key" not in from_env.stderr
