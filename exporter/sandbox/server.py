"""The sandbox: a real HTTP server on loopback that plays the WaveSpeedAI account API.

Stdlib only (``http.server``), so it starts anywhere without a key or a network. It serves one
or both generations of the API (``api``: ``"legacy"``, the library default, ``"current"`` or
``"both"``); the paths of a generation not served answer 404. This module is the router and
serves the legacy generation:

- ``GET /api/v3/account/billings``: ``page``, ``page_size``, ``type``, ``start_date``, ``end_date``
- ``GET /api/v3/account/usage``: ``start_date``, ``end_date``, ``model``
- ``GET /api/v3/account/balance``

:mod:`.current` serves the current generation from the same dataset:

- ``POST /api/v3/billings/search`` (JSON body), ``POST /api/v3/scheduler/billings/query``,
  ``GET /api/v3/balance``, ``POST /api/v3/user/usage_stats``

Every JSON answer is the envelope ``{"code": 200, "message": "success", "data": {...}}``.
:class:`Faults` switches on the failures a careful client must survive; the server reads them
on every request, so a test can flip them while the server runs.

Order of checks for one request: latency, ``down``, ``fail_next``, unknown path (404), wrong
method (405), key (401), then for the billing listings (legacy billings, current search and
scheduler query) the "every Nth" faults (counted over authorised listing requests), then the
parameters and the JSON body (400).
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from . import current, history
from .data import DEMO_KEY, TYPES, Dataset, generate_dataset, record_json
from .wire import CENT, Route, body_fields, parse_body  # noqa: F401 (CENT: kept importable from here)
from .wire import BadParam as _BadParam
from .wire import Response as _Response
from .wire import cents as _cents
from .wire import envelope as _envelope
from .wire import error as _error
from .wire import html as _html

BILLINGS = "/api/v3/account/billings"
USAGE = "/api/v3/account/usage"
BALANCE = "/api/v3/account/balance"
DEFAULT_PAGE_SIZE = 20
APIS = ("legacy", "current", "both")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class Faults:
    """Failure switches, all off by default. Change them on ``server.faults`` at any time."""

    latency_ms: float = 0.0  # sleep before answering each request
    page_cap: int = 100  # largest page_size the server grants
    rate_limit_every: int = 0  # every Nth billings request: 429
    retry_after: str | None = "0"  # Retry-After header of the 429 (seconds or HTTP-date); None: no header
    error_every: int = 0  # every Nth billings request: error_status
    error_status: int = 502
    error_html: bool = True  # error body: a gateway's HTML page, or else a JSON envelope
    fail_next: int = 0  # the next N requests (any endpoint) answer error_status
    down: bool = False  # every request answers 503 with an HTML page
    duplicate_across_pages: bool = False  # page k+1 starts with page k's last item again
    ignore_page: bool = False  # every page number serves page 1's items
    malformed: dict[str, str] | None = None  # record id -> field to break in its JSON
    wrong_total: int | None = None  # report this pagination total instead of the real one
    # records arriving while a client pages: the `arrivals` newest records of every query appear
    # only once `arrive_after` billings requests have been answered, shifting every page
    arrivals: int = 0
    arrive_after: int = 0
    usage_skew: dict[str, Decimal] = field(default_factory=dict)  # model -> amount added to its usage cost
    balance_skew: Decimal = Decimal(0)  # added to the balance answer: a provider that disagrees with its records
    balance_currency: str = "USD"  # the balance answer's currency (a provider that names another, or garbage)
    # -- the current API only --
    time_form: str = "both"  # start_time/end_time of billings/search: "both", "ms" or "rfc3339" accepted
    pagination: str = "total"  # billings/search data: "total", "has_more" (no total) or "both"
    price_sign: str = "positive"  # billings/search price: "positive", "negative" or "signed" (deducts negative)
    key_id_field: str = "access_key_id"  # or "access_key_uuid", as one doc example names it
    absurd_price: str | None = None  # this record id is served with price 24300
    absent: frozenset[str] = frozenset()  # paths answered 404, as if this server did not have them


class LoggedRequest(NamedTuple):
    """One request as the server saw it. Headers are never kept: they carry the key."""

    path: str
    query: dict[str, str]
    status: int


class RequestLog:
    """Thread-safe, append-only list of :class:`LoggedRequest`; iterate or index a snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[LoggedRequest] = []

    def append(self, item: LoggedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def snapshot(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[LoggedRequest]:
        return iter(self.snapshot())

    def __getitem__(self, index: int) -> LoggedRequest:
        with self._lock:
            return self._items[index]

    def __repr__(self) -> str:
        return f"RequestLog({self.snapshot()!r})"


class SandboxServer(ThreadingHTTPServer):
    """The fake API. ``url``, ``faults`` (mutable) and ``requests`` (the log) are for tests."""

    daemon_threads = True
    # Keep-alive connections park a handler thread until the client hangs up; closing the
    # server must not wait for them.
    block_on_close = False
    # The stdlib's backlog of 5 overflows when a client opens 16 connections at once, and the
    # kernel then retries the connection a second later: a stall that a real API would not show.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], dataset: Dataset, faults: Faults, api: str = "legacy",
                 key: str = DEMO_KEY) -> None:
        if api not in APIS:
            raise ValueError(f"api must be one of {', '.join(APIS)}, not {api!r}")
        super().__init__(address, _Handler)
        self.dataset = dataset
        self.faults = faults
        self.api = api
        self.key = key  # the one key accepted (tests serve several accounts, each with its own)
        if api != "legacy":
            current.warm(dataset)
        self.requests = RequestLog()
        self._counter_lock = threading.Lock()
        self._billings_count = 0
        self.records_served = 0  # billing records served (for tests of what a run re-reads)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve_forever(self, poll_interval: float = 0.02) -> None:
        """As the stdlib's, with a short poll: ``shutdown()`` waits up to one interval, and
        tests start many servers."""
        super().serve_forever(poll_interval)

    def reset(self) -> None:
        """Forget the request log and restart the "every Nth" count."""
        self.requests.clear()
        with self._counter_lock:
            self._billings_count = 0
            self.records_served = 0

    def count_served(self, records: int) -> None:
        with self._counter_lock:
            self.records_served += records

    def billings_answered(self) -> int:
        """Billings requests counted so far (the one being answered included)."""
        with self._counter_lock:
            return self._billings_count

    def _next_billings_number(self) -> int:
        with self._counter_lock:
            self._billings_count += 1
            return self._billings_count

    def _take_fail_next(self) -> bool:
        with self._counter_lock:
            if self.faults.fail_next > 0:
                self.faults.fail_next -= 1
                return True
            return False

    def answer(
        self,
        path: str,
        query: dict[str, str],
        authorization: str | None,
        method: str = "GET",
        body: bytes | dict[str, Any] = b"",
    ) -> _Response:
        """Decide the response to one request; see the module docstring for the order of checks.
        ``query`` holds a GET's parameters; a POST's are its JSON ``body`` (bytes, or already
        parsed)."""
        faults = self.faults
        if faults.latency_ms > 0:
            time.sleep(faults.latency_ms / 1000)
        if faults.down:
            return _html(503)
        if self._take_fail_next():
            return _error(faults.error_status, faults.error_html)
        route = self._routes().get(path.rstrip("/"))
        if route is None or path.rstrip("/") in faults.absent:
            return _envelope(404, "not found")
        allowed, handler, counted = route
        if method != allowed:
            return _envelope(405, "method not allowed", headers=(("Allow", allowed),))
        if not _authorised(authorization, self.key):
            return _envelope(401, "invalid api key")
        if counted:
            n = self._next_billings_number()
            if faults.rate_limit_every and n % faults.rate_limit_every == 0:
                headers = () if faults.retry_after is None else (("Retry-After", faults.retry_after),)
                return _envelope(429, "too many requests", headers=headers)
            if faults.error_every and n % faults.error_every == 0:
                return _error(faults.error_status, faults.error_html)
        try:
            if method == "GET":
                return handler(self, query)
            return handler(self, body if isinstance(body, dict) else parse_body(body))
        except _BadParam as exc:
            return _envelope(400, str(exc))

    def _routes(self) -> dict[str, Route]:
        if self.api == "legacy":
            return _ROUTES
        return current.ROUTES if self.api == "current" else {**_ROUTES, **current.ROUTES}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    server_version = "WaveSpeedSandbox/1.0"
    disable_nagle_algorithm = True  # headers and body go out as two writes
    timeout = 60  # an idle keep-alive connection frees its thread after a minute
    server: SandboxServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle("GET", b"")

    def do_POST(self) -> None:  # noqa: N802
        length = self.headers.get("Content-Length") or "0"
        body = self.rfile.read(int(length)) if length.isdigit() else b""
        self._handle("POST", body)

    def _handle(self, method: str, body: bytes) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        parsed: bytes | dict[str, Any] = body
        if method == "POST":
            try:
                parsed = parse_body(body)  # once: for the answer and the log
            except _BadParam:
                pass  # answered 400 in its turn, after the key and the faults
        try:
            response = self.server.answer(parts.path, query, self.headers.get("Authorization"), method, parsed)
        except Exception as exc:  # a sandbox bug must still answer, or the client hangs
            response = _envelope(500, f"sandbox error: {type(exc).__name__}: {exc}")
        # logged before the answer leaves, so a test that got the answer sees the entry
        logged = {**query, **body_fields(parsed)} if isinstance(parsed, dict) else query
        self.server.requests.append(LoggedRequest(parts.path, logged, response.status))
        self.send_response(response.status)
        self.send_header("Content-Type", f"{response.content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: tests and benchmarks make thousands of requests."""


# -- endpoints ---------------------------------------------------------------------------


def _billings(server: SandboxServer, query: dict[str, str]) -> _Response:
    """Billing records, newest first, by page; see the module docstring of :mod:`.data`."""
    faults = server.faults
    page = _int_param(query, "page", 1)
    asked = _int_param(query, "page_size", DEFAULT_PAGE_SIZE)
    size = max(1, min(asked, faults.page_cap))
    type_ = query.get("type") or None
    if type_ is not None and type_ not in TYPES:
        raise _BadParam(f"invalid type {type_!r}: expected one of {', '.join(TYPES)}")
    start, end = _date_range(query)
    index = server.dataset.select(type_, start, end)
    if faults.arrivals and server.billings_answered() <= faults.arrive_after:
        index = index[faults.arrivals :]  # newest first: the newest have not arrived yet
    total = len(index)

    first = 0 if faults.ignore_page else (page - 1) * size
    positions: Sequence[int] = index[first : first + size]
    if faults.duplicate_across_pages and page > 1 and positions and not faults.ignore_page:
        # as if a new record had shifted the offsets: the previous page's last item comes again
        positions = [index[first - 1], *positions]
    items = _items_json(server.dataset, positions, faults.malformed)
    server.count_served(len(positions))

    reported = total if faults.wrong_total is None else faults.wrong_total
    tail = f'],"pagination":{{"page":{page},"page_size":{size},"total":{reported}}}}}}}'
    body = b'{"code":200,"message":"success","data":{"items":[' + items + tail.encode("ascii")
    return _Response(200, body)


def _usage(server: SandboxServer, query: dict[str, str]) -> _Response:
    """The provider's usage summary: completed usage only, costs positive, rounded to cents."""
    start, end = _date_range(query)
    model = query.get("model") or None
    per_model = server.dataset.usage_by_model(start, end)
    if model is not None:
        per_model = {m: u for m, u in per_model.items() if m == model}
    rows: dict[str, list[Any]] = {m: [u.requests, u.cost] for m, u in per_model.items()}
    for name, skew in server.faults.usage_skew.items():
        if model is None or name == model:
            rows.setdefault(name, [0, Decimal(0)])[1] += Decimal(skew)
    by_model = [
        {"model": name, "requests": n, "cost": _cents(cost)}
        for name, (n, cost) in sorted(rows.items(), key=lambda kv: (-kv[1][1], kv[0]))
    ]
    span = server.dataset.day_span()
    first = start or (span[0] if span else None)
    last = end or (span[1] if span else None)
    data = {
        "period": f"{first.isoformat() if first else ''}..{last.isoformat() if last else ''}",
        "total_requests": sum(n for n, _ in rows.values()),
        "total_cost": _cents(sum((cost for _, cost in rows.values()), Decimal(0))),
        "by_model": by_model,
    }
    return _envelope(200, "success", data)


def _balance(server: SandboxServer, query: dict[str, str]) -> _Response:
    """The current credit balance: the opening balance plus every completed amount, exactly."""
    balance = server.dataset.balance + Decimal(server.faults.balance_skew)
    return _envelope(200, "success", {"balance": balance, "currency": server.faults.balance_currency})


_ROUTES: dict[str, Route] = {
    BILLINGS: ("GET", _billings, True), USAGE: ("GET", _usage, False), BALANCE: ("GET", _balance, False),
}


def _items_json(dataset: Dataset, positions: Iterable[int], malformed: dict[str, str] | None) -> bytes:
    if not malformed:
        return dataset.json_bytes(positions)
    parts = []
    for i in positions:
        broken = malformed.get(dataset.record_id(i))
        if broken is None:
            parts.append(dataset.json_bytes([i]))
        else:
            parts.append(record_json(dataset.record(i), broken=broken).encode("ascii"))
    return b",".join(parts)


# -- parameters --------------------------------------------------------------------------


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise _BadParam(f"invalid {name} {text!r}: expected a whole number >= 1")
    return int(text)


def _date_param(query: dict[str, str], name: str) -> date | None:
    text = query.get(name)
    if not text:
        return None
    try:
        if not _DATE_RE.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise _BadParam(f"invalid {name} {text!r}: expected YYYY-MM-DD") from None


def _date_range(query: dict[str, str]) -> tuple[date | None, date | None]:
    start, end = _date_param(query, "start_date"), _date_param(query, "end_date")
    if start and end and start > end:
        raise _BadParam("start_date is after end_date")
    return start, end


def _authorised(header: str | None, expected: str = DEMO_KEY) -> bool:
    if not header:
        return False
    scheme, _, key = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(key.strip().encode(), expected.encode())


# -- starting it -------------------------------------------------------------------------


@lru_cache(maxsize=1)
def default_dataset() -> Dataset:
    """The default data, generated once per process: tests start many servers."""
    return generate_dataset()


def make_server(
    host: str = "127.0.0.1",
    port: int = 0,
    dataset: Dataset | None = None,
    faults: Faults | None = None,
    api: str = "legacy",
    *,
    as_of: datetime | None = None,
    key: str = DEMO_KEY,
) -> SandboxServer:
    """A bound, not yet serving sandbox; port 0 lets the OS pick a free port.

    ``api``: which generation to serve, "legacy", "current" or "both". ``as_of``: serve the data
    as the account stood at that instant (:func:`.history.as_of`); without it, the dataset
    exactly as generated.
    """
    served = default_dataset() if dataset is None else dataset
    if as_of is not None:
        served = history.as_of(served, as_of)
    return SandboxServer((host, port), served, Faults() if faults is None else faults, api, key)


@contextmanager
def serve_in_thread(
    dataset: Dataset | None = None,
    faults: Faults | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api: str = "legacy",
    as_of: datetime | None = None,
    key: str = DEMO_KEY,
) -> Iterator[SandboxServer]:
    """Serve from a daemon thread for the duration of a ``with`` block; yields the server.
    ``key``: the one API key it accepts (default: the demo key)."""
    server = make_server(host, port, dataset, faults, api, as_of=as_of, key=key)
    thread = threading.Thread(target=server.serve_forever, name="wavespeed-sandbox", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run(
    host: str = "127.0.0.1",
    port: int = 8765,
    dataset: Dataset | None = None,
    faults: Faults | None = None,
    api: str = "legacy",
    *,
    as_of: datetime | None = None,
) -> None:
    """Serve in the foreground until Ctrl-C, after printing the URL and the demo key."""
    server = make_server(host, port, dataset, faults, api, as_of=as_of)
    print(f"WaveSpeedAI sandbox serving at {server.url} (API: {api})", flush=True)
    if as_of is not None:
        print(f"the account as it stood at {as_of.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC", flush=True)
    print(f"demo API key: {DEMO_KEY}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
