"""Pure functions: validated rows -> the transactions frame and its summaries. No I/O, no clock.

Money stays in int64 micro-units, so sums are exact and vectorised. Only records with status
``completed`` count toward spend, totals and the books; the others stay in the detail.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataError
from .extract.columnar import sorted_categorical
from .models import CATEGORY_COLUMNS, COMPLETED, ROLES, TRANSACTION_COLUMNS, Summaries
from .money import MICROS_PER_UNIT, SUM_LIMIT_MICROS, format_micros, sums_fit
from . import tables
from .period import Window

KNOWN_TYPES = ("topup", "usage", "refund")
# The sign a record must have for its type; refunds may be either (credit back: +, paid out: -).
_EXPECTED_SIGN = {"topup": 1, "usage": -1}


def to_frame(records: pd.DataFrame, tz_name: str) -> pd.DataFrame:
    """Validated records (:func:`exporter.extract.records.parse_records`) -> the transactions frame of
    :mod:`exporter.models`: local dates added, categories for repeated text, sorted by time then id.

    Categories are made first (Arrow's dictionary encoding, categories in sorted order as
    ``astype("category")`` has them), so the sort moves small codes, not text; an archive already
    in order (or in reverse order, as the API returns it) is not sorted at all.
    """
    frame = records.assign(
        date=records["created_at"].dt.tz_convert(tz_name).dt.tz_localize(None).dt.normalize(),
        **{column: _categorical(records[column]) for column in CATEGORY_COLUMNS},
    ).reset_index(drop=True)
    order = _time_order(frame)
    frame = (frame if order is None else frame.take(order)).reset_index(drop=True)
    frame["role"] = record_roles(frame)
    return frame[TRANSACTION_COLUMNS]


def _categorical(column: pd.Series) -> pd.Series:
    """``column.astype("str").astype("category")``: kept when it is that already (an archive's
    records), else by Arrow's dictionary encoding."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories
        if categories.dtype == "str" and categories.is_monotonic_increasing:
            return column
    text = column if column.dtype == "str" else column.astype("str")
    if text.isna().any():
        return text.astype("category")
    encoded = pc.dictionary_encode(pa.chunked_array(pa.array(text, from_pandas=True))).combine_chunks()
    categorical = sorted_categorical(encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False))
    return pd.Series(categorical, index=column.index)


def _time_order(frame: pd.DataFrame) -> np.ndarray | None:
    """The row positions of a stable sort by (created_at, id) (``frame`` has a RangeIndex), or None
    when the rows are in that order already."""
    instants = getattr(frame["created_at"].array, "asi8", None)  # the datetime64 values as int64
    if instants is None:
        return frame.sort_values(["created_at", "id"], kind="stable").index.to_numpy()
    if len(instants) < 2:
        return None
    step = np.diff(instants)
    for ascending in (True, False):
        if not ((step >= 0).all() if ascending else (step <= 0).all()):
            continue
        ties = np.flatnonzero(step == 0)
        ids = pa.array(frame["id"], from_pandas=True).take(pa.array(np.concatenate([ties, ties + 1]))).to_pylist()
        pairs = zip(ids[:len(ties)], ids[len(ties):])
        if all((a < b) if ascending else (a > b) for a, b in pairs):  # equal keys keep their order
            return None if ascending else np.arange(len(instants) - 1, -1, -1)
    return frame.sort_values(["created_at", "id"], kind="stable").index.to_numpy()


def completed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == COMPLETED]


def record_roles(frame: pd.DataFrame) -> pd.Series:
    """How each record is booked (:data:`~exporter.models.Role`), from its type and sign: a
    categorical of exactly the Role values, missing (NA) for amount 0, which moves nothing and has
    no role. Status is not looked at: only completed records are booked (docs/booking.md, "The
    booking model"). Computed once per report, as the transactions frame's ``role`` column
    (:func:`to_frame`); late changes get theirs from :func:`exporter.books.adjustments.adjustment_roles`."""
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
    choices = [-1, *(ROLES.index(role) for role in ("topup", "usage", "payout", "task_refund", "credit"))]
    codes = np.select(conditions, choices, default=ROLES.index("suspense"))  # -1 (amount 0): NA
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(ROLES)), index=frame.index)


BY_MODEL_COLUMNS = tables.BY_MODEL.names


def by_model(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed usage and refunded tasks per model and currency, biggest spend first.

    Columns (:data:`BY_MODEL_COLUMNS`): count (usage records), amount_micros (usage, negative),
    refunds_micros (refunded tasks of the model, positive), net_micros (their sum), share (Decimal
    fraction of that currency's usage, 4 places), unit_cost (positive Decimal average price of one
    usage record, to the micro). A model with refunds but no usage this period has count 0.
    """
    booked = ((frame["status"] == COMPLETED) & frame["role"].isin(["usage", "task_refund"])).to_numpy()
    usage = ("usage", (frame["role"] == "usage").to_numpy().astype(np.int8), pd.Series([False, True]))
    parts = grouped_sums(booked, [text_key(frame["model"]), text_key(frame["currency"]), usage], frame["amount_micros"].to_numpy())
    is_usage = parts["usage"].to_numpy()
    parts = parts.assign(count=np.where(is_usage, parts["size"], 0), amount_micros=np.where(is_usage, parts["sum"], 0),
                         refunds_micros=np.where(is_usage, 0, parts["sum"]))
    columns = ["count", "amount_micros", "refunds_micros"]
    grouped = parts.groupby(["model", "currency"], sort=True)[columns].sum().reset_index()
    grouped = grouped.astype(dict.fromkeys(columns, "int64"))
    grouped["net_micros"] = grouped["amount_micros"] + grouped["refunds_micros"]
    return with_ratios(grouped)


def with_ratios(grouped: pd.DataFrame) -> pd.DataFrame:
    """``share`` and ``unit_cost`` (Decimal, exact) from count and amount_micros, sorted as
    :func:`by_model` sorts; the one place they are computed, so a row added later (a model that
    disappeared, at 0) carries the same types as every other."""
    grouped = grouped.copy()
    currency_total = grouped.groupby("currency")["amount_micros"].transform("sum")
    grouped["share"] = pd.Series([
        _ratio(amount, total, "0.0001") for amount, total in zip(grouped["amount_micros"], currency_total)
    ], index=grouped.index, dtype="object")
    grouped["unit_cost"] = pd.Series([
        _ratio(-amount, count * MICROS_PER_UNIT, "0.000001") for amount, count in zip(grouped["amount_micros"], grouped["count"])
    ], index=grouped.index, dtype="object")
    grouped = grouped.sort_values(["currency", "amount_micros", "model"], ignore_index=True)
    return grouped[[*BY_MODEL_COLUMNS, *(c for c in grouped.columns if c not in BY_MODEL_COLUMNS)]]


BY_KEY_COLUMNS = tables.BY_KEY.names


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
    done = (frame["status"] == COMPLETED).to_numpy()
    parts = grouped_sums(done, [day_key(frame["date"]), text_key(frame["currency"]), text_key(frame["type"])],
                     frame["amount_micros"].to_numpy())
    kind, amount = parts["type"], parts["sum"]
    parts = pd.DataFrame({
        "date": parts["date"], "currency": parts["currency"],
        "topups_micros": amount.where(kind == "topup", 0), "usage_micros": amount.where(kind == "usage", 0),
        "refunds_micros": amount.where(kind == "refund", 0), "other_micros": amount.where(~kind.isin(KNOWN_TYPES), 0),
        "net_micros": amount, "count": parts["size"],
    })
    grouped = parts.groupby(["date", "currency"], sort=True).sum().reset_index()
    return grouped.astype({column: "int64" for column in grouped.columns[2:]})


Key = tuple[str, np.ndarray, pd.Series]
"""A grouping key: (column name, a code per row, the value of each code)."""


def text_key(column: pd.Series) -> Key:
    """A text column as a grouping key: its categories in sorted order (the groups come in text order)."""
    if isinstance(column.dtype, pd.CategoricalDtype):  # codes renumbered, no text made per row
        names = pd.Series(column.cat.categories).astype("str")
        order = np.argsort(names.to_numpy(dtype=object), kind="stable")  # Python's str order
        codes = column.cat.codes.to_numpy()  # pandas' smallest signed type for the categories
        if (order == np.arange(len(order))).all():  # sorted already (as to_frame makes them): the codes are the key
            return str(column.name), codes, names
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return str(column.name), np.where(codes < 0, -1, rank.astype(codes.dtype)[codes]), names.take(order).reset_index(drop=True)
    categorical = _categorical(column)
    return str(column.name), categorical.cat.codes.to_numpy(), pd.Series(categorical.cat.categories, dtype="str")


def day_key(dates: pd.Series | np.ndarray, name: str = "date") -> Key:
    """Days (datetime64 at midnight; a Series keeps its dtype in the values) as a grouping key: days since the first."""
    days = (dates if isinstance(dates, np.ndarray) else dates.to_numpy()).astype("datetime64[D]").view(np.int64)
    first = int(days.min()) if len(days) else 0
    span = pd.Series(np.arange(first, int(days.max()) + 1 if len(days) else 0).astype("datetime64[D]"))
    codes = (days - first).astype(np.int32 if len(span) < 1 << 31 else np.int64)
    return (str(dates.name), codes, span.astype(dates.dtype)) if isinstance(dates, pd.Series) else (name, codes, span)


def grouped_sums(rows: np.ndarray, keys: list[Key], amounts: np.ndarray) -> pd.DataFrame:
    """Per combination of the keys that occurs among ``rows`` (a mask), in key order (as a sorted
    groupby has them): the keys' values, ``sum`` (of ``amounts``, exact int64) and ``size`` (rows).

    A groupby in numpy: the keys' codes make one integer per row (renumbered densely when the
    combinations could outgrow int64), and the sums go straight into their slots.
    """
    for _, codes, _ in keys:
        rows = rows & (codes >= 0)  # a missing key (code -1) is in no group, as groupby drops it
    selected = [codes[rows] for _, codes, _ in keys]
    flat = np.zeros(len(selected[0]) if selected else int(rows.sum()), dtype=np.int64)
    space = 1
    for codes, (_, _, values) in zip(selected, keys):
        if space * max(len(values), 1) >= 1 << 62:
            flat = np.unique(flat, return_inverse=True)[1].astype(np.int64)  # order kept: ranks
            space = int(flat.max()) + 1 if len(flat) else 1
        flat = flat * len(values) + codes
        space *= len(values)
    amount = amounts[rows]
    slotted = space <= max(len(flat), 1 << 16)  # few combinations: one slot each
    if slotted:
        size = np.bincount(flat, minlength=space)
        seen = np.flatnonzero(size)
    else:
        seen, flat = np.unique(flat, return_inverse=True)
        size = np.bincount(flat, minlength=len(seen))
    total = np.zeros(space if slotted else len(seen), dtype=np.int64)
    np.add.at(total, flat, amount)
    one_row = np.zeros(len(total), dtype=np.int64)
    one_row[flat] = np.arange(len(flat))  # a row of each group: its keys' codes are the group's
    rows_of, total, size = (one_row[seen], total[seen], size[seen]) if slotted else (one_row, total, size)
    columns = {name: values.take(codes[rows_of]).reset_index(drop=True)
               for codes, (name, _, values) in zip(selected, keys)}
    return pd.DataFrame({**columns, "sum": total, "size": size.astype(np.int64)})


def totals(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed records per currency and type: count and exact amount."""
    done = (frame["status"] == COMPLETED).to_numpy()
    return _counted(grouped_sums(done, [text_key(frame["currency"]), text_key(frame["type"])], frame["amount_micros"].to_numpy()))


def status_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Every record per type, status and currency: count and exact signed amount (the Summary's
    "left out" line needs what pending and failed records are worth)."""
    every = np.ones(len(frame), dtype=bool)
    keys = [text_key(frame["type"]), text_key(frame["status"]), text_key(frame["currency"])]
    return _counted(grouped_sums(every, keys, frame["amount_micros"].to_numpy()))


def _counted(grouped: pd.DataFrame) -> pd.DataFrame:
    """:func:`grouped_sums`'s groups (in key order: sorted) as count and amount_micros."""
    return grouped.rename(columns={"size": "count", "sum": "amount_micros"})[
        [*grouped.columns[:-2], "count", "amount_micros"]]


def data_warnings(frame: pd.DataFrame) -> list[str]:
    """Sign contradictions and unknown types: reported, never flipped or dropped."""
    warnings: list[str] = [] if len(frame) else ["no records in the period"]
    kind, amount = frame["type"], frame["amount_micros"]
    for record_type, sign in _EXPECTED_SIGN.items():
        wrong = frame["id"][(kind == record_type) & ((amount * sign) < 0)]
        if len(wrong):
            expected = "positive" if sign > 0 else "negative"
            ids = ", ".join(wrong.head(5))
            more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
            warnings.append(f"{len(wrong)} {record_type} record(s) with a sign that is not {expected}: {ids}{more}")
    unknown = kind[~kind.isin(KNOWN_TYPES)]
    if len(unknown):
        counts = unknown.astype("str").value_counts().sort_index()
        listed = ", ".join(f"{name} ({count})" for name, count in counts.items())
        warnings.append(f"unknown record type(s), kept in the detail and booked by sign: {listed}")
    currency = frame["currency"]
    currencies = sorted(map(str, currency.cat.remove_unused_categories().cat.categories if isinstance(
        currency.dtype, pd.CategoricalDtype) else currency.astype("str").unique()))
    if len(currencies) > 1:
        warnings.append(f"several currencies ({', '.join(currencies)}): every total is per currency")
    return warnings


def _ratio(numerator: int, denominator: int, places: str) -> Decimal:
    if not denominator:
        return Decimal(0)
    ratio = (Decimal(int(numerator)) / Decimal(int(denominator))).quantize(Decimal(places), ROUND_HALF_UP)
    return abs(ratio) if ratio == 0 else ratio  # never "-0.0000"


_SUMMARIES = {"by_model": by_model, "by_key": by_key, "by_day": by_day, "totals": totals, "status_counts": status_counts}


def summarize(records: pd.DataFrame, window: Window) -> Summaries:
    """The period's validated records -> the transactions frame and every summary of it.

    DataError when the amounts are too large for every int64 sum below to be exact.
    """
    if not sums_fit(records["amount_micros"].to_numpy()):
        raise DataError(f"the period's amounts add up to more than {format_micros(SUM_LIMIT_MICROS)} in magnitude: "
                        "too much to total exactly (a record's amount is wrong?)")
    frame = to_frame(records, window.tz_name)
    # each summary only reads the frame, and spends much of its time in numpy, which releases the
    # GIL: two at a time (a million records: 0.17 -> 0.12 s)
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = {name: pool.submit(summary, frame) for name, summary in _SUMMARIES.items()}
        warnings = tuple(data_warnings(frame))
        parts = {name: future.result() for name, future in found.items()}
    return Summaries(transactions=frame, **parts, warnings=warnings)
