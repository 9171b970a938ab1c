"""Fuzz: generated hostile answers from a loopback server, each run through the CLI (issue 9).

Whatever the server answers (random JSON shapes and field types; numbers huge, tiny, with
exponents, NaN; strings with control characters, formula prefixes and the key itself; odd
pagination; any status code, Retry-After, Content-Encoding, redirects), an export ends with a
documented exit code and a one-line error, never a traceback; the pack folder exists only after
exit 0; and the key appears nowhere: not on stdout or stderr, not in any file under --out
(gzip members and workbook parts opened up).

Generated strings include lone surrogates (UTF-16 halves, which JSON can escape but UTF-8 cannot
hold): record validation refuses them as bad data, naming the record and field.
"""

from __future__ import annotations

import gzip
import tempfile
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.cli import cli
from exporter.extract import jsonexact
from hostile import BILLINGS, Reply, Request, everything_under, raw_record, serve

KEY = "sk-fuzz-SECRET-5b1e77"
ESCAPED_KEY = "".join(f"\\u{ord(c):04x}" for c in KEY)  # the key in JSON without its bytes
EXIT_CODES = {0, 2, 3, 4, 5, 6}  # README "Exit codes"; 1 is a bug

# -- generated pieces --------------------------------------------------------------------------

_chars = st.characters()  # every code point, lone surrogates included (see the module docstring)
echoes = st.sampled_from([KEY, f"Bearer {KEY}", f"bearer\t{KEY}==", "@@ESCAPED@@", f"x{KEY}y"])
hostile_text = st.one_of(
    st.text(_chars, max_size=12),
    st.builds(lambda p, t: p + t, st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\n", "\x00", "\x0b", "\x1b", "\x85"]),
              st.text(_chars, max_size=8)),
    echoes,
)
numbers = st.one_of(
    st.sampled_from(["-0.0025", "0", "-0", "1e400", "-1E-7", "1e9", "-1000000000.000001", "5e-324", "1E+999999",
                     "100.00", "-5000000000000", "NaN", "-Infinity", "0.0000001"]).map(Decimal),
    st.integers(-(10**20), 10**20),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-10**6, max_value=10**6),
)
json_scalars = st.one_of(st.none(), st.booleans(), numbers, hostile_text)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(hostile_text, inner, max_size=3)),
                           max_leaves=8)
stamps = st.one_of(st.sampled_from(["2024-01-15T10:30:00.000Z", "2024-01-31T23:59:59.999Z", "2024-02-01T00:00:00Z",
                                    "2024-01-15T10:30:00", "2024-01-15T10:30:00+05:30", "2024-01-15", "yesterday", ""]),
                   json_values)
FIELDS = {
    "id": st.one_of(hostile_text, json_values),
    "type": st.one_of(st.sampled_from(["usage", "topup", "refund", "bonus"]), hostile_text, json_values),
    "status": st.one_of(st.sampled_from(["completed", "pending"]), hostile_text),
    "currency": st.one_of(st.sampled_from(["USD", "EUR", "=1+2", "usd"]), hostile_text),
    "amount": st.one_of(numbers, json_values),
    "model": st.one_of(st.none(), hostile_text, json_values),
    "payment_method": st.one_of(st.none(), hostile_text),
    "created_at": stamps,
}


@st.composite
def records(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(json_values)  # not even an object
    record = raw_record(draw(st.integers(0, 3000)))
    record["model"] = draw(st.one_of(st.just(record["model"]), hostile_text))  # text that reaches every file
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=2, unique=True)):
        if draw(st.integers(0, 5)):
            record[name] = draw(FIELDS[name])
        else:
            record.pop(name, None)
    return record


@st.composite
def plausible_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record that passes validation but for its text: the text then reaches every file of the pack."""
    record = raw_record(draw(st.integers(0, 3000)), type=draw(st.sampled_from(["usage", "topup", "refund", "bonus"])))
    record["amount"] = draw(st.sampled_from(["-0.0025", "12.50", "-1000000000", "0.000001", "-3e2"]).map(Decimal))
    for name in ("id", "model", "payment_method", "status"):
        if draw(st.booleans()):
            record[name] = draw(hostile_text.filter(str.strip))
    return record


@st.composite
def plausible_pages(draw: st.DrawFn) -> Reply:
    items = draw(st.lists(plausible_records(), max_size=5))
    data = {"items": items, "pagination": {"page": 1, "page_size": max(len(items), 1), "total": len(items)}}
    body = jsonexact.dumps({"code": 200, "message": "success", "data": data}).replace("@@ESCAPED@@", ESCAPED_KEY)
    return Reply(200, body.encode("utf-8", "backslashreplace"))


counts = st.one_of(st.integers(0, 6), st.sampled_from([-1, 10**9, 10**12, "2", None, Decimal("1.5"), Decimal("1E+999")]))


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind <= 7:  # a billings page, mostly well formed around hostile records
        items = draw(st.lists(records(), max_size=4))
        pagination = {"page": 1, "page_size": max(len(items), 1), "total": len(items)}
        for name in draw(st.lists(st.sampled_from(sorted(pagination)), max_size=2, unique=True)):
            pagination[name] = draw(counts)
        data: Any = {"items": items, "pagination": pagination}
        if draw(st.integers(0, 9)) == 0:
            data = draw(json_values)
        body: Any = {"code": draw(st.sampled_from([200] * 12 + ["200", 500, 401, None])), "message": draw(hostile_text),
                     "data": data}
    elif kind <= 8:
        body = draw(json_values)
    else:
        return draw(st.binary(max_size=40))
    text = jsonexact.dumps(body).replace("@@ESCAPED@@", ESCAPED_KEY)
    return text.encode("utf-8", "backslashreplace")  # a lone surrogate goes out as JSON's \ud800 escape


@st.composite
def usage_envelopes(draw: st.DrawFn) -> bytes:
    """The provider's usage summary: model names and costs as hostile as the records'."""
    rows = draw(st.lists(st.fixed_dictionaries({"model": st.one_of(hostile_text, st.just("wavespeed-ai/flux-dev")),
                                                "cost": st.one_of(numbers, json_values)}), max_size=3))
    data = {"by_model": rows, "total_cost": draw(st.one_of(st.none(), numbers))}
    text = jsonexact.dumps({"code": 200, "message": "success", "data": data}).replace("@@ESCAPED@@", ESCAPED_KEY)
    return text.encode("utf-8", "backslashreplace")


@st.composite
def replies(draw: st.DrawFn, bodies: st.SearchStrategy[bytes] | None = None) -> Reply:
    status = draw(st.sampled_from([200] * 36 + [204, 301, 302, 307, 400, 401, 403, 404, 429, 500, 502, 503]))
    body = draw(bodies if bodies is not None else envelopes())
    headers: dict[str, str] = {}
    if status in (301, 302, 307):
        headers["Location"] = draw(st.sampled_from([BILLINGS + "?page=1", "http://localhost:9/x", "//127.0.0.2:9/y",
                                                    "https://example.invalid/", f"/{KEY}", "http://[::1"]))
    if draw(st.integers(0, 3)) == 0:
        headers["Retry-After"] = draw(st.sampled_from(["0", "1", "99999", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", "-1"]))
    encoding = draw(st.sampled_from([None] * 16 + ["gzip", "gzip", "gzip-broken", "deflate", "br", "identity"]))
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "gzip-broken":
        body, encoding = gzip.compress(body)[:-4], "gzip"
    if encoding:
        headers["Content-Encoding"] = encoding
    if draw(st.integers(0, 3)) == 0:
        headers["Content-Type"] = draw(st.sampled_from(["text/html", "application/json; charset=latin-1", KEY]))
    reason = draw(st.sampled_from([None] * 6 + [f"Oops {KEY}", "Bearer abc.def"]))
    return Reply(status, body, headers, reason=reason)


# -- the server and the run --------------------------------------------------------------------


class Script:
    """Billings requests get the scripted replies in turn (then valid empty pages); usage gets its own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.billings: list[Reply] = []
        self.usage = Reply(404)

    def __call__(self, request: Request) -> Reply:
        with self.lock:
            if request.path != BILLINGS:
                return self.usage
            if self.billings:
                return self.billings.pop(0)
        return Reply(200, b'{"code":200,"message":"ok","data":{"items":[],"pagination":{"page":1,"page_size":2,"total":0}}}')


@pytest.fixture(scope="module")
def script():
    handler = Script()
    with serve(handler) as server:
        handler.url = server.url  # type: ignore[attr-defined]
        yield handler


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.one_of(st.lists(replies(), min_size=1, max_size=3), plausible_pages().map(lambda page: [page])), st.one_of(st.just(Reply(404)), replies(usage_envelopes()), replies()),
       st.sampled_from([False, False, False, True]))
def test_whatever_the_server_answers_the_export_stays_safe(script, billings, usage, strict):
    script.billings, script.usage = list(billings), usage
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        out = Path(folder) / "out"
        args = ["export", "--period", "2024-01", "--base-url", script.url, "--api-key", KEY, "--out", str(out),
                "--retries", "2", "--backoff", "0", "--max-wait", "0.05", "--timeout", "2", "--concurrency", "2",
                *(["--strict"] if strict else [])]
        result = CliRunner().invoke(cli, args)

        assert result.exit_code in EXIT_CODES, (result.exit_code, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
        if result.exit_code:
            errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1, result.stderr
        assert (out / "2024-01").exists() == (result.exit_code == 0)
        assert KEY not in result.stdout and KEY not in result.stderr
        if out.exists():
            assert not list(out.glob(".2024-01.writing-*"))
            for name, data in everything_under(out).items():
                assert KEY.encode() not in data, name
