"""The frames the stages hand on, declared once: each table's columns, in order, with the kind of
values each holds. :class:`~exporter.models.Summaries`, :class:`~exporter.books.ledger.Booked`
and :class:`~exporter.report.Reconciliation` refuse a frame whose columns are not its table's;
``tests/test_tables.py`` checks the kinds on real months. Money is always exact: int64 micros,
or the source's decimal text.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

# the kinds of column, and how a frame's dtype shows each
KINDS = {
    "text": "str (or object holding str)",
    "category": "category (few distinct values)",
    "int64": "int64",
    "instant": "datetime64, tz UTC",
    "day": "datetime64, naive (a calendar day)",
    "ratio": "object holding Decimal",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    meaning: str


@dataclass(frozen=True)
class Table:
    """A frame's contract: ``columns`` in order; ``optional`` ones may follow them."""

    name: str
    columns: tuple[Column, ...]
    optional: tuple[Column, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def require(self, frame: pd.DataFrame) -> None:
        """ValueError unless ``frame`` has exactly this table's columns, in order (optional ones after)."""
        have, want = list(frame.columns), self.names
        extra = have[len(want):]
        if have[:len(want)] != want or not set(extra) <= {c.name for c in self.optional}:
            raise ValueError(f"{self.name}: columns {have}, expected {want} (+ optional {[c.name for c in self.optional]})")

    def kind_problems(self, frame: pd.DataFrame) -> list[str]:
        """The columns whose dtype is not of their declared kind (a check for tests: it looks at
        a value of object columns)."""
        kinds = {c.name: c.kind for c in (*self.columns, *self.optional)}
        return [f"{self.name}.{name}: {frame[name].dtype} is not {KINDS[kinds[name]]}"
                for name in frame.columns if name in kinds and not _of_kind(frame[name], kinds[name])]


def _of_kind(series: pd.Series, kind: str) -> bool:
    dtype = series.dtype
    if kind == "category":
        return isinstance(dtype, pd.CategoricalDtype)
    if kind == "int64":
        return str(dtype) == "int64"
    if kind == "instant":
        return isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC"
    if kind == "day":
        return pd.api.types.is_datetime64_dtype(dtype) and not isinstance(dtype, pd.DatetimeTZDtype)
    values = series.dropna()
    if kind == "text":
        return pd.api.types.is_string_dtype(dtype) and all(isinstance(v, str) for v in values.head(100))
    return dtype == object and all(isinstance(v, Decimal) for v in values.head(100))  # ratio


TRANSACTIONS = Table("transactions", (
    Column("id", "text", "transaction id (unique)"),
    Column("created_at", "instant", "instant of the record"),
    Column("date", "day", "local calendar day in the export's time zone"),
    Column("type", "category", "topup, usage, refund, or anything the API adds"),
    Column("status", "category", "completed, pending, failed, ..."),
    Column("model", "category", '"" when absent'),
    Column("payment_method", "category", '"" when absent'),
    Column("currency", "category", "e.g. USD"),
    Column("amount", "text", "exact signed decimal text, source precision"),
    Column("amount_micros", "int64", "the same amount in micro-units (exact)"),
    Column("api_key_name", "category", 'the API key that ran the task, "" when absent'),
    Column("api_key_id", "category", 'its id, "" when absent (legacy API, top-ups)'),
    Column("role", "category", "how a completed record is booked (models.ROLES); missing when not completed"),
))
"""``Summaries.transactions``: one row per record of the period, sorted by created_at then id."""

BY_MODEL = Table("by_model", (
    Column("model", "text", "the model; \"\" for usage without one"),
    Column("currency", "text", "the currency"),
    Column("count", "int64", "completed usage records"),
    Column("amount_micros", "int64", "their usage (negative)"),
    Column("refunds_micros", "int64", "refunded tasks (positive)"),
    Column("net_micros", "int64", "usage plus refunds"),
    Column("share", "ratio", "the model's share of the currency's net spend"),
    Column("unit_cost", "ratio", "net spend per task"),
), optional=(
    Column("previous_amount_micros", "int64", "the previous contiguous period's usage (books)"),
    Column("change_micros", "int64", "usage minus the previous period's"),
))
"""``Summaries.by_model``: spend per model and currency (the Report's has the comparison, ``ledger.compare_models``)."""

BY_KEY = Table("by_key", (
    Column("api_key_name", "text", "the API key's name"),
    Column("api_key_id", "text", "its id"),
    Column("currency", "text", "the currency"),
    Column("count", "int64", "completed usage records"),
    Column("usage_micros", "int64", "their usage (negative)"),
    Column("refunds_micros", "int64", "refunded tasks (positive)"),
    Column("net_micros", "int64", "usage plus refunds"),
))
"""``Summaries.by_key``: spend per API key (no rows when no record names one)."""

BY_DAY = Table("by_day", (
    Column("date", "day", "the local day"),
    Column("currency", "text", "the currency"),
    *(Column(f"{name}_micros", "int64", f"completed {name}") for name in ("topups", "usage", "refunds", "other")),
    Column("net_micros", "int64", "the day's net movement of the credit"),
    Column("count", "int64", "completed records"),
))
"""``Summaries.by_day``: completed records per local day and currency."""

TOTALS = Table("totals", (
    Column("currency", "text", "the currency"),
    Column("type", "text", "the record type"),
    Column("count", "int64", "completed records"),
    Column("amount_micros", "int64", "their signed sum"),
))
"""``Summaries.totals``: completed records per currency and type."""

STATUS_COUNTS = Table("status_counts", (
    Column("type", "text", "the record type"),
    Column("status", "text", "the status"),
    Column("currency", "text", "the currency"),
    Column("count", "int64", "records"),
    Column("amount_micros", "int64", "their signed sum"),
))
"""``Summaries.status_counts``: every record per type, status and currency."""

RECONCILIATION = Table("reconciliation", (
    Column("model", "text", "the model"),
    Column("currency", "text", "the currency"),
    Column("exported_micros", "int64", "spend in the export (positive)"),
    Column("provider_micros", "int64", "spend the provider's usage summary shows"),
    Column("difference_micros", "int64", "exported minus provider"),
    Column("status", "text", "ok, differs, ... (books/reconcile.py)"),
))
"""``Reconciliation.frame``: the export against the provider's usage summary."""

ADJUSTMENTS = Table("adjustments", (
    Column("id", "text", "the record"),
    Column("period", "text", "the closed period's label"),
    Column("change", "text", "completed_late, arrived_late, reversed, amount_changed, moved, missing"),
    Column("type", "text", "the record type"),
    Column("model", "text", "the model"),
    Column("currency", "text", "the currency"),
    Column("status_before", "text", "as booked"),
    Column("status_after", "text", "as now"),
    Column("amount_before_micros", "int64", "as booked"),
    Column("amount_after_micros", "int64", "as now"),
    Column("delta_micros", "int64", "the signed effect on the credit balance (0 for missing: nothing is posted)"),
    Column("payment_method", "text", "the payment method"),
    Column("period_start", "instant", "the closed period's start, as the books recorded it"),
    Column("period_end", "instant", "its end"),
    Column("role", "category", "how the change is booked (adjustments.adjustment_roles)"),
    Column("day", "int64", "the record's UTC day (days since 1970-01-01), as now or as booked"),
))
"""``Booked.adjustments``: late changes to closed periods, posted in this period (docs/booking.md,
"Closed periods and late changes")."""

__all__ = ["ADJUSTMENTS", "BY_DAY", "BY_KEY", "BY_MODEL", "KINDS", "RECONCILIATION", "STATUS_COUNTS", "TOTALS",
           "TRANSACTIONS", "Column", "Table"]
