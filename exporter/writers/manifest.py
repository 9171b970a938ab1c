"""manifest.json: what the pack holds, where it came from, and a checksum of every file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..models import Report
from ..money import format_micros

MANIFEST_NAME = "manifest.json"


def _instant(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def file_entry(path: Path, folder: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"name": path.relative_to(folder).as_posix(), "size": path.stat().st_size, "sha256": digest.hexdigest()}


def build_manifest(report: Report, folder: Path, files: list[Path]) -> dict[str, Any]:
    window, stats = report.window, report.stats
    reconciliation = None
    if report.reconciliation is not None:
        reconciliation = [
            {"model": r.model, "currency": r.currency, "exported": format_micros(r.exported_micros),
             "provider": format_micros(r.provider_micros), "difference": format_micros(r.difference_micros),
             "status": r.status}
            for r in report.reconciliation.itertuples(index=False)
        ]
    return {
        "tool": {"name": "wavespeed-export", "version": report.tool_version},
        "generated_at": _instant(report.generated_at),
        "period": {
            "label": window.label,
            "first_day": window.first_day.isoformat(),
            "last_day": window.last_day.isoformat(),
            "time_zone": window.tz_name,
            "start": _instant(window.start),
            "end": _instant(window.end),
            "rule": "start <= created_at < end",
        },
        "source": {
            "base_url": stats.source,
            "server_total": stats.server_total,
            "unique_fetched": stats.unique_fetched,
            "matches_server_total": stats.server_total == stats.unique_fetched,
            "duplicates_dropped": stats.duplicates_dropped,
            "pages": stats.pages,
            "records_in_period": stats.in_period,
        },
        "counts": [
            {"type": r.type, "status": r.status, "currency": r.currency, "count": int(r.count),
             "amount": format_micros(r.amount_micros)}
            for r in report.status_counts.itertuples(index=False)
        ],
        "totals": [
            {"currency": r.currency, "type": r.type, "count": int(r.count), "amount": format_micros(r.amount_micros)}
            for r in report.totals.itertuples(index=False)
        ],
        "journal_entries": len(report.journal),
        "reconciliation": reconciliation,
        "warnings": report.warnings,
        "files": [file_entry(path, folder) for path in sorted(files)],
    }


def write_manifest(report: Report, folder: Path, files: list[Path]) -> Path:
    path = folder / MANIFEST_NAME
    text = json.dumps(build_manifest(report, folder, files), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
