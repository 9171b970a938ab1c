"""Every failure a user or the environment can cause: one line on stderr, a documented exit code.

The table below maps each foreign exception class the program can meet to its exit code, run
through the CLI. Where a row can be provoked for real (a truncated archive, a busy port, a
folder that is a file) it is; where that is impractical the row injects the exception with
monkeypatch at one documented boundary, and its comment says so.
"""

from __future__ import annotations

import errno
import gzip
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from decimal import InvalidOperation
from pathlib import Path

import pytest
import requests
import urllib3
from click.testing import CliRunner

from exporter import assemble, pipeline
from exporter.cli import cli
from exporter.sandbox import DEMO_KEY
from exporter.writers import csv_files
from factories import archive_of, source_folder
from loopback import QuietHandler, record_line, serve, serve_billings

SECRET = "sk-live-never-print-me-7"
REPO = Path(__file__).resolve().parents[1]
GOOD_LINE = record_line("txn_1", "-1.25")


def from_source(root: Path, archive: bytes) -> list[str]:
    return ["export", "--from-source", str(source_folder(root, archive)), "--out", str(root / "out"),
            "--format", "csv", "-q"]


def live(url: str, root: Path, *extra: str) -> list[str]:
    return ["export", "--period", "2024-01", "--base-url", url, "--api-key", SECRET, "--out", str(root / "out"),
            "--format", "csv", "--no-reconcile", "--retries", "1", "-q", *extra]


def good_api(stack: ExitStack) -> str:
    return stack.enter_context(serve_billings(lambda n: [GOOD_LINE]))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


def stalling_api(stack: ExitStack) -> str:
    """A server that answers only after the client's read timeout has passed."""
    release = threading.Event()

    class Stalling(QuietHandler):
        def do_GET(self) -> None:
            release.wait(2.0)
            self.send(200, "{}")

    url = stack.enter_context(serve(Stalling))
    stack.callback(release.set)  # runs before the server shuts down
    return url


def corrupt_deflate() -> bytes:
    data = bytearray(archive_of(GOOD_LINE))
    data[10] = 0xFF  # the first deflate block header: block type 3 does not exist
    return bytes(data)


def raising(exc: BaseException) -> Callable[..., None]:
    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    return fail


# Each provoker gets (tmp_path, monkeypatch, stack) and returns the CLI arguments; servers it
# starts live on ``stack`` until the command has run.


def out_below_a_file(tmp, mp, stack):
    (tmp / "file").write_text("x")
    return [*live(good_api(stack), tmp), "--out", str(tmp / "file" / "out")]


def fetch_into_a_missing_folder(tmp, mp, stack):
    return ["fetch", "--period", "2024-01", "--base-url", good_api(stack), "--api-key", SECRET,
            "--output", str(tmp / "missing" / "x.jsonl"), "-q"]


def writer_fails(error):
    """Injected at the writer boundary (Writer.write): a full disk, or a refused write for root,
    cannot be had on demand in-process (test_a_file_size_limit_is_exit_7... has a real EFBIG)."""
    def provoke(tmp, mp, stack):
        mp.setattr(csv_files.CsvWriter, "write", raising(error))
        return live(good_api(stack), tmp)
    return provoke


def archive(data):
    return lambda tmp, mp, stack: from_source(tmp, data)


def api_serving(*lines):
    return lambda tmp, mp, stack: live(stack.enter_context(serve_billings(lambda n: list(lines))), tmp)


def usage_summary_with_a_surrogate(tmp, mp, stack):
    usage = '{"by_model": [{"model": "m\\ud800", "requests": 1, "cost": 1.25}], "total_cost": 1.25}'
    url = stack.enter_context(serve_billings(lambda n: [GOOD_LINE], usage=usage))
    return [arg for arg in live(url, tmp) if arg != "--no-reconcile"]


def period(*options):
    return lambda tmp, mp, stack: ["summary", *options, "--api-key", SECRET, "--base-url", "https://api.invalid"]


def accounts_file(data):
    def provoke(tmp, mp, stack):
        (tmp / "a.toml").write_bytes(data)
        return [*from_source(tmp, archive_of(GOOD_LINE)), "--accounts", str(tmp / "a.toml")]
    return provoke


def non_ascii_key(tmp, mp, stack):
    mp.setenv("WAVESPEED_API_KEY", "sk-clé-" + SECRET)  # the environment: no note about --api-key in ps
    return ["export", "--period", "2024-01", "--base-url", good_api(stack), "--out", str(tmp / "out")]


def bad_port(tmp, mp, stack):
    return live("http://127.0.0.1:99999", tmp)


def busy_sandbox_port(tmp, mp, stack):
    sock = stack.enter_context(socket.socket())
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return ["sandbox", "--port", str(sock.getsockname()[1])]


def source_without_context(tmp, mp, stack):
    (tmp / "bare").mkdir()
    (tmp / "bare" / "billings.jsonl.gz").write_bytes(archive_of(GOOD_LINE))
    return ["export", "--from-source", str(tmp / "bare"), "--out", str(tmp / "out")]


def nothing_listens(tmp, mp, stack):
    return live(f"http://127.0.0.1:{closed_port()}", tmp)


def stalls(tmp, mp, stack):
    return live(stalling_api(stack), tmp, "--timeout", "0.2")


def pool_raises(error):
    """Injected at the HTTP boundary (the connection pool's urlopen): TLS and proxy failures need
    certificates or more servers; the client's translation is what is under test."""
    def provoke(tmp, mp, stack):
        mp.setattr(urllib3.HTTPConnectionPool, "urlopen", raising(error))
        return live("https://api.invalid", tmp)
    return provoke


def escapes(name, error, command="export", module=pipeline):
    """Injected at one function of the pipeline (``module``): nothing a user does raises these there,
    so the row checks the last-resort table (errors.from_foreign) behind the translations at the source."""
    def provoke(tmp, mp, stack):
        mp.setattr(module, name, raising(error))
        if command == "fetch":
            return ["fetch", "--period", "2024-01", "--api-key", SECRET, "--base-url", "https://api.invalid", "-q"]
        return from_source(tmp, archive_of(GOOD_LINE))
    return provoke


ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "transactions.csv")
EACCES = PermissionError(errno.EACCES, os.strerror(errno.EACCES), "by_day.csv")
SURROGATE = "m\\ud800"  # JSON text: the escape of a lone surrogate

CASES = [
    # output: exit 7
    pytest.param(out_below_a_file, 7, "Not a directory", id="NotADirectoryError: --out below a file"),
    pytest.param(fetch_into_a_missing_folder, 7, "No such file or directory", id="FileNotFoundError: fetch --output"),
    pytest.param(writer_fails(ENOSPC), 7, "No space left on device", id="OSError ENOSPC: disk full (injected)"),
    pytest.param(writer_fails(EACCES), 7, "Permission denied", id="PermissionError: not writable (injected)"),
    # an archive read with --from-source: exit 5
    pytest.param(archive(archive_of(*[GOOD_LINE] * 50)[:-30]), 5, "truncated", id="EOFError: truncated archive"),
    pytest.param(archive(b"plain text\n"), 5, "not a valid gzip file", id="gzip.BadGzipFile: not gzip"),
    pytest.param(archive(corrupt_deflate()), 5, "invalid block type", id="zlib.error: corrupt deflate data"),
    pytest.param(archive(gzip.compress(b'{"id": "\xff"}\n')), 5, "not UTF-8", id="UnicodeDecodeError: archive"),
    pytest.param(archive(archive_of(GOOD_LINE, "{not json")), 5, "line 2 is not valid JSON",
                 id="json.JSONDecodeError: archive line"),
    # record values, from the archive and from the API: exit 5
    pytest.param(archive(archive_of(record_line("txn_big", "1e400"))), 5,
                 "'txn_big' (billings.jsonl.gz line 1): field 'amount' 1E+400 is too large",
                 id="OverflowError: amount 1e400"),
    pytest.param(api_serving(record_line("txn_huge", "-1e999999999")), 5, "field 'amount' -1E+999999999 is too large",
                 id="decimal.Overflow: amount 1e999999999"),
    pytest.param(archive(archive_of(record_line("txn_s", model=SURROGATE))), 5,
                 "'txn_s' (billings.jsonl.gz line 1): field 'model' is not valid Unicode",
                 id="UnicodeEncodeError: lone surrogate (archive)"),
    pytest.param(api_serving(GOOD_LINE, record_line("txn_s", model=SURROGATE)), 5,
                 "'txn_s' (page 1, item 2): field 'model' is not valid Unicode",
                 id="UnicodeEncodeError: lone surrogate (API)"),
    pytest.param(usage_summary_with_a_surrogate, 5, "by_model[0]: field 'model' is not valid Unicode",
                 id="UnicodeEncodeError: lone surrogate (usage summary)"),
    pytest.param(escapes("summarize_records", InvalidOperation("x"), module=assemble), 5, "a number out of range",
                 id="decimal.InvalidOperation (injected, last resort)"),
    # options and inputs: exit 2
    pytest.param(accounts_file(b"vendor = [unclosed"), 2, "not valid TOML", id="tomllib.TOMLDecodeError: --accounts"),
    pytest.param(accounts_file(b'vendor = "\xff"'), 2, "not valid TOML", id="UnicodeDecodeError: --accounts"),
    # http.client would raise UnicodeEncodeError (headers are Latin-1): refused before any request
    pytest.param(non_ascii_key, 2, "API key contains", id="UnicodeEncodeError: API key not ASCII"),
    # requests would raise InvalidURL
    pytest.param(bad_port, 2, "not a valid URL", id="requests.InvalidURL: port out of range"),
    # datetime would raise OverflowError / ValueError at the ends of the calendar
    pytest.param(period("--period", "0001-01"), 2, "outside the calendar", id="OverflowError: --period 0001-01"),
    pytest.param(period("--period", "9999-12"), 2, "outside the calendar", id="ValueError: --period 9999-12"),
    pytest.param(busy_sandbox_port, 2, "ddress already in use", id="OSError EADDRINUSE: sandbox --port busy"),
    pytest.param(source_without_context, 2, "does not exist", id="FileNotFoundError: --from-source context.json"),
    # network: exit 4
    pytest.param(nothing_listens, 4, "ConnectionError", id="requests.ConnectionError: nothing listens"),
    pytest.param(stalls, 4, "ReadTimeout", id="requests.ReadTimeout: the server stalls"),
    pytest.param(pool_raises(urllib3.exceptions.SSLError("bad")), 4, "SSLError",
                 id="urllib3 SSLError, reported as requests.SSLError (injected)"),
    pytest.param(pool_raises(urllib3.exceptions.ProxyError("refused", OSError("refused"))), 4, "ProxyError",
                 id="urllib3 ProxyError, reported as requests.ProxyError (injected)"),
    pytest.param(escapes("fetch", requests.ConnectionError("reset"), "fetch"), 4, "network error",
                 id="requests.ConnectionError (injected, last resort)"),
    # the rest: Ctrl-C cannot be pressed in a test, nor memory exhausted
    pytest.param(escapes("run_export", KeyboardInterrupt()), 130, "interrupted", id="KeyboardInterrupt (injected)"),
    pytest.param(escapes("run_export", MemoryError()), 1, "out of memory", id="MemoryError (injected)"),
    pytest.param(escapes("run_export", RuntimeError("oops")), 1, "internal error (RuntimeError: oops); run with --debug",
                 id="RuntimeError, a bug (injected)"),
]


@pytest.mark.parametrize("provoke, code, phrase", CASES)
def test_each_failure_is_one_line_and_its_exit_code(provoke, code, phrase, tmp_path, monkeypatch):
    with ExitStack() as stack:
        args = provoke(tmp_path, monkeypatch, stack)
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    # the failure is one line (a note about --api-key on the command line may come before it)
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("note: --api-key")]
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert phrase in lines[0]
    assert "Traceback" not in result.output and SECRET not in result.output
    out = tmp_path / "out"
    assert not out.exists() or [p.name for p in out.iterdir()] in ([], [".2024-01.pages"])  # nothing half-written


def test_debug_shows_the_traceback_of_a_bug(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "run_export", raising(RuntimeError("oops")))
    with pytest.raises(RuntimeError, match="oops"):
        CliRunner().invoke(cli, ["--debug", *from_source(tmp_path, archive_of(GOOD_LINE))], catch_exceptions=False)


def run_cli(*args: str, limit_file_size: int | None = None, **kwargs) -> subprocess.CompletedProcess:
    """The CLI in a child process (optionally with a file size limit, as a full disk would stop it)."""
    prelude = ""
    if limit_file_size is not None:  # Python ignores SIGXFSZ: an oversized write fails with EFBIG
        prelude = f"import resource; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_file_size}, {limit_file_size}))\n"
    code = prelude + "import sys; from exporter.cli import main; sys.argv[0] = 'wavespeed-export'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, **kwargs)


def test_a_file_size_limit_is_exit_7_and_keeps_the_previous_export(tmp_path):
    source = source_folder(tmp_path, archive_of(*[record_line(f"txn_{i}", "-0.0025") for i in range(3000)]))
    first = CliRunner().invoke(cli, ["export", "--from-source", str(source), "--out", str(tmp_path / "out"), "-q"])
    assert first.exit_code == 0, first.output
    pack = tmp_path / "out" / "2024-01"
    before = {p.name: p.read_bytes() for p in pack.iterdir() if p.is_file()}
    assert (pack / "transactions.csv").stat().st_size > 100_000

    child = run_cli("export", "--from-source", str(source), "--out", str(tmp_path / "out"), "-q",
                    limit_file_size=100_000, capture_output=True, text=True)
    assert child.returncode == 7, child.stderr
    assert child.stderr.startswith("Error: cannot write") and "File too large" in child.stderr
    assert len(child.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in pack.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["2024-01", "books.sqlite"]


def test_a_closed_stdout_is_exit_7_without_a_traceback(sandbox):
    child = subprocess.Popen(
        [sys.executable, "-m", "exporter", "fetch", "--period", "2024-01", "--base-url", sandbox.url,
         "--api-key", DEMO_KEY, "-q"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.read(100)  # a reader such as `head -c 100`, which then goes away
    child.stdout.close()
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=60) == 7
    assert stderr.startswith("Error: standard output was closed (broken pipe)") and len(stderr.strip().splitlines()) == 1
