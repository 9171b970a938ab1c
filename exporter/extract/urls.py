"""Which API URLs the client talks to: https anywhere, plain http only on this machine.

The key travels in a header; over plain http anyone on the path reads it, so ``http://`` is
refused unless the host is loopback (127.0.0.0/8, ::1, ``localhost``), where the sandbox and
the tests run. Redirects must stay on the base URL's origin (see :mod:`.client`).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..errors import ConfigError

Origin = tuple[str, str, int]  # (scheme, host, port)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash, or ConfigError naming why it is refused."""
    try:
        parts = urlsplit(url)
        scheme, host, _port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        raise ConfigError("[[base_url]] is not a valid URL") from None
    if scheme not in _DEFAULT_PORTS or not host:
        raise ConfigError(f"[[base_url]] must be an https:// URL with a host, got {url[:80]!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("[[base_url]] must not carry a user name or password (the key goes in WAVESPEED_API_KEY)")
    if scheme == "http" and not is_loopback(host):
        raise ConfigError(f"[[base_url]] http://{host}: plain http would send the API key unencrypted; "
                          "use https (http is accepted only for loopback hosts)")
    return url.rstrip("/")


def origin(url: str) -> Origin | None:
    """(scheme, host, port) of ``url``; None when it has none (not an absolute http(s) URL)."""
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
