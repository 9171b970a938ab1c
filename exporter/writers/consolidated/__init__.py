"""The consolidated pack of several accounts' month (docs/profiles.md, "The consolidated month").

Made from the Reports the accounts' exports just wrote (:class:`~exporter.models.Consolidated`),
never from a new fetch; every format of the pack has a consolidated layout here, written only for
the formats every account's pack holds. The manifest lists each account's pack (folder, manifest
checksum, period in its time zone, totals) and the totals summed, with a checksum of every file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...config import RenderOptions
from ...report import Consolidated
from ...pack import file_entry
from ..manifest import _instant, totals_entries
from . import journals
from .figures import totals
from .report_html import write_report
from .tables import write_csv, write_workbook

Layout = Callable[[Consolidated, Path, RenderOptions], list[Path]]

# format -> its consolidated layout (the pack's formats: exporter.writers.WRITERS)
LAYOUTS: dict[str, Layout] = {
    "csv": lambda c, folder, _: write_csv(c, folder),
    "xlsx": lambda c, folder, _: write_workbook(c, folder),
    "quickbooks": journals.write_quickbooks,
    "beancount": lambda c, folder, _: journals.write_beancount(c, folder),
    "xero": journals.write_xero,
    "focus": lambda c, folder, _: journals.write_focus_file(c, folder),
    "html": lambda c, folder, _: write_report(c, folder),
}


def common_formats(each: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The formats every account's pack holds, in the first account's order."""
    return tuple(name for name in each[0] if all(name in formats for formats in each[1:]))


def check(consolidated: Consolidated, formats: tuple[str, ...]) -> None:
    """ConfigError for what the consolidated files cannot carry, before anything is written."""
    journals.check(consolidated, formats)


def write_consolidated(consolidated: Consolidated, folder: Path, formats: tuple[str, ...],
                       options: RenderOptions) -> list[Path]:
    files: list[Path] = []
    for name in formats:
        files += LAYOUTS[name](consolidated, folder, options)
    return files


def build_manifest(consolidated: Consolidated, folder: Path, files: list[Path],
                   formats: tuple[str, ...]) -> dict[str, Any]:
    """What the pack holds: each account's pack and totals, their sum, a checksum of every file."""
    return {
        "tool": {"name": "wavespeed-export", "version": consolidated.tool_version},
        "generated_at": _instant(consolidated.generated_at),
        "period": {"label": consolidated.label},
        "accounts": [
            {"account": pack.name, "folder": str(pack.folder), "manifest_sha256": pack.manifest_sha256,
             "first_day": pack.report.context.window.first_day.isoformat(),
             "last_day": pack.report.context.window.last_day.isoformat(),
             "time_zone": pack.report.context.window.tz_name, "start": _instant(pack.report.context.window.start),
             "end": _instant(pack.report.context.window.end), "journal_entries": len(pack.report.journal),
             "totals": totals_entries(pack.report.summaries.totals)}
            for pack in consolidated.accounts
        ],
        "totals": totals_entries(totals(consolidated)),
        "journal_entries": sum(len(pack.report.journal) for pack in consolidated.accounts),
        "formats": list(formats),
        "files": [file_entry(path, folder) for path in sorted(files)],
    }


__all__ = ["LAYOUTS", "build_manifest", "check", "common_formats", "write_consolidated"]
