"""Writers turn a finished :class:`~exporter.models.Report` into files in a folder.

Every writer has ``write(report, folder) -> list[Path]`` and returns the files it wrote. The
built-in formats are listed once, here; ``--format`` choices come from this table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..accounts import AccountMapping
from ..models import Report


class Writer(Protocol):
    def write(self, report: Report, folder: Path) -> list[Path]: ...


DEFAULT_FORMATS = ("csv", "xlsx", "quickbooks")
FORMATS = (*DEFAULT_FORMATS, "beancount")


def make_writer(name: str, *, iif_lists: bool = False, accounts: AccountMapping | None = None) -> Writer:
    """The writer for a format name; ``accounts`` is the mapping the journal was built with."""
    if name == "csv":
        from .csv_files import CsvWriter

        return CsvWriter()
    if name == "xlsx":
        from .excel import ExcelWriter

        return ExcelWriter()
    if name == "quickbooks":
        from .quickbooks import QuickBooksWriter

        return QuickBooksWriter(iif_lists=iif_lists, accounts=accounts)
    if name == "beancount":
        from .beancount import BeancountWriter

        return BeancountWriter(accounts=accounts)
    raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
