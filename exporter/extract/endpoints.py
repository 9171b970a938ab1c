"""The account API's endpoints, and the calls other than the billing walk.

``/billings`` is walked page by page in :mod:`.billings`; ``/usage`` (the provider's own usage
summary, for reconciliation) is a single call made here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import ApiError, AuthError, DataError
from ..models import ProviderUsage
from ..money import MAX_AMOUNT_MICROS, SUM_LIMIT_MICROS, format_micros, parse_amount
from ..period import Window
from .client import BillingClient
from .jsonexact import is_number
from .records import encodable

BILLINGS_PATH = "/api/v3/account/billings"
USAGE_PATH = "/api/v3/account/usage"
BALANCE_PATH = "/api/v3/account/balance"


def fetch_provider_usage(client: BillingClient, window: Window) -> tuple[Any, str | None]:
    """The provider's own per-model usage for the window's days, or a warning if it cannot be had.

    The answer's ``data`` is returned as received (numbers exact), to be archived and read with
    :func:`parse_provider_usage`. A rejected key still stops the run (AuthError).
    """
    params = {"start_date": window.first_day.isoformat(), "end_date": window.last_day.isoformat()}
    try:
        return client.get_data(USAGE_PATH, params), None
    except AuthError:
        raise
    except ApiError as exc:
        return None, f"reconciliation skipped: the usage summary could not be fetched ({exc})"


USAGE_COLUMNS = ["model", "currency", "count", "amount_micros"]


def usage_in_provider_days(records: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Completed usage per (model, currency) of the records in the provider's days of ``window``.

    What the provider's usage summary should equal: its days are whole UTC days
    (:attr:`~exporter.period.Window.provider_days`), which differ from the export's local-time
    period when ``--timezone`` is not UTC. ``records`` must span them (the billing query is wider
    than the window) and hold each record once. Columns :data:`USAGE_COLUMNS`; ``amount_micros``
    is negative spend, as in ``by_model``. Usage is what the journal books as usage: type
    ``usage``, status ``completed``, amount below zero.
    """
    start, end = window.provider_days
    instants = records["created_at"]
    usage = records[
        (instants >= start) & (instants < end) & (records["type"] == "usage")
        & (records["status"] == "completed") & (records["amount_micros"] < 0)
    ]
    grouped = (
        pd.DataFrame({
            "model": usage["model"].astype("str"),
            "currency": usage["currency"].astype("str"),
            "amount_micros": usage["amount_micros"],
        })
        .groupby(["model", "currency"])
        .agg(count=("amount_micros", "size"), amount_micros=("amount_micros", "sum"))
        .reset_index()
    )
    return grouped.astype({"count": "int64", "amount_micros": "int64"})[USAGE_COLUMNS]


def parse_provider_usage(data: Any) -> ProviderUsage:
    """The usage answer's ``data``, checked: DataError naming the field when it is malformed.

    Shape: ``{"period": "2024-01", "total_requests": 1250, "total_cost": 45.67, "by_model":
    [{"model": "wavespeed-ai/flux-dev", "requests": 500, "cost": 15.00}, ...]}``. A model listed
    twice is added up.
    """
    if not isinstance(data, dict):
        raise DataError("usage summary: 'data' must be an object")
    items = data.get("by_model")
    if not isinstance(items, list):
        raise DataError("usage summary: field 'by_model' is missing or not a list")
    costs: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"usage summary: by_model[{index}]"
        if not isinstance(item, dict):
            raise DataError(f"{where} must be an object")
        model = item.get("model")
        if not isinstance(model, str):
            raise DataError(f"{where}: field 'model' is missing or not a string")
        if not encodable([model]):
            raise DataError(f"{where}: field 'model' is not valid Unicode text (a lone surrogate): {model[:40]!r}")
        costs[model] = costs.get(model, 0) + _amount(item.get("cost"), f"{where} ({model}): field 'cost'")
    if sum(map(abs, costs.values())) > SUM_LIMIT_MICROS:
        raise DataError("usage summary: the costs add up to more than can be compared exactly")
    total = data.get("total_cost")
    return ProviderUsage(costs, None if total is None else _amount(total, "usage summary: field 'total_cost'"))


def _amount(value: Any, where: str) -> int:
    if not is_number(value):
        raise DataError(f"{where} must be a JSON number")
    try:
        micros, _ = parse_amount(value)
    except ValueError as exc:
        raise DataError(f"{where} {exc}") from None
    if abs(micros) > MAX_AMOUNT_MICROS:
        raise DataError(f"{where} {value} is beyond ±{format_micros(MAX_AMOUNT_MICROS, 0)}")
    return micros  # a negative cost is odd but comparable: it shows as a mismatch


def fetch_balance(client: BillingClient) -> tuple[int, str]:
    """The provider's credit balance now: (exact micros, currency). DataError when malformed.

    Shape: ``{"balance": 156.78, "currency": "USD"}``.
    """
    data = client.get_data(BALANCE_PATH, {})
    if not isinstance(data, dict):
        raise DataError("balance: 'data' must be an object")
    currency = data.get("currency")
    if not isinstance(currency, str) or not currency.strip():
        raise DataError("balance: field 'currency' is missing or not a string")
    return _amount(data.get("balance"), "balance: field 'balance'"), currency.strip()
