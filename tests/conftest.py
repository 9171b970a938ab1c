"""Shared fixtures: the sandbox API on 127.0.0.1 (a free port), one per test that needs faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.sandbox import DEMO_KEY, SandboxServer, serve_in_thread


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A fresh sandbox server with the default data set; tests may switch its faults."""
    with serve_in_thread() as server:
        yield server


@pytest.fixture
def server(sandbox: SandboxServer) -> SandboxServer:
    """The same sandbox, under the name most end-to-end tests give it."""
    return sandbox


@pytest.fixture
def api_args(sandbox: SandboxServer) -> list[str]:
    """CLI arguments that point a command at the sandbox, with quick retries."""
    return ["--base-url", sandbox.url, "--api-key", DEMO_KEY, "--backoff", "0.01", "--quiet"]
