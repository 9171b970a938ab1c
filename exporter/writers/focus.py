"""FOCUS 1.2 cost and usage dataset, ``focus.csv``, for FinOps tools (docs/focus.md).

One row per charge, in the FinOps Open Cost and Usage Specification's columns:

- ``Usage``: completed usage per UTC day x model x API key x currency; quantities are completed
  requests; ``SubAccountId``/``SubAccountName`` the API key's id and name (docs/focus.md).
  The prepaid credit paid for it already, so BilledCost is 0 and EffectiveCost carries the cost
  (docs/focus.md, "Prepaid credit"); on a postpaid account usage is billed as it is used.
- ``Purchase``: each top-up (BilledCost its amount, EffectiveCost 0: it covers future usage), and
  each refund paid out of the credit (a negative purchase).
- ``Credit``: credits back to the balance (refunded tasks, goodwill credits) per UTC day x model x
  API key x currency, with every cost column equal.
- ``Adjustment``: records the booking rules cannot place (the journal's suspense records).
- ``ChargeClass = Correction``: late changes to closed periods from ``report.booked.adjustments``.

Amounts come from the exact int micros (never floats); the day of a charge is the UTC day of its
``created_at``, cut to the export window, since FOCUS date-times are UTC.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, ExportError
from ..models import COMPLETED
from ..report import Report
from ..money import format_micros
from ..period import Window
from ..transform import day_key, grouped_sums, text_key
from .base import Writer
from .sanitize import import_text

FOCUS_FILE = "focus.csv"
FOCUS_COLUMNS = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit", "ProviderName",
    "PublisherName", "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SubAccountId", "SubAccountName",
]
VENDOR_COLUMNS = ["x_CorrectedPeriod", "x_CorrectionReason", "x_PaymentMethod", "x_RecordCount", "x_TransactionId"]
HEADER = FOCUS_COLUMNS + VENDOR_COLUMNS
# the consolidated pack's: SubAccount is the account (the profile), the API key its own x_ columns
CONSOLIDATED_HEADER = FOCUS_COLUMNS + ["x_ApiKeyId", "x_ApiKeyName", *VENDOR_COLUMNS]

PROVIDER = "WaveSpeedAI"
SERVICE_NAME = "WaveSpeedAI API"
SERVICE_CATEGORY = "AI and Machine Learning"
SERVICE_SUBCATEGORY = "Generative AI"
REQUESTS = "Requests"
CREDIT_SKU = "prepaid-credit"
CORRECTION = "Correction"

# how each booking role (exporter.models.Role) appears in FOCUS
_CATEGORY = {
    "usage": "Usage", "topup": "Purchase", "payout": "Purchase",
    "task_refund": "Credit", "credit": "Credit", "suspense": "Adjustment",
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class _Context:
    """What every row shares."""

    window: Window
    start: pd.Timestamp  # the billing period (the export window), naive UTC
    end: pd.Timestamp
    postpaid: bool


class FocusWriter(Writer):
    """Writes ``focus.csv``: FOCUS 1.2 columns first (alphabetical), then the ``x_`` columns."""

    def write(self, report: Report, folder: Path) -> list[Path]:
        return [write_focus(folder / FOCUS_FILE, HEADER, focus_rows(report))]


def focus_rows(report: Report, sub_account: str | None = None) -> list[list[str]]:
    """The report's FOCUS rows; with ``sub_account`` (the consolidated pack) in
    :data:`CONSOLIDATED_HEADER` order, the account as BillingAccount and SubAccount (each account
    has its own credit), the API key in x_ columns."""
    window = report.context.window
    context = _Context(window, _utc_second(window.start), _utc_second(window.end), report.mapping.postpaid)
    charges = focus_charges(report.summaries.transactions, context)
    if report.booked.adjustments is not None and len(report.booked.adjustments):
        charges = pd.concat([charges, correction_charges(report.booked.adjustments, context)], ignore_index=True)
    return render_rows(charges, context, sub_account or report.context.account, sub_account)


def write_focus(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# -- charges: one frame row per FOCUS row, money in int micros ------------------------------------

_CHARGE_COLUMNS = [
    "role", "start", "end", "currency", "model", "key_name", "key_id", "count", "micros", "id", "method", "period", "reason",
]
_TEXT = ["role", "currency", "model", "key_name", "key_id", "id", "method", "period", "reason"]


def focus_charges(transactions: pd.DataFrame, context: _Context) -> pd.DataFrame:
    """The period's completed records as charges: usage and credits per UTC day, the rest per record.

    ``micros`` is the records' summed effect on the credit balance (as the API signs it).
    """
    done = ((transactions["status"] == COMPLETED) & (transactions["amount_micros"] != 0)).to_numpy()
    roles = transactions["role"]  # computed once per report (transform.record_roles)
    summed = done & roles.isin(["usage", "task_refund", "credit"]).to_numpy()
    days = _utc_days(transactions["created_at"])
    keys = [("role", *text_key(roles)[1:]), day_key(days, "day"), *(
        (name, *text_key(transactions[column])[1:]) for name, column in
        (("currency", "currency"), ("model", "model"), ("key_name", "api_key_name"), ("key_id", "api_key_id")))]
    grouped = grouped_sums(summed, keys, transactions["amount_micros"].to_numpy())
    grouped = grouped.rename(columns={"size": "count", "sum": "micros"})
    at = np.flatnonzero(done & ~summed)  # top-ups, payouts, suspense: one charge each, a few
    single = transactions.iloc[at]
    singles = pd.DataFrame({
        "role": single["role"].astype("str").to_numpy(), "day": days[at], "currency": single["currency"].astype("str").to_numpy(),
        "model": single["model"].astype("str").to_numpy(), "count": 1, "micros": single["amount_micros"].to_numpy(),
        "id": single["id"].astype("str").to_numpy(), "method": single["payment_method"].astype("str").to_numpy(),
        "key_name": single["api_key_name"].astype("str").to_numpy(), "key_id": single["api_key_id"].astype("str").to_numpy(),
    })
    charges = pd.concat([grouped, singles], ignore_index=True)
    day = charges["day"].to_numpy().astype("datetime64[s]")
    charges["start"] = np.maximum(day, context.start.to_datetime64())
    charges["end"] = np.minimum(day + _DAY, context.end.to_datetime64())
    return _complete(charges)


def correction_charges(adjustments: pd.DataFrame, context: _Context) -> pd.DataFrame:
    """One charge per late change to a closed period that moved the balance (exporter.models.ADJUSTMENT_COLUMNS).

    Its role is the adjustment's ``role`` column, the journal's; its charge period is the closed period's.
    """
    moved = adjustments[adjustments["delta_micros"].astype("int64") != 0]
    roles = moved["role"]  # decided once (books.adjustments.adjustment_roles), as the journal reads it
    charges = pd.DataFrame({  # the closed period's own instants, as the books hold them (its zone, its days)
        "role": roles.to_numpy(), "start": moved["period_start"].dt.floor("s").dt.tz_localize(None).to_numpy(),
        "end": moved["period_end"].dt.floor("s").dt.tz_localize(None).to_numpy(),
        "currency": moved["currency"].astype("str").to_numpy(), "model": moved["model"].fillna("").astype("str").to_numpy(),
        "count": 1, "micros": moved["delta_micros"].astype("int64").to_numpy(), "id": moved["id"].astype("str").to_numpy(),
        "period": moved["period"].astype("str").to_numpy(), "reason": moved["change"].astype("str").to_numpy(),
    })
    return _complete(charges)


def _complete(charges: pd.DataFrame) -> pd.DataFrame:
    """Every charge column present, text columns as plain str ("" for none)."""
    for column in _CHARGE_COLUMNS:
        if column not in charges:
            charges[column] = ""
    for column in _TEXT:
        charges[column] = charges[column].astype("object").fillna("").astype("str")
    charges["start"] = charges["start"].astype("datetime64[s]")
    charges["end"] = charges["end"].astype("datetime64[s]")
    return charges[_CHARGE_COLUMNS]


# -- rows -------------------------------------------------------------------------------------


def render_rows(charges: pd.DataFrame, context: _Context, account: str, sub_account: str | None = None) -> list[list[str]]:
    """The CSV rows in :data:`HEADER` order (``""`` is null), sorted by charge period, category,
    currency, model, API key and id; with ``sub_account``, :data:`CONSOLIDATED_HEADER`'s."""
    charges = charges.assign(category=charges["role"].map(_CATEGORY))
    if charges["category"].isna().any():
        raise ExportError(f"internal error: no FOCUS charge category for role(s) {sorted(set(charges['role']) - set(_CATEGORY))}")
    bad = sorted(code for code in set(charges["currency"]) if not _CURRENCY.match(code))
    if bad:
        raise DataError(f"currency {bad[0]!r} is not a three-letter ISO 4217 code, which FOCUS BillingCurrency needs")
    charges = charges.sort_values(["start", "category", "currency", "model", "key_name", "key_id", "id", "period"],
                                  kind="stable")
    account_name = import_text(account) or "default"
    shared = {
        "BillingAccountId": account_name, "BillingAccountName": account_name,
        "BillingPeriodStart": _timestamp(context.start), "BillingPeriodEnd": _timestamp(context.end),
        "InvoiceId": "", "InvoiceIssuerName": PROVIDER, "ProviderName": PROVIDER, "PublisherName": PROVIDER,
        "ServiceCategory": SERVICE_CATEGORY, "ServiceName": SERVICE_NAME, "ServiceSubcategory": SERVICE_SUBCATEGORY,
    }
    rows = []
    for charge in charges.itertuples(index=False):
        billed, effective, quantity, unit = _money_and_quantity(charge, context.postpaid)
        consumed = charge.category == "Usage" and bool(quantity)  # ConsumedQuantity: usage rows only
        list_cost = format_micros(billed if charge.category == "Purchase" else effective)
        row = {
            **shared,
            "BilledCost": format_micros(billed), "EffectiveCost": format_micros(effective),
            "ListCost": list_cost, "ContractedCost": list_cost,
            "BillingCurrency": charge.currency, "ChargeCategory": charge.category,
            "ChargeClass": CORRECTION if charge.reason else "", "ChargeDescription": _description(charge),
            "ChargeFrequency": "Usage-Based" if charge.model and charge.category != "Purchase" else "One-Time",
            "ChargePeriodStart": _timestamp(charge.start), "ChargePeriodEnd": _timestamp(charge.end),
            "ConsumedQuantity": quantity if consumed else "", "ConsumedUnit": REQUESTS if consumed else "",
            "PricingQuantity": quantity, "PricingUnit": unit,
            "SkuId": CREDIT_SKU if charge.category == "Purchase" else import_text(charge.model),
            "SubAccountId": import_text(charge.key_id), "SubAccountName": import_text(charge.key_name),
            "x_CorrectedPeriod": import_text(charge.period), "x_CorrectionReason": import_text(charge.reason),
            "x_PaymentMethod": import_text(charge.method), "x_RecordCount": str(charge.count),
            "x_TransactionId": import_text(charge.id),
        }
        if sub_account is not None:  # the account is the sub-account; the key moves to x_ApiKey*
            row.update(x_ApiKeyId=row["SubAccountId"], x_ApiKeyName=row["SubAccountName"],
                       SubAccountId=import_text(sub_account), SubAccountName=import_text(sub_account))
        rows.append([row[column] for column in (HEADER if sub_account is None else CONSOLIDATED_HEADER)])
    return rows


def _money_and_quantity(charge: Any, postpaid: bool) -> tuple[int, int, str, str]:
    """(BilledCost, EffectiveCost, PricingQuantity, PricingUnit) of a charge; quantity "" is null.

    ``micros`` is the effect on the credit balance: a top-up adds credit (a cost of +amount to
    the buyer), usage and credits back are costs of -amount.
    """
    category, micros, count, correction = charge.category, int(charge.micros), int(charge.count), bool(charge.reason)
    if category == "Purchase":  # paid now for future usage: EffectiveCost 0 (docs/focus.md)
        quantity = "" if correction else format_micros(micros)
        return micros, 0, quantity, charge.currency if quantity else ""
    cost = -micros
    if category == "Usage":
        quantity = "" if correction else f"{count}.0"  # Decimal columns: the point keeps CSV readers from typing them int
        return (cost if postpaid else 0), cost, quantity, REQUESTS if quantity else ""
    return cost, cost, "", ""  # Credit, Adjustment: a charge unrelated to others, BilledCost = EffectiveCost


def _description(c: Any) -> str:
    """ChargeDescription: what the row is, in a few words."""
    model, count, role = c.model or "no model", int(c.count), c.role
    plural = "" if count == 1 else "s"
    if c.reason:
        text = f"Correction to closed period {c.period}: {c.reason} record {c.id} ({model})"
    elif role == "usage":
        text = f"{model}: {count} completed request{plural}"
    elif role == "topup":
        text = f"Prepaid credit top-up {c.id} via {c.method or 'unknown payment method'}"
    elif role == "payout":
        text = f"Prepaid credit refunded {c.id} to {c.method or 'unknown payment method'}"
    elif role in ("task_refund", "credit"):
        text = f"Credit back to the prepaid balance ({model}, {count} record{plural})"
    else:
        text = f"Record {c.id} the booking rules cannot place (needs review)"
    return import_text(text)


# -- time -------------------------------------------------------------------------------------


def _utc_days(created_at: pd.Series) -> np.ndarray:
    """The UTC calendar day of each instant (datetime64[D])."""
    naive = created_at.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.to_numpy().astype("datetime64[D]")


def _utc_second(instant: datetime) -> pd.Timestamp:
    """An aware instant as a naive UTC timestamp, to the second."""
    return pd.Timestamp(instant.astimezone(timezone.utc).replace(tzinfo=None)).floor("s")


def _timestamp(value: Any) -> str:
    """FOCUS date-time: ``YYYY-MM-DDTHH:mm:ssZ`` in UTC."""
    return f"{pd.Timestamp(value):%Y-%m-%dT%H:%M:%S}Z"


__all__ = ["CONSOLIDATED_HEADER", "FOCUS_COLUMNS", "FOCUS_FILE", "HEADER", "VENDOR_COLUMNS", "FocusWriter",
           "focus_charges", "focus_rows", "write_focus"]
