"""Writers lay out a finished :class:`~exporter.report.Report` as files in a folder.

Every format is one module here and one line in :data:`WRITERS`; ``--format`` choices come from
this table. A writer is a :class:`~.base.Writer`: it takes the
:class:`~exporter.config.RenderOptions`, has ``write(report, folder) -> list[Path]`` (the files
it wrote), and may refuse a mapping it cannot carry in ``check_mapping`` (called before anything
is fetched). Writers that lay out the journal declare it (``journal = True``: ``--granularity``
and the one-booking-path test follow that) and call :func:`exporter.books.journal.check_entries` first. Modules are imported when a format is
used, so a CSV-only export never loads openpyxl.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..books.mapping import AccountMapping
from ..config import DEFAULT_FORMATS, RenderOptions
from ..pack import sha256_of
from ..report import Report
from .base import Writer

# format name -> (module in this package, class)
WRITERS: dict[str, tuple[str, str]] = {
    "csv": ("csv_files", "CsvWriter"),
    "xlsx": ("excel", "ExcelWriter"),
    "quickbooks": ("quickbooks", "QuickBooksWriter"),
    "beancount": ("beancount", "BeancountWriter"),
    "xero": ("xero", "XeroWriter"),
    "focus": ("focus", "FocusWriter"),
    "html": ("html_report", "HtmlReportWriter"),
}
FORMATS = tuple(WRITERS)
assert set(DEFAULT_FORMATS) <= set(FORMATS)


def writer_class(name: str) -> type[Writer]:
    """The writer class of a format name."""
    try:
        module, cls = WRITERS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None
    writer: type[Writer] = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return writer


def journal_formats(formats: tuple[str, ...] = FORMATS) -> tuple[str, ...]:
    """Those of ``formats`` whose writer lays out the journal (``Writer.journal``), in order."""
    return tuple(name for name in formats if writer_class(name).journal)


def check_mapping(formats: tuple[str, ...], mapping: AccountMapping) -> None:
    """Every chosen format can carry every name of the mapping (ConfigError otherwise)."""
    for name in formats:
        writer_class(name).check_mapping(mapping)


# Writers that run beside the others, on a thread of their own: the workbook's time is mostly
# zlib and Arrow kernels, which release the GIL, so the second core writes the rest meanwhile.
_BESIDE = ("xlsx",)
T = TypeVar("T")


def write_formats(report: Report, folder: Path, formats: tuple[str, ...], options: RenderOptions,
                  meanwhile: Callable[[], T]) -> tuple[dict[Path, str], T]:
    """Every chosen format into ``folder``: each file written, in format order, with its sha256
    (for the manifest), and what ``meanwhile`` returned.

    A format's files are hashed on the thread that wrote them, as soon as they are written, while
    the other writers still write: the hashing is not left to run alone at the end (a million
    records make ~160 MB of files). ``meanwhile`` runs on this thread once its own writers are
    done, while the workbook is still being written beside: the second core stays busy, and the
    work's memory is not added to every writer's at once."""
    def write(name: str) -> dict[Path, str]:
        return {path: sha256_of(path) for path in writer_class(name)(options).write(report, folder)}

    with ThreadPoolExecutor(max_workers=1) as pool:
        beside = {name: pool.submit(write, name) for name in formats if name in _BESIDE}
        written = {name: write(name) for name in formats if name not in beside}
        result = meanwhile()
        written.update((name, future.result()) for name, future in beside.items())
    return {path: digest for name in formats for path, digest in written[name].items()}, result


__all__ = ["FORMATS", "WRITERS", "Writer", "check_mapping", "journal_formats", "write_formats", "writer_class"]
