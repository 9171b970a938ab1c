"""The export, step by step: fetch -> validate -> transform -> book -> write, all or nothing.

Files are written into a temporary folder beside the target. The books database records the
export, and the folder replaces the target, in one transaction: both change or neither does; a
failure removes the temporary folder and leaves any previous export of the period untouched.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import late_changes
from .archive import (
    CLOSED_NAME,
    ArchiveWriter,
    SourceContext,
    copy_archive,
    read_archive,
    read_context,
    resolve_source_folder,
    verified,
    write_context,
)
from .books.database import BOOKS_NAME, DEFAULT_ACCOUNT, Books
from .assemble import assemble_report
from .books.ledger import BooksView, period_snapshot, read_view, record_export
from .books.mapping import AccountMapping
from .books.mapping_toml import load_mapping
from .books.numbering import ACCOUNT_CODES, DEFAULT_CODE
from .books.sources import Source, SourceCheck, check_needed, record_source, source_name, verify
from .config import ApiChoice, ArchiveSource, ExportConfig, LiveSource
from .errors import ApiError, AuthError, ConfigError, DataError, ExportError, OutputError, StrictError, os_reason
from .extract import (
    BadBalanceCurrency,
    Generation,
    Extraction,
    LineSink,
    TooManyRecords,
    extract,
    fetch_balance,
    fetch_provider_usage,
)
from .models import COMPLETED, ProviderBalance
from .money import format_micros
from .outdir import pack_folder, period_lock, staging
from .period import Window, check_started, label_kind, period_not_over
from .topups import TOPUPS_NAME, read_topups
from .writers import check_mapping, write_formats
from .pack import MANIFEST_NAME, PreviousPack, describe_pack, sha256_of
from .report import Report
from .writers.manifest import build_manifest, write_manifest_json

if TYPE_CHECKING:  # the HTTP client loads requests: imported by _client, when the API is called
    from .extract.client import BillingClient


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    files: list[Path]
    report: Report
    manifest: dict[str, Any]  # the pack's manifest.json, as written
    manifest_sha256: str  # and its sha256 (what the books recorded)
    replaced: PreviousPack | None = None  # the pack this export replaced, if there was one
    closed: bool = False  # --close: the period was closed too
    superseded: tuple[str, ...] = ()  # open periods overlapping it, dropped from the books by the close


def fetch(config: ExportConfig, sink: LineSink) -> Extraction:
    """Every record of the window from the API; ``sink`` gets each record's JSON text."""
    _check_started(config)
    with _client(config) as client:
        extraction = _extract(client, config, sink)
    not_over = period_not_over(_live(config).window, config.clock())
    if not_over:
        extraction.warnings.append(not_over)
    return extraction


def summarize(config: ExportConfig) -> Report:
    """The Report of a period without writing anything (the ``summary`` command)."""
    _check_started(config)
    return build(config, load_mapping(config.output.accounts), BooksView())


def build(config: ExportConfig, mapping: AccountMapping, view: BooksView, source_dir: Path | None = None) -> Report:
    """Records (from the API or an archive) -> a complete Report booked against the books' ``view``.

    With ``source_dir`` the records are archived there as they are read, with their context.
    """
    notes: list[str] = []
    if config.archive is not None:
        records, context, closed = read_source(config.archive, source_dir)
        topups_file = _archived_topups(config.archive, source_dir)
    else:
        records, context, closed = _fetch_live(config, view, source_dir, notes)
        topups_file = config.books.topups
        if topups_file is not None and source_dir is not None:  # archived as given, for audit and --from-source
            try:
                topups_file = Path(shutil.copyfile(topups_file, source_dir / TOPUPS_NAME))
            except OSError as exc:
                raise ConfigError(f"[[topups]]: cannot read {config.books.topups}: {os_reason(exc)}") from None
    if source_dir is not None:
        write_context(source_dir, context)
    if not config.output.reconcile:  # --no-reconcile on an archive: the archived summary stays archived
        context = replace(context, provider_usage=None, provider_balance=None)
    topups = read_topups(topups_file, context.window.tz_name) if topups_file is not None else None
    handed = [records]  # the records go on to the report's frame: no reference to them stays here
    del records
    report = assemble_report(handed.pop(), context, mapping, config.output.granularity, config.clock(),
                             view, closed, config.books.opening_balance, topups)
    # the books' name of the account, and what this run found worth a note
    return replace(report, context=replace(report.context, account=config.books.account,
                                           notes=(*notes, *report.context.notes)))


def _archived_topups(source: Path, copy_to: Path | None) -> Path | None:
    """The top-ups file an earlier export archived (checked against its manifest), if it had one."""
    folder = resolve_source_folder(source)
    if not (folder / TOPUPS_NAME).exists():
        return None
    return verified(folder, TOPUPS_NAME) if copy_to is None else copy_archive(folder, copy_to, TOPUPS_NAME)


def run_export(config: ExportConfig) -> ExportResult:
    """Build the report, write the pack into ``<out>/<label>/`` and record it in the books, atomically."""
    mapping = load_mapping(config.output.accounts)  # a bad mapping fails before any request
    check_mapping(config.output.formats, mapping)
    _check_started(config)
    window = _window(config)
    target = pack_folder(config.output.out, window.label)
    previous = describe_pack(target)
    books_path = config.books.path or config.output.out / BOOKS_NAME
    refuse_books_in_packs(config.output.out, books_path)
    view = BooksView(journal_code=DEFAULT_CODE if config.books.account == DEFAULT_ACCOUNT else ACCOUNT_CODES[0])
    unrecorded: str | None = None
    if books_path.exists():  # a failed first run must not leave an empty database behind
        with Books(books_path, config.books.account, write=False) as books:
            books.refuse_closed(window.label, window.start, window.end)
            books.refuse_gap(window.label, window.start, window.end, window.tz_name)
            view = read_view(books, window, config.books.lookback_days)
            if config.archive is None:  # a new source must serve the books' records (docs/booking.md)
                view = replace(view, source_check=check_needed(books, _current_source(config, books.source_salt())))
            unrecorded = unrecorded_pack(books, window.label, target)
    try:
        with period_lock(config.output.out, window.label, config.output.lock_timeout), staging(target) as pack:
            resumable = config if isinstance(config.source, ArchiveSource) else replace(
                config, source=replace(config.source, resume_folder=config.output.out / f".{window.label}.pages"))
            report = build(resumable, mapping, view, pack.folder / "source")
            if unrecorded:
                report = replace(report, context=replace(report.context, notes=(unrecorded, *report.context.notes)))
            if config.output.strict and report.warnings:
                raise StrictError(list(report.warnings))
            files = sorted((pack.folder / "source").iterdir())
            written, snapshot = write_formats(report, pack.folder, config.output.formats, config.output.render,
                                              meanwhile=lambda: period_snapshot(report.summaries, report.booked,
                                                                                report.context.granularity, window))
            files += written
            manifest = build_manifest(report, pack.folder, files, config.output.formats, sha256=written)
            files.append(write_manifest_json(pack.folder, manifest))
            manifest_sha256 = sha256_of(files[-1])
            with Books(books_path, config.books.account) as books, books.transaction():
                books.refuse_closed(window.label, window.start, window.end)  # closed by someone else meanwhile
                books.keep_journal_code(view.journal_code)  # the letter its numbers were made with
                now = config.clock()
                record_export(books, window, report.context.granularity, report.summaries, report.booked,
                              snapshot=snapshot, in_period=int(report.context.stats.in_period),
                              recheck=report.books.recheck, manifest_sha256=manifest_sha256,
                              pack=str(target.absolute()), when=now,
                              basis=view.basis if view.basis is not None else books.basis(window.start))
                if config.archive is None:
                    source = _current_source(config, books.source_salt(), report.context.stats.api)
                    record_source(books, window.label, source)
                superseded = books.close(window.label, now) if config.books.close else []
                pack.publish()
    except OSError as exc:
        # The one translation of output failures: the staging folder, the page store, the archive,
        # every writer and the final rename. Inputs (the archive, the mapping) translate their own
        # read errors, and the HTTP client its network errors, before they get here.
        raise OutputError(f"cannot write {target}: {os_reason(exc)}; nothing was written, a previous export is untouched") from None
    return ExportResult(target, [target / f.relative_to(pack.folder) for f in files], report, manifest, manifest_sha256,
                        previous, closed=config.books.close, superseded=tuple(superseded))


def refuse_books_in_packs(out: Path, books: Path) -> None:
    """ConfigError (exit 2) for books inside a folder exports replace or clear: a pack folder
    ``<out>/<label>/`` or a hidden ``<out>/.<...>`` one (staging, retired packs, the page cache).
    A re-export would delete them with the pack (docs/booking.md, "What the books refuse")."""
    try:
        inside = books.absolute().resolve().relative_to(out.absolute().resolve())
    except ValueError:
        return  # outside <out>
    if len(inside.parts) > 1 and (label_kind(inside.parts[0]) is not None or inside.parts[0].startswith(".")):
        raise ConfigError(f"[[books]] {books} is inside {out / inside.parts[0]}, a folder exports replace: a re-export "
                          f"would delete the books; keep them in {out} (the default) or outside it")


def unrecorded_pack(books: Books, label: str, target: Path) -> str | None:
    """The note for a pack on disk the books did not record: a run killed after publishing it and
    before the books committed (or a pack edited by hand). This export replaces it and records its
    own, so the note is said once."""
    manifest = target / MANIFEST_NAME
    if not manifest.is_file():
        return None
    period = books.period(label)
    if period is None:
        return (f"note: the pack in {target} is not in the books {books.path} (an earlier export was interrupted "
                "before recording it, or it was dropped as a superseded draft): this export replaces it and records its own")
    if sha256_of(manifest) != period.manifest_sha256:
        return (f"note: the pack in {target} is not the one the books {books.path} recorded for {label} (an earlier "
                "export was interrupted between writing the pack and recording it, or the pack was edited): "
                "this export replaces it and records its own")
    return None


def _window(config: ExportConfig) -> Window:
    """The period: the one asked for, or an archive's own."""
    if isinstance(config.source, LiveSource):
        return config.source.window
    return read_context(resolve_source_folder(config.source.path)).window


def _live(config: ExportConfig) -> LiveSource:
    """The source of a run that reads the API (the CLI never asks one of an archive)."""
    if not isinstance(config.source, LiveSource):
        raise ExportError("an archive was given where records are fetched from the API (a bug)")
    return config.source


def _check_started(config: ExportConfig) -> None:
    """A period entirely in the future is a mistake in the options (exit 2, before any request)."""
    if isinstance(config.source, LiveSource):
        check_started(config.source.window, config.clock())


def read_source(path: Path, copy_to: Path | None) -> tuple[pd.DataFrame, SourceContext, pd.DataFrame | None]:
    """An earlier export's records, context and closed-period records (if any), each checked
    against the pack's manifest.

    With ``copy_to`` the archives are copied (and checked) first and the records are read from the
    copy, so the records exported are exactly the bytes archived with them.
    """
    folder = resolve_source_folder(path)
    context = read_context(folder)
    has_closed = (folder / CLOSED_NAME).exists()
    if copy_to is None:
        closed = read_archive(folder, name=CLOSED_NAME) if has_closed else None
        return read_archive(folder, categories=True), context, closed
    closed = read_archive(copy_archive(folder, copy_to, CLOSED_NAME).parent, name=CLOSED_NAME, verify=False) if has_closed else None
    return read_archive(copy_archive(folder, copy_to).parent, verify=False, categories=True), context, closed


def _current_source(config: ExportConfig, salt: str, api: str | None = None) -> Source:
    """This export's source as the books record it (the key only as a salted fingerprint)."""
    with _client(config) as client:
        return Source(source_name(config.api.base_url, config.api.sandbox), client.key_fingerprint(salt), api)


def _check_source(client: BillingClient, config: ExportConfig, check: SourceCheck, view: BooksView,
                  closed: pd.DataFrame | None, api: Generation | ApiChoice) -> str:
    """The reference period's records as the new source serves them, compared with the books: the
    closed-period re-read already holds them when the period is in the lookback, else one fetch."""
    period = check.period
    if closed is not None and any(p.label == period.label for p in view.closed):
        served = closed[(closed["created_at"] >= period.start_utc) & (closed["created_at"] < period.end_utc)]
    else:
        window = Window(period.first_day, period.last_day, period.time_zone, period.label)
        served = extract(client, window, api=api, page_size=config.api.page_size, concurrency=config.api.concurrency).records
    return verify(check, served)


def _fetch_live(
    config: ExportConfig, view: BooksView, archive_to: Path | None, notes: list[str]
) -> tuple[pd.DataFrame, SourceContext, pd.DataFrame | None]:
    window = _live(config).window
    archive = ArchiveWriter(archive_to) if archive_to is not None else None
    closed_archive = ArchiveWriter(archive_to, CLOSED_NAME) if archive_to is not None and view.closed else None
    warnings: list[str] = []
    try:
        with _client(config) as client:
            closed, recheck = None, None
            api: Generation | ApiChoice = config.api.generation  # the first fetch finds the generation; the rest ask it
            if view.closed:  # the closed periods' days whose totals changed (docs/booking.md, "Finding late changes")
                api = late_changes.generation_for(client, config, view, api)
                recheck, note = late_changes.plan(client, config, view, api)
                warnings += [note] if note else []
                closed = late_changes.reread(client, config, view, recheck, api, closed_archive, warnings)
            if view.source_check is not None:  # before the period itself: another account costs little
                notes.append(_check_source(client, config, view.source_check, view,
                                           closed if recheck is not None and recheck.full else None, api))
            extraction = _extract(client, config, archive.write if archive else None, api)
            warnings += extraction.warnings
            api = extraction.api or api
            assert not isinstance(api, str)
            usage, balance = None, None
            if config.output.reconcile:
                usage, usage_warning = fetch_provider_usage(client, window, api.name)
                warnings += [usage_warning] if usage_warning else []
                balance, balance_warning = _provider_balance(client, config, window, api, extraction.after)
                warnings += [balance_warning] if balance_warning else []
    finally:
        for writer in (archive, closed_archive):
            if writer is not None:
                writer.close()
    if archive is not None and archive.lines != len(extraction.records):
        # the pages on disk changed while being archived: a bug or a second writer, never bad data
        raise ExportError(f"the archive holds {archive.lines} records but {len(extraction.records)} were exported; nothing written")
    not_over = period_not_over(window, config.clock())  # archived: it describes these records
    if not_over:
        warnings.append(not_over)
    context = SourceContext(window, extraction.stats, usage, warnings,
                            provider_days_usage=extraction.provider_days_usage, provider_balance=balance, recheck=recheck)
    return extraction.records, context, closed


def _provider_balance(
    client: BillingClient, config: ExportConfig, window: Window, api: Generation, walked: pd.DataFrame
) -> tuple[ProviderBalance | None, str | None]:
    """The provider's balance now and the net of the completed records since the window ended, or
    a warning: ``walked`` holds those the window's own fetch received (its query is padded), one
    ranged fetch the rest (skipped above ``balance_max_records``)."""
    try:
        micros, currency = fetch_balance(client, api.name)
    except (AuthError, BadBalanceCurrency):
        raise
    except (ApiError, DataError) as exc:  # the roll-forward then says its opening is unknown
        return None, f"roll-forward: the provider's balance could not be read ({exc})"
    now = config.clock()
    today = now.astimezone(window.tz).date()
    negative = None
    if micros < 0:  # accepted, as the provider's word, but prepaid credit should not be below zero
        negative = (f"the provider's balance is negative ({format_micros(micros)} {currency}): prepaid credit "
                    "should not be negative; it is used as given, check the account with the provider")
    if window.last_day >= today:  # the period is not over: nothing was created after it yet
        return ProviderBalance(micros, currency, now, 0, 0), negative
    after = Window(window.last_day + timedelta(days=1), today, window.tz_name, "after")
    try:
        fetched = extract(client, after, api=api.continuing(window), page_size=config.api.page_size,
                          concurrency=config.api.concurrency, max_total=config.api.balance_max_records).records
    except TooManyRecords as exc:
        total = exc.total + len(walked)
        skipped = f"{total} records after the period, over --balance-max-records {config.api.balance_max_records}"
        return ProviderBalance(micros, currency, now, None, total, skipped), negative
    records = pd.concat([walked[walked["created_at"] < after.end], fetched], ignore_index=True)
    records = records[~records["id"].duplicated()]  # the two queries do not overlap; a record that moved counts once
    done = records[(records["status"] == COMPLETED) & (records["currency"] == currency)]
    return ProviderBalance(micros, currency, now, int(done["amount_micros"].sum()), len(done)), negative


def _extract(client: BillingClient, config: ExportConfig, sink: LineSink | None,
             api: Generation | ApiChoice | None = None) -> Extraction:
    source = _live(config)
    return extract(client, source.window, api=config.api.generation if api is None else api,
                   page_size=config.api.page_size, concurrency=config.api.concurrency, progress=config.api.progress,
                   store_folder=source.resume_folder, sink=sink)


def _client(config: ExportConfig) -> BillingClient:
    from .extract.client import BillingClient  # requests: loaded only by a run that calls the API

    return BillingClient(config.api.base_url, config.api.api_key, retry=config.api.retry,
                         timeout=config.api.timeout, pool_size=config.api.concurrency)
