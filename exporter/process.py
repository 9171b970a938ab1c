"""What the console script sets up for its own process, once, before the command runs.

Both choices are the process's, not the library's: code that imports :mod:`exporter` keeps its
own garbage collector and Arrow memory pool.
"""

from __future__ import annotations

import gc
import os

import pyarrow as pa


def prepare() -> None:
    # What is loaded by now (pandas, pyarrow, the tool) lives as long as the process: frozen, no
    # collection scans it again, nor the interpreter's last one at exit (0.18 s of every run, measured).
    gc.freeze()
    # Arrow allocates through jemalloc (the C library's malloc where a wheel has no jemalloc): its
    # default, mimalloc, kept a cache of freed memory on each of the render's threads, and a
    # 1M-record render peaked near 516 MiB instead of 450 (docs/performance.md, "Memory").
    # A pool the user named wins.
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(_render_pool())


def _render_pool() -> pa.MemoryPool:
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # not built into this pyarrow (Windows wheels)
        return pa.system_memory_pool()
