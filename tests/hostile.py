"""Small hostile HTTP servers on 127.0.0.1 that a test scripts answer by answer (never the internet).

``serve(handler)`` runs a server on a free loopback port; ``handler(request)`` returns the
:class:`Reply` for each request. :func:`billing_api` is a handler that plays the billing API over
a list of records (which a test may then break in one place).
"""

from __future__ import annotations

import gzip
import io
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from exporter.extract import jsonexact

BILLINGS = "/api/v3/account/billings"
USAGE = "/api/v3/account/usage"
SEARCH = "/api/v3/billings/search"  # the current generation (docs/api.md)
USAGE_STATS = "/api/v3/user/usage_stats"


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    method: str = "GET"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0.0  # seconds between single bytes of the body (0: all at once)
    reason: str | None = None  # the status line's reason phrase (None: the usual one)


Handler = Callable[[Request], Reply]


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True
    handler: Handler
    requests: list[Request]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up on a trickling answer is expected here


class _Handler(BaseHTTPRequestHandler):
    server: HostileServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self._answer(Request(parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}, dict(self.headers)))

    def do_POST(self) -> None:
        """A JSON body's scalar fields stand in for a query (the current API searches by POST)."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            fields = jsonexact.loads(body)
        except ValueError:
            fields = {}
        query = {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}
        self._answer(Request(urlsplit(self.path).path, query, dict(self.headers), method="POST"))

    def _answer(self, request: Request) -> None:
        self.server.requests.append(request)
        reply = self.server.handler(request)
        self.send_response(reply.status, reply.reason)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(reply.body)), **reply.headers}
        for name, value in headers.items():
            if value is not None:
                self.send_header(name, value)
        self.end_headers()
        if not reply.trickle:
            self.wfile.write(reply.body)
            return
        for byte in reply.body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(reply.trickle)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(handler: Handler) -> Iterator[HostileServer]:
    server = HostileServer(("127.0.0.1", 0), _Handler)
    server.handler, server.requests = handler, []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def envelope(data: Any, code: Any = 200, message: str = "success") -> bytes:
    return jsonexact.dumps({"code": code, "message": message, "data": data}).encode("utf-8")


def json_reply(data: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, envelope(data), headers)


def raw_record(number: int, **fields: Any) -> dict[str, Any]:
    """A valid usage record of 2024-01-15 as the API sends it; ``fields`` replace or add fields."""
    return {"id": f"txn_{number:06d}", "type": "usage", "amount": Decimal("-0.0025"), "currency": "USD",
            "status": "completed", "model": "wavespeed-ai/flux-dev",
            "created_at": f"2024-01-15T10:{number // 60 % 60:02d}:{number % 60:02d}.000Z", **fields}


def billing_api(records: Sequence[Any], page_size: int = 2, usage: Reply | None = None,
                total: int | None = None) -> Handler:
    """The billing API over ``records`` (served ``page_size`` a page; ``total`` overrides the count).

    ``usage`` answers the usage summary (default: a 404, so reconciliation is skipped with a warning).
    """
    def handle(request: Request) -> Reply:
        if request.path in (USAGE, USAGE_STATS):
            return usage or json_reply(None, 404)
        if request.path != BILLINGS:
            return json_reply(None, 404)
        page = int(request.query.get("page", "1"))
        items = list(records[(page - 1) * page_size : page * page_size])
        pagination = {"page": page, "page_size": page_size, "total": len(records) if total is None else total}
        return json_reply({"items": items, "pagination": pagination})

    return handle


def everything_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too), gzip members and xlsx parts opened up."""
    found: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        name = path.relative_to(folder).as_posix()
        found[name] = data
        if name.endswith(".gz"):
            found[name + "!"] = gzip.decompress(data)
        elif name.endswith(".xlsx"):
            with zipfile.ZipFile(io.BytesIO(data)) as book:
                for member in book.namelist():
                    found[f"{name}!{member}"] = book.read(member)
    return found
