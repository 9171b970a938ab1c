"""The base every format writer shares (the registry is in :mod:`exporter.writers`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from ..books.mapping import AccountMapping
from ..config import RenderOptions
from ..models import JournalEntry
from ..report import Report


class Writer:
    """Lays out a finished Report as files; ``write`` returns the paths it wrote.

    ``journal`` declares that the format lays out ``report.journal`` (so it follows
    ``--granularity``, and the one-booking-path test checks it): the registry reads it from here.
    """

    journal: ClassVar[bool] = False

    def __init__(self, options: RenderOptions | None = None) -> None:
        self.options = options or RenderOptions()

    @staticmethod
    def check_mapping(mapping: AccountMapping) -> None:
        """Raise ConfigError when this format cannot carry a name of the mapping (default: any can)."""

    def write(self, report: Report, folder: Path) -> list[Path]:
        raise NotImplementedError


def entries_by_currency(journal: tuple[JournalEntry, ...]) -> list[tuple[str, list[JournalEntry]]]:
    """(file-name suffix, entries) per currency: import files carry no currency, so each gets its
    own files (``_EUR``, ``_USD``) when there are several; one currency (or none) keeps plain names.
    """
    currencies = sorted({entry.currency for entry in journal})
    if len(currencies) <= 1:
        return [("", list(journal))]
    return [(f"_{_file_safe(c)}", [e for e in journal if e.currency == c]) for c in currencies]


def write_files(folder: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    """Write rendered files (all checked before the first is written) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in files:
        path = folder / name
        path.write_bytes(content)
        paths.append(path)
    return paths


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "XXX"
