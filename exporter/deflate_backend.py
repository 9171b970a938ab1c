"""Which deflate the tool uses: ISA-L's (the ``isal`` package) where it is installed, else zlib's.

Both write and read the same formats (raw deflate, RFC 1951; gzip, RFC 1952), so any inflater
reads what either wrote: the workbook's members are the same bytes whichever compressed them.
ISA-L is the faster by a wide margin on this work (docs/performance.md, "Deflate"): the 1M-row
detail sheet (462 MB of XML) deflates in 0.47 s of CPU at its level 1 against zlib's 2.1 s at
level 1, 55 against 54 MB; an archive of a million records gunzips in 0.07 s against 0.26 s.
``isal`` is a dependency wherever it publishes wheels; elsewhere zlib does the same work slower.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from typing import Any

_isal_zlib: Any
_igzip: Any
try:
    from isal import igzip as _igzip
    from isal import isal_zlib as _isal_zlib
except ImportError:  # installs without isal (tests/test_deflate.py runs this path too)
    _isal_zlib = _igzip = None

ISAL = _isal_zlib is not None
# The fastest level of each: ISA-L's levels run 0-3 (1 compresses about as well as zlib's 1).
FAST_LEVEL = 1
ERRORS: tuple[type[Exception], ...] = (zlib.error, *((_isal_zlib.error,) if _isal_zlib is not None else ()))
"""What a damaged stream raises, whichever inflater read it."""


def raw_compressor(zdict: bytes = b"") -> Any:
    """A raw deflate compressor (``compress``/``flush``, as ``zlib.compressobj``) at the fast level,
    primed with ``zdict`` (the data just before, for back-references across pieces)."""
    module: Any = _isal_zlib if _isal_zlib is not None else zlib
    if zdict:
        return module.compressobj(FAST_LEVEL, zlib.DEFLATED, -15, zdict=zdict)
    return module.compressobj(FAST_LEVEL, zlib.DEFLATED, -15)


def checksum_zips_with_isal() -> None:
    """Have :mod:`zipfile` compute its members' CRC-32 with ISA-L's ``crc32`` (where installed):
    the same checksum, about 7 times faster (0.03 against 0.2 s for the 1M-row detail sheet).

    zipfile calls its module's ``crc32`` for every member it writes or reads; this replaces that
    module attribute for the whole process, so only the console script does it
    (:mod:`exporter.process`), never an import of the library."""
    if _isal_zlib is not None:
        setattr(zipfile, "crc32", _isal_zlib.crc32)


def gunzip_reader(fileobj: Any) -> gzip.GzipFile:
    """``fileobj`` (a binary file, read forward only) decompressed, as ``gzip.GzipFile(mode="rb")`` reads it."""
    if _igzip is not None:
        reader: gzip.GzipFile = _igzip.IGzipFile(filename="", mode="rb", fileobj=fileobj)
        return reader
    return gzip.GzipFile(filename="", mode="rb", fileobj=fileobj)
