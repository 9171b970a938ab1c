"""The HTTP client: one session, bearer auth, timeouts, retries, and the envelope check.

Every request goes through :meth:`BillingClient.get_data`, the one place where ``requests``
errors, HTTP statuses and failure envelopes become :class:`AuthError` or :class:`ApiError`.
The key travels only in the Authorization header; no message or log line contains it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter

from .. import __version__
from ..config import CONNECT_TIMEOUT, DEFAULT_TIMEOUT, RetryPolicy
from ..errors import ApiError, AuthError
from . import jsonexact

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)

log = logging.getLogger("exporter.api")


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
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"Bearer {api_key}", "Accept": "application/json",
             "User-Agent": f"wavespeed-export/{__version__}"}
        )
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(pool_size, 1))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._waited = 0.0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> BillingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_data(self, path: str, params: dict[str, Any]) -> Any:
        """GET ``path`` and return the envelope's ``data``, retrying transient failures."""
        shown = f"{path}?{urlencode(params)}" if params else path
        retry = 0
        while True:
            started = time.monotonic()
            try:
                response = self.session.get(self.base_url + path, params=params, timeout=self.timeout)
            except _TRANSIENT_ERRORS as exc:
                cause, status, retry_after = type(exc).__name__, None, None
            except requests.RequestException as exc:
                raise ApiError(f"cannot request {path}: {type(exc).__name__}") from None
            else:
                log.info("GET %s -> %s (%.0f ms)", shown, response.status_code, (time.monotonic() - started) * 1000)
                if response.status_code not in RETRY_STATUSES:
                    return _unwrap(response, path)
                cause, status = _failure_text(response), response.status_code
                retry_after = _retry_after(response.headers.get("Retry-After"))
            retry += 1
            wait = self.retry.delay(retry - 1, retry_after)
            if retry >= self.retry.attempts or not self._reserve_wait(wait):
                tries = f"{retry} attempt{'s' if retry > 1 else ''}"
                raise ApiError(f"{path} failed after {tries}: {cause}", status=status)
            log.warning("GET %s: %s; retrying in %.2f s", shown, cause, wait)
            time.sleep(wait)

    def _reserve_wait(self, wait: float) -> bool:
        """Charge ``wait`` to the run's total waiting budget; False once it is spent."""
        with self._lock:
            if self._waited + wait > self.retry.max_wait:
                return False
            self._waited += wait
            return True


def _unwrap(response: requests.Response, path: str) -> Any:
    if response.status_code in (401, 403):
        raise AuthError(f"the API rejected the key ({response.status_code} on {path}); check --api-key or WAVESPEED_API_KEY")
    if response.status_code >= 400:
        raise ApiError(f"{path} answered {_failure_text(response)}", status=response.status_code)
    try:
        body = jsonexact.loads(response.content)
    except ValueError:
        raise ApiError(f"{path} answered {response.status_code} with a body that is not JSON") from None
    if not isinstance(body, dict) or "code" not in body:
        raise ApiError(f"{path} answered JSON without the code/message/data envelope")
    code = str(body.get("code"))
    if code in ("401", "403"):
        raise AuthError(f"the API rejected the key (code {code} on {path}); check --api-key or WAVESPEED_API_KEY")
    if code != "200":
        raise ApiError(f"{path} answered code {code}: {_clip(body.get('message'))}", status=response.status_code)
    return body.get("data")


def _failure_text(response: requests.Response) -> str:
    """'502 Bad Gateway (HTML page)' or '429: too many requests' — one line, the server's words."""
    status = f"{response.status_code} {response.reason or ''}".strip()
    try:
        body = jsonexact.loads(response.content)
    except ValueError:
        kind = "HTML page" if b"<html" in response.content[:500].lower() else "non-JSON body"
        return f"{status} ({kind})"
    message = body.get("message") if isinstance(body, dict) else None
    return f"{status}: {_clip(message)}" if message else status


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (``"3"``) or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _clip(message: Any, limit: int = 200) -> str:
    """The server's words on one line, at most ``limit`` characters, writable as UTF-8."""
    text = " ".join(str(message).split()).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"
