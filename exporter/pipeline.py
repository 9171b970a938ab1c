"""The export, step by step: fetch -> validate -> transform -> journal -> write, all or nothing.

Files are written into a temporary folder beside the target and moved into place only when
every file and the manifest are complete; a failure removes the temporary folder and leaves any
previous export of the same period untouched.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from . import __version__
from .accounts import AccountMapping, load_accounts
from .api.client import BillingClient, RetryPolicy
from .errors import ApiError, AuthError, StrictError
from .extract import USAGE_PATH, Extraction, LineSink, ProgressCallback, extract
from .journal import build_journal
from .manifest import write_manifest
from .models import Report
from .period import Window
from .reconcile import reconcile
from .source import (
    ARCHIVE_NAME,
    ArchiveWriter,
    SourceContext,
    read_archive,
    read_context,
    resolve_source_folder,
    write_context,
)
from .transform import build_report
from .writers import DEFAULT_FORMATS, make_writer


@dataclass(frozen=True)
class ExportConfig:
    """Everything an export needs; built by the CLI from options and the environment."""

    window: Window | None  # None with from_source: the archive's own window is used
    out: Path = Path("output")
    formats: tuple[str, ...] = DEFAULT_FORMATS
    base_url: str = "https://api.wavespeed.ai"
    api_key: str = field(default="", repr=False)  # never printed, logged or written
    page_size: int = 100
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: tuple[float, float] = (5.0, 60.0)
    accounts: Path | None = None
    granularity: Literal["monthly", "daily"] = "monthly"
    iif_lists: bool = False
    strict: bool = False
    reconcile: bool = True
    from_source: Path | None = None
    resume_folder: Path | None = None  # where pages wait between runs, so an interrupted fetch resumes
    progress: ProgressCallback | None = field(default=None, repr=False, compare=False)


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
    return build(config, load_accounts(config.accounts))


def build(config: ExportConfig, accounts: AccountMapping, source_dir: Path | None = None) -> Report:
    """Records (from the API or an archive) -> a complete Report with journal and reconciliation.

    With ``source_dir`` the records are archived there as they are read, with their context.
    """
    if config.from_source is not None:
        records, context = _read_source(config.from_source, source_dir)
    else:
        records, context = _fetch_live(config, source_dir)
    if source_dir is not None:
        write_context(source_dir, context)

    report = build_report(records, context.window, context.stats, datetime.now(timezone.utc), __version__, context.warnings)
    report.journal, journal_warnings = build_journal(report, accounts, config.granularity)
    report.warnings.extend(journal_warnings)
    if context.provider_usage is not None:
        report.reconciliation, reconcile_warnings = reconcile(report.by_model, context.provider_usage)
        report.warnings.extend(reconcile_warnings)
    return report


def run_export(config: ExportConfig) -> ExportResult:
    """Build the report and write the pack into ``<out>/<label>/`` atomically."""
    accounts = load_accounts(config.accounts)  # a bad mapping fails before any request
    window = _window(config)
    target = config.out / window.label
    with _staging(target) as staging:
        resumable = replace(config, resume_folder=config.out / f".{window.label}.pages")
        report = build(resumable, accounts, staging / "source")
        if config.strict and report.warnings:
            raise StrictError(report.warnings)
        files = sorted((staging / "source").iterdir())
        for name in config.formats:
            files += make_writer(name, iif_lists=config.iif_lists, accounts=accounts).write(report, staging)
        files.append(write_manifest(report, staging, files))
    return ExportResult(target, [target / f.relative_to(staging) for f in files], report)


def _window(config: ExportConfig) -> Window:
    """The period: from the options, or the archive's own with --from-source."""
    if config.window is not None:
        return config.window
    assert config.from_source is not None
    return read_context(resolve_source_folder(config.from_source)).window


def _read_source(path: Path, copy_to: Path | None) -> tuple[pd.DataFrame, SourceContext]:
    folder = resolve_source_folder(path)
    context = read_context(folder)
    records = read_archive(folder)
    if copy_to is not None:
        copy_to.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / ARCHIVE_NAME, copy_to / ARCHIVE_NAME)
    return records, context


def _fetch_live(config: ExportConfig, archive_to: Path | None) -> tuple[pd.DataFrame, SourceContext]:
    assert config.window is not None
    archive = ArchiveWriter(archive_to) if archive_to is not None else None
    try:
        with _client(config) as client:
            extraction = _extract(client, config, archive.write if archive else None)
            usage, usage_warning = _provider_usage(client, config) if config.reconcile else (None, None)
    finally:
        if archive is not None:
            archive.close()
    warnings = extraction.warnings + ([usage_warning] if usage_warning else [])
    return extraction.records, SourceContext(config.window, extraction.stats, usage, warnings)


def _extract(client: BillingClient, config: ExportConfig, sink: LineSink | None) -> Extraction:
    assert config.window is not None
    return extract(client, config.window, page_size=config.page_size, concurrency=config.concurrency,
                   progress=config.progress, store_folder=config.resume_folder, sink=sink)


def _client(config: ExportConfig) -> BillingClient:
    return BillingClient(config.base_url, config.api_key, retry=config.retry,
                         timeout=config.timeout, pool_size=config.concurrency)


def _provider_usage(client: BillingClient, config: ExportConfig) -> tuple[Any, str | None]:
    """The provider's own per-model usage for the period, or a warning if it cannot be had."""
    assert config.window is not None
    params = {"start_date": config.window.first_day.isoformat(), "end_date": config.window.last_day.isoformat()}
    try:
        return client.get_data(USAGE_PATH, params), None
    except AuthError:
        raise
    except ApiError as exc:
        return None, f"reconciliation skipped: the usage summary could not be fetched ({exc})"


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` that replaces it only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
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
