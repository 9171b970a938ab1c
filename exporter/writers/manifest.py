"""manifest.json: what the pack holds, where it came from, and a checksum of every file (reading a
pack back is :mod:`exporter.pack`'s); and the summaries of it that ``--json`` prints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..books.adjustments import late_changes
from ..models import RollForward
from ..report import Report
from .csv_files import by_model_rows
from ..money import format_micros
from ..pack import MANIFEST_NAME, PreviousPack, file_entry


def _instant(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build_manifest(report: Report, folder: Path, files: list[Path], formats: tuple[str, ...] = (),
                   sha256: Mapping[Path, str] | None = None) -> dict[str, Any]:
    """The manifest: amounts signed as in the CSV files (usage negative); ``formats`` the pack
    holds; ``sha256`` the checksums of those ``files`` that were hashed already (the others are hashed here)."""
    window, stats = report.context.window, report.context.stats
    reconciliation = None
    if report.reconciliation.frame is not None:
        reconciliation = [
            {"model": r.model, "currency": r.currency, "exported": format_micros(r.exported_micros),
             "provider": format_micros(r.provider_micros), "difference": format_micros(r.difference_micros),
             "status": r.status}
            for r in report.reconciliation.frame.itertuples(index=False)
        ]
    manifest = {
        "tool": {"name": "wavespeed-export", "version": report.context.tool_version},
        "generated_at": _instant(report.context.generated_at),
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
            "api": stats.api,
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
            for r in report.summaries.status_counts.itertuples(index=False)
        ],
        "totals": totals_entries(report.summaries.totals),
        "journal_entries": len(report.journal),
        "reconciliation": reconciliation,
        "warnings": list(report.warnings),
        "notes": list(report.notes),
    }
    if report.booked.rollforward:
        manifest["rollforward"] = [_rollforward_entry(r) for r in report.booked.rollforward]
    if report.booked.adjustments is not None:
        manifest["adjustments"] = [
            {"period": c.period, "currency": c.currency, "count": c.count, "total": format_micros(c.delta_micros)}
            for c in late_changes(report.booked.adjustments)
        ]
    if report.books.recheck is not None:
        manifest["recheck"] = {"summary": report.books.recheck.text, **report.books.recheck.to_json()}
    manifest["formats"] = list(formats)
    known = sha256 or {}
    manifest["files"] = [file_entry(path, folder, known.get(path)) for path in sorted(files)]
    return manifest


def totals_entries(totals: Any) -> list[dict[str, Any]]:
    """Completed records per currency and type (``Summaries.totals``' columns), amounts signed."""
    return [{"currency": r.currency, "type": r.type, "count": int(r.count), "amount": format_micros(r.amount_micros)}
            for r in totals.itertuples(index=False)]


def _rollforward_entry(r: RollForward) -> dict[str, Any]:
    def amount(micros: int | None) -> str | None:
        return None if micros is None else format_micros(micros)

    return {
        "currency": r.currency, "opening": amount(r.opening_micros), "opening_source": r.opening_source,
        "topups": amount(r.topups_micros), "usage": amount(r.usage_micros), "refunds": amount(r.refunds_micros),
        "other": amount(r.other_micros), "adjustments": amount(r.adjustments_micros), "closing": amount(r.closing_micros),
        "provider_balance": amount(r.provider_balance_micros), "pending": amount(r.pending_micros),
        **({"topups_source": r.topups_source} if r.topups_derived else {}),
    }


def write_manifest_json(folder: Path, manifest: dict[str, Any]) -> Path:
    """``folder``/manifest.json: a pack's manifest, an account's or the consolidated pack's."""
    path = folder / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


# -- the short summary for scripts (--json) and what a re-export replaces ------------------------

SUMMARY_KEYS = ("period", "formats", "counts", "totals", "rollforward", "warnings", "files")


def summary_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's summary: period, formats, counts, totals, roll-forward (when known), warnings, files."""
    return {key: manifest[key] for key in SUMMARY_KEYS if key in manifest}


def export_summary(manifest: dict[str, Any], folder: Path, previous: PreviousPack | None) -> dict[str, Any]:
    """What ``export --json`` prints: the manifest's summary, the pack's folder and what it replaced."""
    replaced = None
    if previous is not None:
        replaced = {"folder": str(previous.folder), "files": previous.files, "generated_at": previous.generated_at}
    return {**summary_of(manifest), "folder": str(folder), "replaced": replaced}


def report_summary(report: Report) -> dict[str, Any]:
    """``summary_of`` a manifest of no files, plus spend per model (``summary --json``); amounts signed."""
    summary = {k: v for k, v in summary_of(build_manifest(report, Path(), [])).items() if k not in ("formats", "files")}
    summary["by_model"] = by_model_rows(report.summaries.by_model)
    return summary
