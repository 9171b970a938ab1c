"""The workbook's tables: By Model, By Day and Journal (built with openpyxl), as signed as the CSVs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
from openpyxl.worksheet.worksheet import Worksheet

from ...report import Report
from ...money import MICROS_PER_UNIT, micros_to_decimal
from .cells import Column, Kind, as_date, cents_decimal, print_setup, ratio, write_table

# --------------------------------------------------------------------------- By Model, By Day

_BY_MODEL_COLUMNS = (
    Column("model", "text"),
    Column("currency", "text"),
    Column("count", "int"),
    Column("amount", "amount"),
    Column("refunds", "amount"),
    Column("net", "amount"),
    Column("share", "share"),
    Column("unit cost", "amount"),
)
_COMPARISON_COLUMNS = (Column("previous amount", "amount"), Column("change", "amount"))


def write_by_model(ws: Worksheet, by_model: pd.DataFrame) -> None:
    """Completed usage per model as in by_model.csv (signed), largest spend first, a total per currency.

    ``previous amount`` and ``change`` appear when the frame has them with at least one value (the
    books hold the previous period); an unknown value is an empty cell. A frame with an ``account``
    column (the consolidated pack) shows it first, the totals summing every account.
    """
    lead = _lead(by_model)
    frame = by_model.sort_values([*lead, "currency", "amount_micros", "model"], kind="stable", ignore_index=True)
    compare = "change_micros" in frame.columns and bool(frame["change_micros"].notna().any())
    columns = _lead_columns(lead) + _BY_MODEL_COLUMNS + (_COMPARISON_COLUMNS if compare else ())
    rows = []
    for r in frame.itertuples(index=False):
        values: list[Any] = [
            *(str(getattr(r, name)) for name in lead), str(r.model), str(r.currency), int(r.count),
            micros_to_decimal(r.amount_micros), micros_to_decimal(r.refunds_micros), micros_to_decimal(r.net_micros), Decimal(r.share),
            Decimal(r.unit_cost),
        ]
        if compare:
            values += [_optional_micros(getattr(r, "previous_amount_micros", None)), _optional_micros(r.change_micros)]
        rows.append(values)
    totals = []
    for currency, group in frame.groupby("currency", sort=True):
        count, amount = int(group["count"].sum()), int(group["amount_micros"].sum())
        average = ratio(-amount, count * MICROS_PER_UNIT, "0.000001")
        share = Decimal(1 if amount else 0)
        total: list[Any] = [
            *_ALL[:len(lead)], f"Total {currency}", str(currency), count, micros_to_decimal(amount),
            micros_to_decimal(int(group["refunds_micros"].sum())), micros_to_decimal(int(group["net_micros"].sum())),
            share, average,
        ]
        if compare:
            total += [_optional_sum(group.get("previous_amount_micros")), _optional_sum(group["change_micros"])]
        totals.append(total)
    money_totals: dict[int, Kind] = {i + len(lead): "total" for i in (3, 4, 5, 8, 9)}
    write_table(ws, columns, rows, totals, total_kinds=money_totals)
    print_setup(ws, landscape=len(columns) > 8)


_ALL = ("All accounts",)  # the account cell of a total row across accounts


def _lead(frame: pd.DataFrame) -> list[str]:
    """``["account"]`` when the frame has an account column (the consolidated pack), else none."""
    return ["account"] if "account" in frame.columns else []


def _lead_columns(lead: list[str]) -> tuple[Column, ...]:
    return tuple(Column(name, "text") for name in lead)


def _optional_micros(value: Any) -> Decimal | None:
    return None if value is None or pd.isna(value) else micros_to_decimal(int(value))


def _optional_sum(column: pd.Series | None) -> Decimal | None:
    """The exact sum of a nullable column; None when any value is unknown (no partial total)."""
    if column is None or column.isna().any():
        return None
    return micros_to_decimal(int(column.sum()))


_BY_DAY_COLUMNS = (
    Column("date", "date"),
    Column("currency", "text"),
    Column("top-ups", "amount"),
    Column("usage", "amount"),
    Column("refunds", "amount"),
    Column("other", "amount"),
    Column("net", "amount"),
    Column("count", "int"),
)
_BY_DAY_MONEY = ("topups_micros", "usage_micros", "refunds_micros", "other_micros", "net_micros")


def write_by_day(ws: Worksheet, by_day: pd.DataFrame) -> None:
    """Completed records per local day as in by_day.csv (signed; each row foots to net), a total per
    currency; an ``account`` column first when the frame has one (as :func:`write_by_model`)."""
    lead = _lead(by_day)
    frame = by_day.assign(currency=by_day["currency"].astype("str"))
    frame = frame.sort_values([*lead, "currency", "date"], kind="stable", ignore_index=True)
    rows = [
        (*(str(getattr(r, name)) for name in lead), as_date(r.date), r.currency,
         *(micros_to_decimal(getattr(r, c)) for c in _BY_DAY_MONEY), int(r.count))
        for r in frame.itertuples(index=False)
    ]
    totals = [
        (
            *_ALL[:len(lead)], f"Total {currency}", currency,
            *(micros_to_decimal(int(group[c].sum())) for c in _BY_DAY_MONEY), int(group["count"].sum()),
        )
        for currency, group in frame.groupby("currency", sort=True)
    ]
    money_totals: dict[int, Kind] = {i + len(lead): "total" for i in range(2, 7)}
    write_table(ws, _lead_columns(lead) + _BY_DAY_COLUMNS, rows, totals,
                total_kinds={len(lead): "text", **money_totals})
    print_setup(ws, landscape=False)


# --------------------------------------------------------------------------- Journal

_JOURNAL_COLUMNS = (
    Column("journal no.", "text"),
    Column("date", "date"),
    Column("account", "text"),
    Column("debit", "cents"),
    Column("credit", "cents"),
    Column("class", "text"),
    Column("memo", "text"),
    Column("name", "text"),
    Column("currency", "text"),
)


def write_journal(ws: Worksheet, report: Report) -> None:
    """The entries the QuickBooks files carry, one row per line; debits equal credits per currency."""
    rows: list[tuple[Any, ...]] = []
    sums: dict[str, list[int]] = {}
    for entry in report.journal:
        for line in entry.lines:
            cents = int(line.amount_cents)
            debit = cents_decimal(cents) if cents > 0 else None
            credit = cents_decimal(-cents) if cents < 0 else None
            memo = line.memo or entry.memo
            rows.append(
                (entry.number, entry.date, line.account, debit, credit, line.klass, memo, line.name, entry.currency)
            )
            total = sums.setdefault(entry.currency, [0, 0])
            total[0 if cents > 0 else 1] += abs(cents)
    totals = [
        (f"Total {currency}", None, "", cents_decimal(debit), cents_decimal(credit), "", "", "", currency)
        for currency, (debit, credit) in sorted(sums.items())
    ]
    write_table(ws, _JOURNAL_COLUMNS, rows, totals)
    print_setup(ws, landscape=True)


