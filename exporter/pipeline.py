"""The export, step by step: fetch -> validate -> transform -> book -> write, all or nothing.

Files are written into a temporary folder beside the target and moved into place only when
every file and the manifest are complete; a failure removes the temporary folder and leaves any
previous export of the same period untouched.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import __version__
from .archive import (
    ArchiveWriter,
    SourceContext,
    copy_archive,
    read_archive,
    read_context,
    resolve_source_folder,
    write_context,
)
from .books.journal import build_journal
from .books.mapping import AccountMapping
from .books.mapping_toml import load_mapping
from .books.reconcile import reconcile
from .config import ExportConfig, Granularity
from .errors import ExportError, StrictError
from .extract import BillingClient, Extraction, LineSink, extract, fetch_provider_usage, parse_provider_usage
from .models import Report
from .outdir import clear_leftovers, pack_folder, period_lock
from .period import Window
from .transform import summarize as summarize_records
from .writers import check_mapping, write_formats
from .writers.manifest import write_manifest


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    files: list[Path]
    report: Report


def fetch(config: ExportConfig, sink: LineSink) -> Extraction:
    """Every record of the window from the API; ``sink`` gets each record's JSON text."""
    with _client(config) as client:
        return _extract(client, config, sink)


def summarize(config: ExportConfig) -> Report:
    """The Report of a period without writing anything (the ``summary`` command)."""
    return build(config, load_mapping(config.accounts))


def build(config: ExportConfig, mapping: AccountMapping, source_dir: Path | None = None) -> Report:
    """Records (from the API or an archive) -> a complete Report with journal and reconciliation.

    With ``source_dir`` the records are archived there as they are read, with their context.
    """
    if config.from_source is not None:
        records, context = _read_source(config.from_source, source_dir)
    else:
        records, context = _fetch_live(config, source_dir)
    if source_dir is not None:
        write_context(source_dir, context)
    return assemble_report(records, context, mapping, config.granularity, datetime.now(timezone.utc))


def assemble_report(
    records: pd.DataFrame,
    context: SourceContext,
    mapping: AccountMapping,
    granularity: Granularity,
    generated_at: datetime,
) -> Report:
    """Validated records and their context -> the complete, frozen Report (no I/O)."""
    window = context.window
    summaries = summarize_records(records, window)
    journal = build_journal(summaries.transactions, window, mapping, granularity)
    reconciliation: pd.DataFrame | None = None
    reconcile_warnings: list[str] = []
    if context.provider_usage is not None:
        reconciliation, reconcile_warnings = reconcile(summaries.by_model, parse_provider_usage(context.provider_usage))
    return Report(
        window=window,
        summaries=summaries,
        stats=context.stats,
        mapping=mapping,
        journal=journal.entries,
        generated_at=generated_at,
        tool_version=__version__,
        warnings=(*context.warnings, *summaries.warnings, *journal.warnings, *reconcile_warnings),
        reconciliation=reconciliation,
    )


def run_export(config: ExportConfig) -> ExportResult:
    """Build the report and write the pack into ``<out>/<label>/`` atomically."""
    mapping = load_mapping(config.accounts)  # a bad mapping fails before any request
    check_mapping(config.formats, mapping)
    window = _window(config)
    target = pack_folder(config.out, window.label)
    with period_lock(config.out, window.label, config.lock_timeout), _staging(target) as staging:
        resumable = replace(config, resume_folder=config.out / f".{window.label}.pages")
        report = build(resumable, mapping, staging / "source")
        if config.strict and report.warnings:
            raise StrictError(list(report.warnings))
        files = sorted((staging / "source").iterdir())
        files += write_formats(report, staging, config.formats, config.render)
        files.append(write_manifest(report, staging, files))
    return ExportResult(target, [target / f.relative_to(staging) for f in files], report)


def _window(config: ExportConfig) -> Window:
    """The period: from the options, or the archive's own with --from-source."""
    if config.window is not None:
        return config.window
    assert config.from_source is not None
    return read_context(resolve_source_folder(config.from_source)).window


def _read_source(path: Path, copy_to: Path | None) -> tuple[pd.DataFrame, SourceContext]:
    """The archive's records and context, checked against the pack's manifest.

    With ``copy_to`` the archive is copied (and checked) first and the records are read from the
    copy, so the records exported are exactly the bytes archived with them.
    """
    folder = resolve_source_folder(path)
    context = read_context(folder)
    if copy_to is None:
        return read_archive(folder), context
    return read_archive(copy_archive(folder, copy_to).parent, verify=False), context


def _fetch_live(config: ExportConfig, archive_to: Path | None) -> tuple[pd.DataFrame, SourceContext]:
    assert config.window is not None
    archive = ArchiveWriter(archive_to) if archive_to is not None else None
    try:
        with _client(config) as client:
            extraction = _extract(client, config, archive.write if archive else None)
            usage, usage_warning = fetch_provider_usage(client, config.window) if config.reconcile else (None, None)
    finally:
        if archive is not None:
            archive.close()
    if archive is not None and archive.lines != len(extraction.records):
        # the pages on disk changed while being archived: a bug or a second writer, never bad data
        raise ExportError(f"the archive holds {archive.lines} records but {len(extraction.records)} were exported; nothing written")
    warnings = extraction.warnings + ([usage_warning] if usage_warning else [])
    return extraction.records, SourceContext(config.window, extraction.stats, usage, warnings)


def _extract(client: BillingClient, config: ExportConfig, sink: LineSink | None) -> Extraction:
    assert config.window is not None
    return extract(client, config.window, page_size=config.page_size, concurrency=config.concurrency,
                   progress=config.progress, store_folder=config.resume_folder, sink=sink)


def _client(config: ExportConfig) -> BillingClient:
    return BillingClient(config.base_url, config.api_key, retry=config.retry,
                         timeout=config.timeout, pool_size=config.concurrency)


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` that replaces it only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    clear_leftovers(target.parent, target.name)  # under the period's lock: nothing else owns them
    staging = target.parent / f".{target.name}.writing-{secrets.token_hex(4)}"
    staging.mkdir()  # unlike mkdtemp, keeps the user's umask: the pack is as readable as any file
    try:
        yield staging
        if target.exists():
            retired = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
            retired.mkdir()
            target.rename(retired / target.name)
            try:
                staging.rename(target)
            except OSError:
                (retired / target.name).rename(target)  # put the previous export back
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
