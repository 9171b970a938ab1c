"""Builders for raw records and reports: each test states only the fields that matter to it."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from datetime import datetime, timezone
from decimal import Decimal
from collections.abc import Mapping
from itertools import count
from pathlib import Path
from typing import Any

import pandas as pd

from exporter import tables
from exporter.archive import SourceContext, write_context
from exporter.books.database import DEFAULT_ACCOUNT, Books
from exporter.books.mapping import AccountMapping
from exporter.books.mapping_toml import load_mapping
from exporter.config import Granularity
from exporter.extract.records import parse_records
from exporter.models import ROLES, ExtractionStats, JournalEntry, RollForward
from exporter.report import Report
from exporter.period import Window, month_window
from exporter.assemble import assemble_report

_ids = count(1)
GENERATED_AT = datetime(2024, 2, 1, 12, 0, tzinfo=timezone.utc)


def record(
    type: str = "usage",
    amount: str = "-0.0025",
    *,
    model: str | None = "wavespeed-ai/flux-dev",
    payment_method: str | None = None,
    status: str = "completed",
    currency: str = "USD",
    created_at: str = "2024-01-15T10:30:00.000Z",
    id: str | None = None,
    api_key_name: str | None = None,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    """A raw record as the API sends it (amount is an exact JSON number); the API key fields only
    when given (as the current API's records carry them)."""
    raw: dict[str, Any] = {
        "id": id or f"txn_{next(_ids):07d}",
        "type": type,
        "amount": Decimal(amount),
        "currency": currency,
        "status": status,
        "created_at": created_at,
    }
    if type == "topup":
        raw["payment_method"] = payment_method or "stripe"
    elif model is not None:
        raw["model"] = model
    if payment_method is not None:
        raw["payment_method"] = payment_method
    if api_key_name is not None:
        raw["api_key_name"] = api_key_name
    if api_key_id is not None:
        raw["api_key_id"] = api_key_id
    return raw


def usage_record(model: str, amount: str, **fields: Any) -> dict[str, Any]:
    return record("usage", amount, model=model, **fields)


def topup_record(amount: str = "100.00", **fields: Any) -> dict[str, Any]:
    return record("topup", amount, model=None, **fields)


def make_report(
    raws: list[dict[str, Any]],
    window: Window | None = None,
    warnings: list[str] | None = None,
    *,
    mapping: AccountMapping | None = None,
    granularity: Granularity = "monthly",
    provider_usage: Any = None,
) -> Report:
    """A Report built from raw records by the same function the pipeline uses (default mapping)."""
    window = window or month_window("2024-01")
    records = parse_records(raws, lambda i: f"item {i}")
    stats = ExtractionStats(
        source="test", server_total=len(records), unique_fetched=len(records),
        duplicates_dropped=0, pages=1, in_period=len(records),
    )
    context = SourceContext(window, stats, provider_usage, warnings or [])
    return assemble_report(records, context, mapping or load_mapping(), granularity, GENERATED_AT)


def with_books(
    report: Report,
    *,
    previous_label: str = "2023-12",
    history: list[tuple[str, int, int]] | None = None,
    previous: dict[str, int] | None = None,
    opening: int | None = None,
    closing: int | None = None,
    currency: str = "USD",
) -> Report:
    """The report as the books complete it (what the pipeline fills in when they hold earlier periods).

    ``history``: (label, usage_micros, refunds_micros) oldest first; ``previous``: model -> the
    previous period's amount_micros (signed like amount_micros; a model not named gets <NA>);
    ``opening``/``closing`` make a roll-forward for ``currency``.
    """
    by_model = report.summaries.by_model.copy()
    if previous is not None:
        before = pd.array([previous.get(m) for m in by_model["model"]], dtype="Int64")
        by_model["previous_amount_micros"] = before
        by_model["change_micros"] = pd.array(by_model["amount_micros"], dtype="Int64") - before
    frame = None
    if history is not None:
        frame = pd.DataFrame(
            [(label, currency, usage, refunds) for label, usage, refunds in history],
            columns=["label", "currency", "usage_micros", "refunds_micros"],
        ).astype({"usage_micros": "int64", "refunds_micros": "int64"})
    rollforward: tuple[RollForward, ...] = ()
    if opening is not None or closing is not None:
        totals = report.summaries.totals[report.summaries.totals["currency"] == currency]
        amount = dict(zip(totals["type"], totals["amount_micros"]))
        rollforward = (RollForward(
            currency, opening, int(amount.get("topup", 0)), int(amount.get("usage", 0)),
            int(amount.get("refund", 0)), 0, 0, closing, f"closing of {previous_label} in the books",
        ),)
    return dataclasses.replace(
        report, summaries=dataclasses.replace(report.summaries, by_model=by_model),
        books=dataclasses.replace(report.books, previous_label=previous_label, history=frame),
        booked=dataclasses.replace(report.booked, rollforward=rollforward),
    )


def table_frame(table: tables.Table, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """A frame of ``table`` built by hand: one tuple per row, in the table's column order, cast to
    each column's kind (text and instants as ISO text, days as "YYYY-MM-DD", ratios as Decimal)."""
    frame = pd.DataFrame(rows, columns=table.names).astype(object)
    casts = {"text": "str", "category": "category", "int64": "int64"}
    for column in table.columns:
        if column.name == "role":  # exactly the Role values, as models.record_roles makes the column
            frame[column.name] = pd.Categorical(frame[column.name], categories=ROLES)
        elif column.kind in casts:
            frame[column.name] = frame[column.name].astype(casts[column.kind])
        elif column.kind == "instant":
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True)
        elif column.kind == "day":
            frame[column.name] = pd.to_datetime(frame[column.name])
    return frame


def with_entries(report: Report, entries: tuple[JournalEntry, ...]) -> Report:
    """The report with these journal entries in place of its own."""
    journal = dataclasses.replace(report.booked.journal, entries=entries)
    return dataclasses.replace(report, booked=dataclasses.replace(report.booked, journal=journal))


def with_warnings(report: Report, warnings: tuple[str, ...]) -> Report:
    """The report whose warnings are exactly ``warnings`` (said by the source, none by the other stages)."""
    return dataclasses.replace(
        report, context=dataclasses.replace(report.context, warnings=warnings),
        summaries=dataclasses.replace(report.summaries, warnings=()),
        booked=dataclasses.replace(report.booked, warnings=()),
        reconciliation=dataclasses.replace(report.reconciliation, warnings=()),
    )
def archive_of(*lines: str) -> bytes:
    """``billings.jsonl.gz`` bytes holding these JSON lines."""
    return gzip.compress("".join(line + "\n" for line in lines).encode("utf-8"), mtime=0)


def source_folder(root: Path, archive: bytes, window: Window | None = None) -> Path:
    """An export's source/ folder for --from-source: a real context.json and the given archive bytes."""
    folder = root / "src" / "source"
    folder.mkdir(parents=True)
    stats = ExtractionStats(source="test", server_total=1, unique_fetched=1, duplicates_dropped=0, pages=1, in_period=1)
    write_context(folder, SourceContext(window or month_window("2024-01"), stats, None, []))
    (folder / "billings.jsonl.gz").write_bytes(archive)
    files = [{"name": f"source/{path.name}", "size": path.stat().st_size,
              "sha256": hashlib.sha256(path.read_bytes()).hexdigest()} for path in sorted(folder.iterdir())]
    (folder.parent / "manifest.json").write_text(json.dumps({"files": files}))  # the pack vouches for these bytes
    return folder


LateChange = tuple[str, Decimal, Decimal, Decimal]  # (change, amount before, amount after, delta)


def expected_late_changes(at_close: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, LateChange]:
    """What the books should post for a closed period, from its records (id -> a record with
    ``status`` and ``amount``) as served at close and as served now: the table of
    docs/booking.md, "Closed periods and late changes" (records gone are not included)."""
    expected: dict[str, LateChange] = {}
    for rid, after in now.items():
        before = at_close.get(rid)
        if before is None:
            if after.status == "completed":
                expected[rid] = ("arrived_late", Decimal(0), after.amount, after.amount)
        elif before.status != "completed" and after.status == "completed":
            expected[rid] = ("completed_late", before.amount, after.amount, after.amount)
        elif before.status == "completed" and after.status != "completed":
            expected[rid] = ("reversed", before.amount, after.amount, -before.amount)
        elif before.status == "completed" and before.amount != after.amount:
            expected[rid] = ("amount_changed", before.amount, after.amount, after.amount - before.amount)
    return expected


def booked_ids(books_path: Path, account: str = DEFAULT_ACCOUNT) -> dict[str, list[str]]:
    """Closed period -> the ids of the records the books hold as booked in it (opened read-only)."""
    with Books(books_path, account, write=False) as books:
        return {p.label: books.snapshot(p.label, ["id"])["id"].tolist() for p in books.periods() if p.closed}


def booked_twice(books_path: Path, account: str = DEFAULT_ACCOUNT) -> list[str]:
    """The ids booked in more than one closed period (none, whatever happened)."""
    seen = [record for ids in booked_ids(books_path, account).values() for record in ids]
    return sorted({record for record in seen if seen.count(record) > 1}) if len(seen) != len(set(seen)) else []

