"""manifest.json: what the pack holds, where it came from, and a checksum of every file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..books.adjustments import late_changes
from ..models import Report, RollForward
from .csv_files import by_model_rows
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


def build_manifest(report: Report, folder: Path, files: list[Path], formats: tuple[str, ...] = ()) -> dict[str, Any]:
    """The manifest: amounts signed as in the CSV files (usage negative); ``formats`` the pack holds."""
    window, stats = report.window, report.stats
    reconciliation = None
    if report.reconciliation is not None:
        reconciliation = [
            {"model": r.model, "currency": r.currency, "exported": format_micros(r.exported_micros),
             "provider": format_micros(r.provider_micros), "difference": format_micros(r.difference_micros),
             "status": r.status}
            for r in report.reconciliation.itertuples(index=False)
        ]
    manifest = {
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
            for r in report.status_counts.itertuples(index=False)
        ],
        "totals": totals_entries(report.totals),
        "journal_entries": len(report.journal),
        "reconciliation": reconciliation,
        "warnings": list(report.warnings),
        "notes": list(report.notes),
    }
    if report.rollforward:
        manifest["rollforward"] = [_rollforward_entry(r) for r in report.rollforward]
    if report.adjustments is not None:
        manifest["adjustments"] = [
            {"period": c.period, "currency": c.currency, "count": c.count, "total": format_micros(c.delta_micros)}
            for c in late_changes(report.adjustments)
        ]
    if report.recheck is not None:
        manifest["recheck"] = {"summary": report.recheck.text, **report.recheck.to_json()}
    manifest["formats"] = list(formats)
    manifest["files"] = [file_entry(path, folder) for path in sorted(files)]
    return manifest


def totals_entries(totals: Any) -> list[dict[str, Any]]:
    """Completed records per currency and type (``Report.totals``' columns), amounts signed."""
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


def write_manifest(report: Report, folder: Path, files: list[Path], formats: tuple[str, ...] = ()) -> Path:
    return write_manifest_json(folder, build_manifest(report, folder, files, formats))


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
    summary["by_model"] = by_model_rows(report.by_model)
    return summary


@dataclass(frozen=True)
class PreviousPack:
    """A pack about to be replaced: its folder, how many files it held, when it was generated."""

    folder: Path
    files: int
    generated_at: str | None  # the manifest's generated_at, None when unreadable


def describe_pack(folder: Path) -> PreviousPack | None:
    """What is in ``folder`` now (None if nothing is), read before a re-export replaces it."""
    if not folder.is_dir():
        return None
    files = sum(1 for path in folder.rglob("*") if path.is_file())
    try:
        generated = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))["generated_at"]
    except (OSError, ValueError, KeyError, TypeError):
        generated = None
    return PreviousPack(folder, files, generated if isinstance(generated, str) else None)
