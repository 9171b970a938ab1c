"""The base every format writer shares (the registry is in :mod:`exporter.writers`)."""

from __future__ import annotations

from pathlib import Path

from ..books.mapping import AccountMapping
from ..config import RenderOptions
from ..models import Report


class Writer:
    """Lays out a finished Report as files; ``write`` returns the paths it wrote."""

    def __init__(self, options: RenderOptions | None = None) -> None:
        self.options = options or RenderOptions()

    @staticmethod
    def check_mapping(mapping: AccountMapping) -> None:
        """Raise ConfigError when this format cannot carry a name of the mapping (default: any can)."""

    def write(self, report: Report, folder: Path) -> list[Path]:
        raise NotImplementedError
