"""What the console script sets up for its own process, once, before the command runs.

Every choice here is the process's, not the library's: code that imports :mod:`exporter` keeps
its own garbage collector (and its thresholds), Arrow memory pool and zipfile checksum.
"""

from __future__ import annotations

import gc
import os

import pyarrow as pa

from .deflate_backend import checksum_zips_with_isal


YOUNG_THRESHOLD = 50_000  # allocations between collections of the youngest generation


def prepare() -> None:
    # What is loaded by now (pandas, pyarrow, the tool) lives as long as the process: frozen, no
    # collection scans it again, nor the interpreter's last one at exit (0.18 s of every run, measured).
    gc.freeze()
    # ... and the young objects are collected less often: a render makes few reference cycles, and
    # at Python's default threshold (700 allocations) a 1M-record render ran 278 collections, 0.045 s
    # with every thread waiting on the GIL (docs/performance.md, "Threads")
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
    # Arrow allocates through jemalloc (the C library's malloc where a wheel has no jemalloc): its
    # default, mimalloc, kept a cache of freed memory on each of the render's threads, and a
    # 1M-record render peaked near 516 MiB instead of 450 (docs/performance.md, "Memory").
    # A pool the user named wins.
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(_render_pool())
    # zipfile checksums each member it writes: the 1M-row workbook's 460 MB of XML took 0.2 s of
    # zlib's crc32, and ISA-L's takes 0.03 s (docs/performance.md, "Deflate")
    checksum_zips_with_isal()


def _render_pool() -> pa.MemoryPool:
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # not built into this pyarrow (Windows wheels)
        return pa.system_memory_pool()
