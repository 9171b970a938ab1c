"""CSV files of the pack: transactions.csv, by_model.csv, by_day.csv, by_key.csv, reconciliation.csv.

UTF-8 without BOM, RFC 4180 quoting, CRLF line ends. Amounts are exact plain decimal text
(never floats, never exponents); every text cell goes through :func:`.sanitize.neutralize`
(control characters replaced, ``'`` before what a spreadsheet would execute; docs/booking.md, "CSV and
spreadsheet safety"). The files contain no timestamps of the run, so the same records always give
the same bytes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..report import Report
from ..money import format_micros
from .base import Writer
from .sanitize import neutralize
from .text_columns import categories, chunked_strings, day_text, instant_text, join_cells, joined_bytes, patched, strings

_CHUNK_ROWS = 16_384  # transactions.csv rows joined per step (~2 MB): a 1M-record render peaks ~25 MiB lower than at 65,536, in the same time
_NEEDS_QUOTES = re.compile('[,"\r\n]')
# What neutralize or the quoting may change (RE2): a control character, a comma or quote, a
# leading formula trigger (TAB CR LF are controls). Any other text is its own cell.
_ID_NEEDS_CARE = r'[\x00-\x1f\x7f-\x9f,"]|^[=+\-@]'
BY_MODEL_HEADER = [
    "model", "currency", "count", "amount", "refunds", "net", "share", "unit_cost", "previous_amount", "change",
]
ADJUSTMENTS_HEADER = [
    "id", "period", "change", "type", "model", "currency", "status_before", "status_after",
    "amount_before", "amount_after", "delta",
]
BY_DAY_HEADER = ["date", "currency", "topups", "usage", "refunds", "other", "net", "count"]
BY_KEY_HEADER = ["api_key_name", "api_key_id", "currency", "count", "usage", "refunds", "net"]
TRANSACTION_HEADER = [
    "id", "created_at", "date", "type", "status", "model", "payment_method", "currency", "amount",
    "api_key_name", "api_key_id",
]
_FREE_TEXT = ["type", "status", "model", "payment_method", "currency"]
_KEY_TEXT = ["api_key_name", "api_key_id"]  # after amount: the columns added last stay last


class CsvWriter(Writer):
    """transactions.csv, by_model.csv, by_day.csv; by_key.csv when records name API keys (README,
    "Spend per API key"); reconciliation.csv when reconciled, and adjustments.csv when the books
    had closed periods to re-check."""

    def write(self, report: Report, folder: Path) -> list[Path]:
        paths = [
            write_transactions(report.summaries.transactions, folder / "transactions.csv"),
            write_rows(folder / "by_model.csv", BY_MODEL_HEADER, by_model_cells(report.summaries.by_model)),
            write_rows(folder / "by_day.csv", BY_DAY_HEADER, by_day_cells(report.summaries.by_day)),
        ]
        if len(report.summaries.by_key):
            paths.append(write_rows(folder / "by_key.csv", BY_KEY_HEADER, (
                [neutralize(str(r.api_key_name)), neutralize(str(r.api_key_id)), neutralize(str(r.currency)), int(r.count),
                 format_micros(r.usage_micros), format_micros(r.refunds_micros), format_micros(r.net_micros)]
                for r in report.summaries.by_key.itertuples(index=False)
            )))
        if report.reconciliation.frame is not None:
            paths.append(write_rows(folder / "reconciliation.csv", ["model", "currency", "exported", "provider", "difference", "status"], (
                [neutralize(r.model), neutralize(r.currency), format_micros(r.exported_micros),
                 format_micros(r.provider_micros), format_micros(r.difference_micros), neutralize(r.status)]
                for r in report.reconciliation.frame.itertuples(index=False)
            )))
        if report.booked.adjustments is not None:
            paths.append(write_rows(folder / "adjustments.csv", ADJUSTMENTS_HEADER, (
                [neutralize(str(r.id)), r.period, r.change, neutralize(str(r.type)), neutralize(str(r.model)),
                 neutralize(str(r.currency)), neutralize(str(r.status_before)), neutralize(str(r.status_after)),
                 format_micros(r.amount_before_micros), format_micros(r.amount_after_micros), format_micros(r.delta_micros)]
                for r in report.booked.adjustments.itertuples(index=False)
            )))
        return paths


def write_transactions(frame: pd.DataFrame, path: Path, accounts: pd.Series | None = None) -> Path:
    """Column by column, in Arrow (:mod:`.text_columns`): each distinct text is neutralised and
    quoted once, the few ids that need it one by one, then the cells are joined row-wise in C.

    The quoting is csv.writer's QUOTE_MINIMAL (a field with , " CR or LF is quoted, "" inside).
    ``accounts`` (one per row): an ``account`` column first (the consolidated pack).
    """
    created = frame["created_at"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
    days = frame["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    ids = chunked_strings(frame["id"])
    texts = {name: categories(frame[name], _text_cell, "") for name in (*_FREE_TEXT, *_KEY_TEXT)}
    if accounts is not None:
        texts["account"] = categories(accounts, _text_cell, "")
    amounts = chunked_strings(frame["amount"])  # validated decimal text: never needs quoting
    header = TRANSACTION_HEADER if accounts is None else ["account", *TRANSACTION_HEADER]
    with open(path, "wb") as handle:
        handle.write((",".join(header) + "\r\n").encode("utf-8"))
        for start in range(0, len(frame), _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, len(frame))
            chunk_ids = strings(ids.slice(start, stop - start))
            cells = {name: cells.take(codes[start:stop]) for name, (codes, cells) in texts.items()}
            cells["id"] = patched(chunk_ids, chunk_ids, pc.match_substring_regex(chunk_ids, _ID_NEEDS_CARE), _text_cell)
            cells["created_at"] = instant_text(created[start:stop])
            cells["date"] = day_text(days[start:stop])
            cells["amount"] = strings(amounts.slice(start, stop - start))
            parts: list[pa.Array | str] = []
            for name in header:
                parts += [cells[name], ","]
            parts[-1] = "\r\n"
            handle.write(joined_bytes(join_cells(parts)))
    return path


def by_model_rows(by_model: pd.DataFrame) -> list[dict[str, object]]:
    """by_model as the CSV's columns (:data:`BY_MODEL_HEADER`), amounts as exact text;
    previous_amount and change are None unless the books hold the previous period."""
    compared = "previous_amount_micros" in by_model.columns
    return [
        {"model": str(r.model), "currency": str(r.currency), "count": int(r.count),
         "amount": format_micros(r.amount_micros), "refunds": format_micros(r.refunds_micros),
         "net": format_micros(r.net_micros), "share": str(r.share), "unit_cost": str(r.unit_cost),
         "previous_amount": format_micros(r.previous_amount_micros) if compared else None,
         "change": format_micros(r.change_micros) if compared else None}
        for r in by_model.itertuples(index=False)
    ]


def by_model_cells(by_model: pd.DataFrame) -> Iterator[list[object]]:
    """by_model.csv's rows (:data:`BY_MODEL_HEADER`), text neutralised."""
    for row in by_model_rows(by_model):
        yield [neutralize(str(row["model"])), neutralize(str(row["currency"])), *list(row.values())[2:]]


def by_day_cells(by_day: pd.DataFrame) -> Iterator[list[object]]:
    """by_day.csv's rows (:data:`BY_DAY_HEADER`)."""
    for r in by_day.itertuples(index=False):
        yield [r.date.strftime("%Y-%m-%d"), neutralize(r.currency), format_micros(r.topups_micros),
               format_micros(r.usage_micros), format_micros(r.refunds_micros), format_micros(r.other_micros),
               format_micros(r.net_micros), r.count]


def _text_cell(text: str) -> str:
    return _csv_field(neutralize(text))


def _csv_field(text: str) -> str:
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path
