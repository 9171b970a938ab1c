"""manifest.json: what the pack holds, where it came from, and a checksum of every file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..models import Report, RollForward
from ..money import format_micros

MANIFEST_NAME = "manifest.json"


def _instant(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path, folder: Path) -> dict[str, Any]:
    return {"name": path.relative_to(folder).as_posix(), "size": path.stat().st_size, "sha256": sha256_of(path)}


def pack_problem(folder: Path, manifest_sha256: str) -> str | None:
    """Why the pack in ``folder`` no longer is what was recorded (its manifest's sha256), or None.

    Checks the manifest itself, then every file it lists (size and sha256), naming the first
    file that differs or is missing.
    """
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return f"{manifest} is missing"
    if sha256_of(manifest) != manifest_sha256:
        return f"{manifest} was changed since the export"
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        return f"{manifest} cannot be read"
    for entry in listed:
        path = folder / entry["name"]
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
            return f"{path} was changed since the export"
    return None


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
            {"type": r.type, "status": r.status, "count": int(r.count)}
            for r in report.status_counts.itertuples(index=False)
        ],
        "totals": [
            {"currency": r.currency, "type": r.type, "count": int(r.count), "amount": format_micros(r.amount_micros)}
            for r in report.totals.itertuples(index=False)
        ],
        "journal_entries": len(report.journal),
        "reconciliation": reconciliation,
        "rollforward": [rollforward_json(row) for row in report.rollforward] or None,
        "adjustments": adjustments_json(report),
        "warnings": report.warnings,
        "notes": report.notes,
        "files": [file_entry(path, folder) for path in sorted(files)],
    }


def rollforward_json(row: RollForward) -> dict[str, Any]:
    """One currency's roll-forward, exact decimal strings (None where unknown)."""
    def money(micros: int | None) -> str | None:
        return None if micros is None else format_micros(micros)

    return {
        "currency": row.currency, "opening": money(row.opening_micros), "topups": money(row.topups_micros),
        "usage": money(row.usage_micros), "refunds": money(row.refunds_micros), "other": money(row.other_micros),
        "adjustments": money(row.adjustments_micros), "closing": money(row.closing_micros),
        "opening_source": row.opening_source, "provider_balance": money(row.provider_balance_micros),
        "pending": money(row.pending_micros),
    }


def adjustments_json(report: Report) -> list[dict[str, Any]] | None:
    """Late changes posted in this period: count and total per closed period and currency."""
    if report.adjustments is None:
        return None
    return [
        {"period": str(period), "currency": str(currency), "count": len(part),
         "total": format_micros(int(part["delta_micros"].sum()))}
        for (period, currency), part in report.adjustments.groupby(["period", "currency"], sort=True)
    ]


def write_manifest(report: Report, folder: Path, files: list[Path]) -> Path:
    path = folder / MANIFEST_NAME
    text = json.dumps(build_manifest(report, folder, files), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
