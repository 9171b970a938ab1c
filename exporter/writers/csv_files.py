"""CSV files of the pack: transactions.csv, by_model.csv, by_day.csv, reconciliation.csv.

UTF-8 without BOM, RFC 4180 quoting, CRLF line ends. Amounts are exact plain decimal text
(never floats, never exponents); free text that a spreadsheet would execute is prefixed with
``'`` (see :mod:`.text`). The files contain no timestamps of the run, so the same records
always give the same bytes.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..models import Report
from ..money import format_micros
from .text import FORMULA_TRIGGERS, neutralize

TRANSACTION_HEADER = ["id", "created_at", "date", "type", "status", "model", "payment_method", "currency", "amount"]
_FREE_TEXT = ["type", "status", "model", "payment_method", "currency"]


class CsvWriter:
    def write(self, report: Report, folder: Path) -> list[Path]:
        paths = [
            self._transactions(report.transactions, folder / "transactions.csv"),
            _write_rows(folder / "by_model.csv", ["model", "currency", "count", "amount", "share"], (
                [neutralize(r.model), r.currency, r.count, format_micros(r.amount_micros), str(r.share)]
                for r in report.by_model.itertuples(index=False)
            )),
            _write_rows(folder / "by_day.csv", ["date", "currency", "topups", "usage", "net", "count"], (
                [r.date.strftime("%Y-%m-%d"), r.currency, format_micros(r.topups_micros),
                 format_micros(r.usage_micros), format_micros(r.net_micros), r.count]
                for r in report.by_day.itertuples(index=False)
            )),
        ]
        if report.reconciliation is not None:
            paths.append(_write_rows(folder / "reconciliation.csv", ["model", "currency", "exported", "provider", "difference", "status"], (
                [neutralize(r.model), r.currency, format_micros(r.exported_micros),
                 format_micros(r.provider_micros), format_micros(r.difference_micros), r.status]
                for r in report.reconciliation.itertuples(index=False)
            )))
        return paths

    @staticmethod
    def _transactions(frame: pd.DataFrame, path: Path) -> Path:
        """Vectorised: a million rows are formatted column by column, not row by row."""
        created = frame["created_at"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ms]")
        table = pd.DataFrame(
            {
                "id": _neutralize_column(frame["id"]),
                "created_at": np.char.add(np.datetime_as_string(created, unit="ms"), "Z"),
                "date": np.datetime_as_string(frame["date"].to_numpy().astype("datetime64[D]"), unit="D"),
                **{name: _neutralize_category(frame[name]) for name in _FREE_TEXT},
                "amount": frame["amount"],
            },
            columns=TRANSACTION_HEADER,
        )
        table.to_csv(path, index=False, lineterminator="\r\n", encoding="utf-8")
        return path


def _neutralize_category(column: pd.Series) -> np.ndarray:
    """Neutralise each distinct value once, then expand by the category codes."""
    categorical = column.astype("category")
    values = np.array([neutralize(str(v)) for v in categorical.cat.categories] + [""], dtype=object)
    return values[categorical.cat.codes.to_numpy()]  # code -1 (missing) picks the trailing ""


def _neutralize_column(column: pd.Series) -> pd.Series:
    text = column.astype("str")
    risky = text.str.startswith(FORMULA_TRIGGERS)
    return text.where(~risky, "'" + text) if risky.any() else text


def _write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path
