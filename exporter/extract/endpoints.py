"""The account API's endpoints, and the calls other than the billing walk.

``/billings`` is walked page by page in :mod:`.billings`; ``/usage`` (the provider's own usage
summary, for reconciliation) is a single call made here.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError, AuthError, DataError
from ..models import ProviderUsage
from ..money import MAX_AMOUNT_MICROS, SUM_LIMIT_MICROS, format_micros, parse_amount
from ..period import Window
from .client import BillingClient
from .jsonexact import is_number

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
