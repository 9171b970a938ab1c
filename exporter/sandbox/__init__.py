"""Built-in fake of the WaveSpeedAI account API, for the quickstart, the tests and benchmarks.

Stdlib only and importing nothing from the rest of ``exporter``: it plays the remote side.
Who serves what: :mod:`.data` generates the records; :mod:`.server` routes requests and serves
the legacy generation (``GET /api/v3/account/...``); :mod:`.current` serves the current one
(``POST /api/v3/billings/search``, ``POST /api/v3/scheduler/billings/query``,
``GET /api/v3/balance``, ``POST /api/v3/user/usage_stats``) from the same records;
:mod:`.wire` holds the envelope they share. ``api="legacy"`` (the default), ``"current"`` or
``"both"`` picks what a server answers; the other generation's paths answer 404.

>>> with serve_in_thread() as server:          # doctest: +SKIP
...     requests.get(server.url + "/api/v3/account/balance",
...                  headers={"Authorization": f"Bearer {DEMO_KEY}"})
"""

from __future__ import annotations

from .data import DEMO_KEY, Dataset, ModelUsage, Record, generate_dataset
from .server import (
    Faults,
    LoggedRequest,
    SandboxServer,
    make_server,
    run,
    serve_in_thread,
)

__all__ = [
    "DEMO_KEY",
    "Dataset",
    "Faults",
    "LoggedRequest",
    "ModelUsage",
    "Record",
    "SandboxServer",
    "generate_dataset",
    "make_server",
    "run",
    "serve_in_thread",
]
