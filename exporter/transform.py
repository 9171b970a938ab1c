"""Pure functions: validated rows -> the transactions frame and its summaries. No I/O, no clock.

Money stays in int64 micro-units, so sums are exact and vectorised. Only records with status
``completed`` count toward spend, totals and the books; the others stay in the detail.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from .errors import DataError
from .models import COMPLETED, TRANSACTION_COLUMNS, Summaries
from .money import MICROS_PER_UNIT, SUM_LIMIT_MICROS, format_micros, sums_fit
from .period import Window

KNOWN_TYPES = ("topup", "usage", "refund")
_CATEGORIES = ["type", "status", "model", "payment_method", "currency", "api_key_name", "api_key_id"]
# The sign a record must have for its type; refunds may be either (credit back: +, paid out: -).
_EXPECTED_SIGN = {"topup": 1, "usage": -1}


def to_frame(records: pd.DataFrame, tz_name: str) -> pd.DataFrame:
    """Validated records (:func:`exporter.extract.records.parse_records`) -> the transactions frame of
    :mod:`exporter.models`: local dates added, categories for repeated text, sorted by time then id."""
    frame = records.assign(
        date=records["created_at"].dt.tz_convert(tz_name).dt.tz_localize(None).dt.normalize(),
        **{column: records[column].astype("category") for column in _CATEGORIES},
    )
    frame = frame.sort_values(["created_at", "id"], kind="stable", ignore_index=True)
    return frame[TRANSACTION_COLUMNS]


def completed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == COMPLETED]


def record_roles(frame: pd.DataFrame) -> pd.Series:
    """How each record is booked (:data:`~exporter.models.Role`), from its type and sign; ``zero`` for
    amount 0. Status is not looked at: only completed records are booked (docs/booking.md, "The
    booking model")."""
    amount = frame["amount_micros"]
    kind = frame["type"]  # compared as it is: a category column compares by code, a million rows fast
    has_model = frame["model"] != ""
    positive_not_topup = (amount > 0) & (kind != "topup")
    conditions = [
        amount == 0,
        (kind == "topup") & (amount > 0),
        (kind == "usage") & (amount < 0),
        (kind == "refund") & (amount < 0),
        positive_not_topup & has_model,
        positive_not_topup,
    ]
    choices = ["zero", "topup", "usage", "payout", "task_refund", "credit"]
    return pd.Series(np.select(conditions, choices, default="suspense"), index=frame.index, dtype="str")


BY_MODEL_COLUMNS = ["model", "currency", "count", "amount_micros", "refunds_micros", "net_micros", "share", "unit_cost"]


def by_model(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed usage and refunded tasks per model and currency, biggest spend first.

    Columns (:data:`BY_MODEL_COLUMNS`): count (usage records), amount_micros (usage, negative),
    refunds_micros (refunded tasks of the model, positive), net_micros (their sum), share (Decimal
    fraction of that currency's usage, 4 places), unit_cost (positive Decimal average price of one
    usage record, to the micro). A model with refunds but no usage this period has count 0.
    """
    done = completed(frame)
    roles = record_roles(done)
    booked = done[roles.isin(["usage", "task_refund"])]
    is_usage = roles[booked.index] == "usage"
    parts = pd.DataFrame({
        "model": booked["model"].astype("str"),
        "currency": booked["currency"].astype("str"),
        "count": is_usage.astype("int64"),
        "amount_micros": booked["amount_micros"].where(is_usage, 0),
        "refunds_micros": booked["amount_micros"].where(~is_usage, 0),
    })
    grouped = parts.groupby(["model", "currency"]).sum().reset_index()
    grouped = grouped.astype({"count": "int64", "amount_micros": "int64", "refunds_micros": "int64"})
    grouped["net_micros"] = grouped["amount_micros"] + grouped["refunds_micros"]
    currency_total = grouped.groupby("currency")["amount_micros"].transform("sum")
    grouped["share"] = [
        _ratio(amount, total, "0.0001") for amount, total in zip(grouped["amount_micros"], currency_total)
    ]
    grouped["unit_cost"] = [
        _ratio(-amount, count * MICROS_PER_UNIT, "0.000001") for amount, count in zip(grouped["amount_micros"], grouped["count"])
    ]
    grouped = grouped.sort_values(["currency", "amount_micros", "model"], ignore_index=True)
    return grouped[BY_MODEL_COLUMNS]


BY_KEY_COLUMNS = ["api_key_name", "api_key_id", "currency", "count", "usage_micros", "refunds_micros", "net_micros"]


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed usage and refunded tasks per API key and currency, biggest net spend first
    (README, "Spend per API key").

    Columns (:data:`BY_KEY_COLUMNS`): count (usage records), usage_micros (negative),
    refunds_micros (refunded tasks, positive), net_micros (their sum). The records :func:`by_model`
    sums, grouped by key instead, so per currency both tables add up to the same usage and refunds.
    A record without a key is grouped under the empty name and id. No rows when no record of the
    period names a key (the legacy API has none).
    """
    if not (frame["api_key_name"] != "").any() and not (frame["api_key_id"] != "").any():
        return pd.DataFrame({
            **{name: pd.Series([], dtype="str") for name in BY_KEY_COLUMNS[:3]},
            **{name: pd.Series([], dtype="int64") for name in BY_KEY_COLUMNS[3:]},
        })
    done = completed(frame)
    roles = record_roles(done)
    booked = done[roles.isin(["usage", "task_refund"])]
    is_usage = roles[booked.index] == "usage"
    parts = pd.DataFrame({
        "api_key_name": booked["api_key_name"].astype("str"),
        "api_key_id": booked["api_key_id"].astype("str"),
        "currency": booked["currency"].astype("str"),
        "count": is_usage.astype("int64"),
        "usage_micros": booked["amount_micros"].where(is_usage, 0),
        "refunds_micros": booked["amount_micros"].where(~is_usage, 0),
    })
    grouped = parts.groupby(["api_key_name", "api_key_id", "currency"]).sum().reset_index()
    grouped = grouped.astype({"count": "int64", "usage_micros": "int64", "refunds_micros": "int64"})
    grouped["net_micros"] = grouped["usage_micros"] + grouped["refunds_micros"]
    grouped = grouped.sort_values(["currency", "net_micros", "api_key_name", "api_key_id"], ignore_index=True)
    return grouped[BY_KEY_COLUMNS]


def by_day(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed records per local day and currency; each row foots: topups + usage + refunds + other = net.

    ``refunds`` are records of type refund (credits back and payouts), ``other`` any type the API
    adds; ``count`` is the number of completed records.
    """
    done = completed(frame)
    kind = done["type"].astype("str")
    amount = done["amount_micros"]
    signed = pd.DataFrame(
        {
            "date": done["date"],
            "currency": done["currency"].astype("str"),
            "topups_micros": amount.where(kind == "topup", 0),
            "usage_micros": amount.where(kind == "usage", 0),
            "refunds_micros": amount.where(kind == "refund", 0),
            "other_micros": amount.where(~kind.isin(KNOWN_TYPES), 0),
            "net_micros": amount,
        }
    )
    grouped = signed.groupby(["date", "currency"]).agg(
        topups_micros=("topups_micros", "sum"),
        usage_micros=("usage_micros", "sum"),
        refunds_micros=("refunds_micros", "sum"),
        other_micros=("other_micros", "sum"),
        net_micros=("net_micros", "sum"),
        count=("net_micros", "size"),
    )
    money = ["topups_micros", "usage_micros", "refunds_micros", "other_micros", "net_micros"]
    return grouped.reset_index().astype(dict.fromkeys(money, "int64"))


def totals(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed records per currency and type: count and exact amount."""
    done = completed(frame)
    grouped = (
        done.groupby(["currency", "type"], observed=True)
        .agg(count=("id", "size"), amount_micros=("amount_micros", "sum"))
        .reset_index()
    )
    return grouped.astype({"currency": "str", "type": "str"}).sort_values(["currency", "type"], ignore_index=True)


def status_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Every record per type, status and currency: count and exact signed amount (the Summary's
    "left out" line needs what pending and failed records are worth)."""
    grouped = (
        frame.groupby(["type", "status", "currency"], observed=True)
        .agg(count=("id", "size"), amount_micros=("amount_micros", "sum"))
        .reset_index()
    )
    grouped = grouped.astype({"type": "str", "status": "str", "currency": "str", "amount_micros": "int64"})
    return grouped.sort_values(["type", "status", "currency"], ignore_index=True)


def data_warnings(frame: pd.DataFrame) -> list[str]:
    """Sign contradictions and unknown types: reported, never flipped or dropped."""
    warnings: list[str] = [] if len(frame) else ["no records in the period"]
    for record_type, sign in _EXPECTED_SIGN.items():
        of_type = frame[frame["type"] == record_type]
        wrong = of_type[(of_type["amount_micros"] * sign) < 0]
        if len(wrong):
            expected = "positive" if sign > 0 else "negative"
            ids = ", ".join(wrong["id"].head(5))
            more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
            warnings.append(f"{len(wrong)} {record_type} record(s) with a sign that is not {expected}: {ids}{more}")
    unknown = frame[~frame["type"].isin(KNOWN_TYPES)]
    if len(unknown):
        counts = unknown["type"].astype("str").value_counts().sort_index()
        listed = ", ".join(f"{name} ({count})" for name, count in counts.items())
        warnings.append(f"unknown record type(s), kept in the detail and booked by sign: {listed}")
    currencies = sorted(frame["currency"].astype("str").unique())
    if len(currencies) > 1:
        warnings.append(f"several currencies ({', '.join(currencies)}): every total is per currency")
    return warnings


def _ratio(numerator: int, denominator: int, places: str) -> Decimal:
    if not denominator:
        return Decimal(0)
    ratio = (Decimal(int(numerator)) / Decimal(int(denominator))).quantize(Decimal(places), ROUND_HALF_UP)
    return abs(ratio) if ratio == 0 else ratio  # never "-0.0000"


def summarize(records: pd.DataFrame, window: Window) -> Summaries:
    """The period's validated records -> the transactions frame and every summary of it.

    DataError when the amounts are too large for every int64 sum below to be exact.
    """
    if not sums_fit(records["amount_micros"].to_numpy()):
        raise DataError(f"the period's amounts add up to more than {format_micros(SUM_LIMIT_MICROS)} in magnitude: "
                        "too much to total exactly (a record's amount is wrong?)")
    frame = to_frame(records, window.tz_name)
    return Summaries(
        transactions=frame,
        by_model=by_model(frame),
        by_key=by_key(frame),
        by_day=by_day(frame),
        totals=totals(frame),
        status_counts=status_counts(frame),
        warnings=tuple(data_warnings(frame)),
    )
