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
from hostile import BILLINGS, SEARCH, USAGE, USAGE_STATS, Reply, Request, everything_under, raw_record, serve

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


CURRENT_FIELDS = {  # the current API's record (docs/api.md), as hostile as the legacy one
    "uuid": st.one_of(hostile_text, json_values),
    "billing_type": st.one_of(st.sampled_from(["deduct", "refund", "bonus"]), hostile_text, json_values),
    "price": st.one_of(numbers, json_values),
    "order": st.one_of(json_values, st.fixed_dictionaries({"state": st.one_of(st.sampled_from(["pre", "done"]),
                                                                                hostile_text, json_values)})),
    "prediction": st.one_of(json_values, st.fixed_dictionaries({"model_uuid": st.one_of(hostile_text, json_values),
                                                                "uuid": hostile_text})),
    "access_key_name": st.one_of(st.none(), hostile_text, json_values),
    "access_key_id": st.one_of(st.none(), hostile_text),
    "created_at": st.one_of(stamps, st.integers(-10, 10**16).map(str), st.integers(-10, 10**16)),
    "updated_at": st.one_of(stamps, st.integers(-10, 10**16)),
}


def current_record(number: int) -> dict[str, Any]:
    """A valid charge of 2024-01-15 as the current API sends it."""
    return {"uuid": f"b_{number:06d}", "billing_type": "deduct", "price": Decimal("0.0025"),
            "created_at": f"2024-01-15T10:{number // 60 % 60:02d}:{number % 60:02d}.000Z",
            "order": {"state": "done"}, "prediction": {"model_uuid": "wavespeed-ai/flux-dev", "uuid": f"p_{number}"},
            "access_key_name": "prod-app", "access_key_id": "ak_1"}


@st.composite
def current_records(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(json_values)
    record = current_record(draw(st.integers(0, 3000)))
    for name in draw(st.lists(st.sampled_from(sorted(CURRENT_FIELDS)), max_size=2, unique=True)):
        if draw(st.integers(0, 5)):
            record[name] = draw(CURRENT_FIELDS[name])
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
def plausible_current_records(draw: st.DrawFn) -> dict[str, Any]:
    """A current-API record that passes validation but for its text."""
    record = current_record(draw(st.integers(0, 3000)))
    record["billing_type"] = draw(st.sampled_from(["deduct", "refund", "bonus"]))
    record["price"] = draw(st.sampled_from(["0.0025", "-12.50", "1000", "0.000001", "3e2"]).map(Decimal))
    for name in ("uuid", "access_key_name", "access_key_id"):
        if draw(st.booleans()):
            record[name] = draw(hostile_text.filter(str.strip))
    if draw(st.booleans()):
        record["prediction"]["model_uuid"] = draw(hostile_text.filter(str.strip))
    if draw(st.booleans()):
        record["order"]["state"] = draw(hostile_text.filter(str.strip))
    return record


@st.composite
def plausible_pages(draw: st.DrawFn) -> Reply:
    data: dict[str, Any]
    if draw(st.booleans()):
        items = draw(st.lists(plausible_current_records(), max_size=5))
        data = {"page": 1, "total": len(items), "items": items}
    else:
        items = draw(st.lists(plausible_records(), max_size=5))
        data = {"items": items, "pagination": {"page": 1, "page_size": max(len(items), 1), "total": len(items)}}
    body = jsonexact.dumps({"code": 200, "message": "success", "data": data}).replace("@@ESCAPED@@", ESCAPED_KEY)
    return Reply(200, body.encode("utf-8", "backslashreplace"))


counts = st.one_of(st.integers(0, 6), st.sampled_from([-1, 10**9, 10**12, "2", None, Decimal("1.5"), Decimal("1E+999")]))


@st.composite
def envelopes(draw: st.DrawFn, generation: str = "legacy") -> bytes:
    kind = draw(st.integers(0, 9))
    if kind <= 7:  # a billings page, mostly well formed around hostile records
        data: Any
        if generation == "current":
            items = draw(st.lists(current_records(), max_size=4))
            data = {"page": 1, "total": len(items), "items": items}
            if draw(st.booleans()):
                data[draw(st.sampled_from(["page", "total", "has_more"]))] = draw(st.one_of(counts, st.booleans()))
            if draw(st.integers(0, 4)) == 0:
                del data["total"]
        else:
            items = draw(st.lists(records(), max_size=4))
            pagination = {"page": 1, "page_size": max(len(items), 1), "total": len(items)}
            for name in draw(st.lists(st.sampled_from(sorted(pagination)), max_size=2, unique=True)):
                pagination[name] = draw(counts)
            data = {"items": items, "pagination": pagination}
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
    """The provider's usage summary (either generation's shape): model names and costs as hostile as the records'."""
    names = st.one_of(hostile_text, st.just("wavespeed-ai/flux-dev"))
    data: Any
    if draw(st.booleans()):
        rows = draw(st.lists(st.fixed_dictionaries({"model": names, "cost": st.one_of(numbers, json_values)}), max_size=3))
        data = {"by_model": rows, "total_cost": draw(st.one_of(st.none(), numbers))}
    else:
        rows = draw(st.lists(st.fixed_dictionaries({"model_uuid": names, "total_cost": st.one_of(numbers, json_values)}),
                             max_size=3))
        data = draw(st.one_of(st.none(), st.just({"per_model_usage": rows, "daily_usage": [],
                                                   "summary": {"total_cost": draw(st.one_of(st.none(), numbers))}})))
    text = jsonexact.dumps({"code": 200, "message": "success", "data": data}).replace("@@ESCAPED@@", ESCAPED_KEY)
    return text.encode("utf-8", "backslashreplace")


@st.composite
def replies(draw: st.DrawFn, bodies: st.SearchStrategy[bytes] | None = None) -> Reply:
    status = draw(st.sampled_from([200] * 36 + [204, 301, 302, 307, 400, 401, 403, 404, 429, 500, 502, 503]))
    body = draw(bodies if bodies is not None else st.one_of(envelopes(), envelopes("current")))
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


EMPTY = {BILLINGS: b'{"code":200,"message":"ok","data":{"items":[],"pagination":{"page":1,"page_size":2,"total":0}}}',
         SEARCH: b'{"code":200,"message":"ok","data":{"page":1,"total":0,"items":[]}}'}


class Script:
    """The billing path of ``generation`` gets the scripted replies in turn (then valid empty pages),
    the usage paths their own; any other path is not there (404), as on a real server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.billings: list[Reply] = []
        self.usage = Reply(404)
        self.path = BILLINGS

    def __call__(self, request: Request) -> Reply:
        with self.lock:
            if request.path in (USAGE, USAGE_STATS):
                return self.usage
            if request.path != self.path:
                return Reply(404, b'{"code":404,"message":"not found","data":null}')
            if self.billings:
                return self.billings.pop(0)
        return Reply(200, EMPTY[self.path])


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
@pytest.mark.parametrize("generation", ["legacy", "current"])
def test_whatever_the_server_answers_the_export_stays_safe(script, generation, billings, usage, strict):
    script.billings, script.usage = list(billings), usage
    script.path = SEARCH if generation == "current" else BILLINGS
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
