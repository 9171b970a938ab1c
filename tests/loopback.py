"""Loopback HTTP servers for tests that need answers the sandbox does not give.

Each serves from a thread on 127.0.0.1 (a free port). Teardown is quick: ``shutdown()`` waits
until ``serve_forever`` next looks at its flag, once per poll; the stdlib's default poll of 0.5 s
made every teardown cost half a second, so these poll every 10 ms (as the sandbox does, 20 ms).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

POLL_SECONDS = 0.01


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing and tolerates a client that has already hung up."""

    def send(self, status: int, body: str | bytes, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a read-timeout test)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` for the ``with`` block; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def record_line(id: str, amount: str = "-1.00", *, model: str = "m/x", type: str = "usage",
                created_at: str = "2024-01-15T10:00:00Z", currency: str = "USD") -> str:
    """A billing record as the JSON text an API would send (``amount`` and ``model`` verbatim)."""
    return (f'{{"id":"{id}","type":"{type}","amount":{amount},"currency":"{currency}","status":"completed",'
            f'"model":"{model}","created_at":"{created_at}"}}')


# the n-th billings request (from 1) -> the records it sees (JSON text, newest first), or an error status
Script = Callable[[int], "list[str] | int"]


@contextmanager
def serve_billings(script: Script, usage: str | None = None) -> Iterator[str]:
    """A billings endpoint paged like the real one, whose records change from request to request;
    ``usage`` is the JSON text of the usage summary's ``data`` (404 without it)."""
    lock = threading.Lock()
    count = [0]

    class Billings(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            if parts.path.endswith("/usage"):
                found = usage is not None
                self.send(200 if found else 404, f'{{"code":{200 if found else 404},"message":"","data":{usage or "null"}}}')
                return
            query = dict(parse_qsl(parts.query))
            with lock:
                count[0] += 1
                seen = script(count[0])
            if isinstance(seen, int):
                self.send(seen, f'{{"code":{seen},"message":"scripted failure","data":null}}')
                return
            page, size = int(query.get("page", 1)), int(query.get("page_size", 100))
            items = ",".join(seen[(page - 1) * size : page * size])
            pagination = f'{{"page":{page},"page_size":{size},"total":{len(seen)}}}'
            self.send(200, f'{{"code":200,"message":"success","data":{{"items":[{items}],"pagination":{pagination}}}}}')

    with serve(Billings) as url:
        yield url
