"""The HTTP client: one session, bearer auth, timeouts, retries, and the envelope check.

Every request goes through :meth:`BillingClient.request_data` (``get_data`` and ``post_data`` for
short), the one place where ``requests``
errors, HTTP statuses and failure envelopes become :class:`AuthError`, :class:`ApiError` or (for
an answer that is not valid JSON text: NaN, not UTF-8) :class:`DataError`. The key travels only
in the Authorization header, over https (or plain http to loopback, :mod:`.urls`); whatever the
server sends back is cleaned of it first (:mod:`.redact`), so no message, log line or file
contains it. A request has one deadline for its whole answer and a cap on its decoded size
(:mod:`.body`); redirects are followed only within the base URL's origin.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import urlencode, urljoin

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3.exceptions import (ConnectTimeoutError, NewConnectionError, ProtocolError, ProxyError, ReadTimeoutError,
                                SSLError)

from .. import __version__
from ..config import CONNECT_TIMEOUT, DEFAULT_TIMEOUT, RetryPolicy
from ..errors import ApiError, AuthError, DataError
from . import jsonexact
from .body import DeadlineExceeded, read_body
from .redact import Redactor
from .urls import check_base_url, origin

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
_TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                     urllib3.exceptions.HTTPError)

log = logging.getLogger("exporter.api")


class Answer(NamedTuple):
    """A response read whole: status, reason and body already cleaned of the key."""

    status: int
    reason: str
    headers: Any  # case-insensitive mapping
    body: bytes


class BillingClient:
    """Talks to one API base URL with one key. Thread-safe for concurrent page fetches."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, DEFAULT_TIMEOUT),
        pool_size: int = 16,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.origin = origin(self.base_url)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout  # (connect, whole answer) seconds
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"Bearer {api_key}", "Accept": "application/json", "Accept-Encoding": "gzip, deflate",
             "User-Agent": f"wavespeed-export/{__version__}"}
        )
        # The environment (proxy variables, CA bundle) is read once here, not on every request:
        # requests would otherwise scan os.environ and look for ~/.netrc per page (about a
        # millisecond of CPU each, a second per thousand pages); the key goes in the header anyway.
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.trust_env = False
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(pool_size, 1))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._adapter = adapter
        self._pool: Any = None  # the origin's urllib3 connection pool, made at the first request
        self._absolute = False  # whether requests name their whole URL (a plain-http proxy) or only the path
        self._headers = {**self.session.headers}
        self._key = api_key.encode("utf-8")
        self._redact = Redactor(api_key)
        self._waited = 0.0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> BillingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def key_fingerprint(self, salt: str) -> str:
        """HMAC-SHA256 of the API key under ``salt``: tells whether stored pages were fetched with this key."""
        return hmac.new(salt.encode("utf-8"), self._key, "sha256").hexdigest()

    def get_data(self, path: str, params: dict[str, Any]) -> Any:
        """GET ``path`` with query ``params`` and return the envelope's ``data``."""
        return self.request_data("GET", path, params=params)

    def post_data(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` as JSON to ``path`` and return the envelope's ``data``.

        Only for queries (the current API searches by POST): they are safe to repeat, so they
        are retried like a GET.
        """
        return self.request_data("POST", path, body=json.dumps(body, separators=(",", ":")).encode("utf-8"))

    def request_data(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                     body: bytes | None = None) -> Any:
        """One call's envelope ``data``, retrying transient failures within the run's budget."""
        shown = f"{method} {path}?{urlencode(params)}" if params else f"{method} {path}"
        retry = 0
        while True:
            started = time.monotonic()
            try:
                answer = self._fetch(method, path, params, body, started + self.timeout[1])
            except DeadlineExceeded:
                cause, status, retry_after = f"no complete answer within {self.timeout[1]:g} s", None, None
            except _TRANSIENT_ERRORS as exc:
                cause, status, retry_after = type(exc).__name__, None, None
            except requests.RequestException as exc:
                raise ApiError(f"cannot request {path}: {type(exc).__name__}") from None
            else:
                log.info("%s -> %s (%.0f ms)", shown, answer.status, (time.monotonic() - started) * 1000)
                if answer.status not in RETRY_STATUSES:
                    return self._unwrap(answer, path)
                cause, status = _failure_text(answer, self._redact), answer.status
                retry_after = _retry_after(answer.headers.get("Retry-After"))
            retry += 1
            wait = self.retry.delay(retry - 1, retry_after)
            if retry >= self.retry.attempts or not self._reserve_wait(wait):
                tries = f"{retry} attempt{'s' if retry > 1 else ''}"
                raise ApiError(f"{path} failed after {tries}: {cause}", status=status)
            log.warning("%s: %s; retrying in %.2f s", shown, cause, wait)
            time.sleep(wait)

    def _fetch(self, method: str, path: str, params: dict[str, Any] | None, body: bytes | None,
               deadline: float) -> Answer:
        """One request, same-origin redirects followed, the body read within ``deadline``.

        A redirected POST keeps its method and body only on 307/308 (as HTTP says); on 301/302/303
        it would become a GET without its query, so that is refused.
        """
        url = requote_uri(self.base_url + path + (f"?{urlencode(params)}" if params else ""))
        headers = {**self._headers, "Content-Type": "application/json"} if body is not None else self._headers
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                response = self._send(method, url, body, headers)
            except requests.RequestException:
                raise
            except ValueError:  # a redirect's location that http.client cannot send
                raise ApiError(f"{path} redirected to a location that cannot be requested") from None
            complete = False
            try:
                location = response.headers.get("Location")
                if location is not None and response.status in REDIRECT_STATUSES:
                    try:
                        url = requote_uri(urljoin(url, location))
                    except ValueError:
                        raise ApiError(f"{path} redirected to an invalid location") from None
                    target = origin(url)
                    if target != self.origin:
                        where = f"{target[0]}://{target[1]}:{target[2]}" if target else "a non-http location"
                        raise ApiError(f"{path} redirected to another origin ({_clip(self._redact.text(where), 80)}): refusing to follow")
                    if body is not None and response.status not in (307, 308):
                        raise ApiError(f"{path} redirected a POST with {response.status}: refusing to re-send it as a GET")
                    continue
                try:
                    content = read_body(response, response.headers.get("Content-Encoding"), deadline, self.timeout[1])
                except ApiError as exc:
                    raise ApiError(f"{path}: {exc}", status=response.status) from None
                complete = True
                return Answer(response.status, self._redact.text(response.reason or ""), response.headers,
                              self._redact.body(content))
            finally:
                if complete:
                    response.release_conn()  # read to the end: the connection can serve the next request
                else:
                    response.close()
        raise ApiError(f"{path} redirected more than {MAX_REDIRECTS} times")

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Any:
        """One request on the origin's pool, its answer not yet read (a urllib3 response).

        The pool is the one ``requests`` makes for the session (its proxy, CA bundle and
        connection limits), asked once: a page then costs a third of the CPU it costs through
        ``Session.request`` (docs/api.md, "Client"). Errors are raised as the ``requests``
        exceptions they have always been reported as (ConnectionError, ReadTimeout, SSLError, ...).
        """
        try:
            if self._pool is None:
                self._connect()
            target = url if self._absolute else _path_of(url)
            return self._pool.urlopen(method, target, body=body, headers=headers, redirect=False,
                                      assert_same_host=False, preload_content=False, decode_content=False,
                                      retries=False, timeout=urllib3.Timeout(connect=self.timeout[0], read=self.timeout[1]))
        except (ConnectTimeoutError, ReadTimeoutError, SSLError, ProxyError, ProtocolError, OSError) as exc:
            raise _as_requests_error(exc) from None

    def _connect(self) -> None:
        with self._lock:
            if self._pool is not None:
                return
            prepared = requests.Request("GET", self.base_url + "/").prepare()
            verify, proxies = self.session.verify, self.session.proxies
            try:
                pool = self._adapter.get_connection_with_tls_context(prepared, verify, proxies=proxies)
            except urllib3.exceptions.LocationValueError as exc:
                raise requests.exceptions.InvalidURL(exc) from None
            self._adapter.cert_verify(pool, self.base_url, verify, None)
            self._absolute = not self._adapter.request_url(prepared, proxies).startswith("/")
            self._pool = pool

    def _unwrap(self, answer: Answer, path: str) -> Any:
        if answer.status in (401, 403):
            raise AuthError(f"the API rejected the key ({answer.status} on {path}); check [[api_key]] or WAVESPEED_API_KEY")
        if answer.status >= 400:
            raise ApiError(f"{path} answered {_failure_text(answer, self._redact)}", status=answer.status)
        try:
            body = jsonexact.loads(answer.body)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path} answered {answer.status} with text that is not UTF-8 (byte {exc.start})") from None
        except jsonexact.NotFiniteError as exc:
            raise DataError(f"{path} answered {answer.status} with JSON holding {exc}") from None
        except ValueError:
            raise ApiError(f"{path} answered {answer.status} with a body that is not JSON") from None
        if self._redact.needs_decoded_pass(answer.body):
            body = self._redact.value(body)
        if not isinstance(body, dict) or "code" not in body:
            raise ApiError(f"{path} answered JSON without the code/message/data envelope")
        code = _clip(body.get("code"), 20)
        if code in ("401", "403"):
            raise AuthError(f"the API rejected the key (code {code} on {path}); check [[api_key]] or WAVESPEED_API_KEY")
        if code != "200":
            raise ApiError(f"{path} answered code {code}: {_clip(self._redact.text(str(body.get('message'))))}", status=answer.status)
        return body.get("data")

    def _reserve_wait(self, wait: float) -> bool:
        """Charge ``wait`` to the run's total waiting budget; False once it is spent."""
        with self._lock:
            if self._waited + wait > self.retry.max_wait:
                return False
            self._waited += wait
            return True


def _failure_text(answer: Answer, redact: Redactor) -> str:
    """'502 Bad Gateway (HTML page)' or '429: too many requests' — one line, the server's (cleaned) words."""
    status = _clip(f"{answer.status} {answer.reason}".strip(), 80)
    try:
        body = jsonexact.loads(answer.body)
    except ValueError:
        kind = "HTML page" if b"<html" in answer.body[:500].lower() else "non-JSON body"
        return f"{status} ({kind})"
    message = body.get("message") if isinstance(body, dict) else None
    return f"{status}: {_clip(redact.text(str(message)))}" if message else status


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (``"3"``) or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value) if len(value) < 10 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _clip(message: Any, limit: int = 200) -> str:
    """The server's words on one line, at most ``limit`` characters, writable as UTF-8."""
    text = " ".join(str(message).split()).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _path_of(url: str) -> str:
    """The request target of ``url`` (path and query), as sent to the server itself."""
    rest = url[url.index("//") + 2:]
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def _as_requests_error(exc: Exception) -> requests.RequestException:
    """A urllib3 (or socket) failure as the ``requests`` exception it is reported as."""
    if isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):
        return requests.ConnectTimeout(exc)
    if isinstance(exc, ReadTimeoutError):
        return requests.ReadTimeout(exc)
    if isinstance(exc, SSLError):
        return requests.exceptions.SSLError(exc)
    if isinstance(exc, ProxyError):
        return requests.exceptions.ProxyError(exc)
    return requests.ConnectionError(exc)
