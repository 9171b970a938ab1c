"""The consolidated month: ``<out>/consolidated/<label>/``, the accounts' packs of one period side
by side, made from the Reports their exports just wrote (never fetched again), all or nothing
(docs/profiles.md, "The consolidated month").

Each account's pack is checked against its manifest first (the consolidated files must tie to
the packs on disk); the files are written in a staging folder under the consolidated period's
lock and replace the previous consolidated pack only once complete, as an account's pack does
(:mod:`exporter.outdir`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import RenderOptions
from .errors import ConfigError, DataError, OutputError, os_reason
from .report import AccountPack, Consolidated
from .outdir import pack_folder, period_lock, staging
from .pipeline import ExportResult
from .writers.consolidated import (
    build_manifest,
    check,
    common_formats,
    write_consolidated,
)
from .pack import PreviousPack, describe_pack, pack_problem
from .writers.manifest import write_manifest_json

CONSOLIDATED = "consolidated"  # <out>/consolidated/: no profile may take the name (exporter.cli_profiles)


@dataclass(frozen=True)
class ConsolidatedResult:
    folder: Path
    files: list[Path]
    consolidated: Consolidated
    formats: tuple[str, ...]
    replaced: PreviousPack | None = None


def account_pack(name: str, result: ExportResult) -> AccountPack:
    """An account's just-written pack, as the consolidated pack takes it."""
    return AccountPack(name, result.report, result.folder, result.manifest_sha256)


def consolidate(outs: list[Path], packs: list[AccountPack], formats_each: list[tuple[str, ...]],
                options: RenderOptions, lock_timeout: float = 0.0) -> ConsolidatedResult:
    """Write ``<out>/consolidated/<label>/`` from every account's pack (all of them succeeded).

    ``outs`` and ``formats_each``: each account's output folder (one for all, else no
    consolidated pack) and formats (the consolidated pack holds those every account's holds).
    """
    if len(set(outs)) != 1:
        raise ConfigError(f"no consolidated pack: the accounts write to different output folders "
                          f"({', '.join(sorted(map(str, set(outs))))}); give them one")
    labels = sorted({pack.report.context.window.label for pack in packs})
    if len(labels) != 1:
        raise ConfigError(f"no consolidated pack: the accounts exported different periods ({', '.join(labels)})")
    for pack in packs:
        problem = pack_problem(pack.folder, pack.manifest_sha256)
        if problem:
            raise DataError(f"no consolidated pack: account {pack.name}'s pack changed since its export ({problem})")
    consolidated = Consolidated(labels[0], tuple(packs))
    formats = common_formats(formats_each)
    check(consolidated, formats)
    root = outs[0] / CONSOLIDATED
    target = pack_folder(root, consolidated.label)
    previous = describe_pack(target)
    try:
        with period_lock(root, consolidated.label, lock_timeout), staging(target) as staged:
            files = write_consolidated(consolidated, staged.folder, formats, options)
            manifest = build_manifest(consolidated, staged.folder, files, formats)
            files.append(write_manifest_json(staged.folder, manifest))
            staged.publish()
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {os_reason(exc)}; "
                          "the previous consolidated pack is untouched") from None
    return ConsolidatedResult(target, [target / path.relative_to(staged.folder) for path in files], consolidated,
                              formats, previous)


def not_written(failed: list[str]) -> str:
    """The line said when an account failed: no consolidated pack, the previous one kept."""
    return (f"consolidated pack not written: profile(s) {', '.join(failed)} failed; "
            "a previous consolidated pack is untouched")


__all__ = ["CONSOLIDATED", "ConsolidatedResult", "account_pack", "consolidate", "not_written"]
