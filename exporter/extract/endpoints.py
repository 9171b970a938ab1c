"""The account API's endpoints (both generations, docs/api.md), and the calls other than the billing walk.

The billing records are walked page by page in :mod:`.billings` (the request of each generation
in :mod:`.generations`); the provider's own usage summary (for reconciliation) and its balance
(for the roll-forward) are read here, from the generation the billing walk found.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import ApiError, AuthError, DataError
from ..models import ProviderUsage
from ..money import MAX_AMOUNT_MICROS, SUM_LIMIT_MICROS, format_micros, parse_amount
from ..days import day_number
from ..period import Window
from .jsonexact import is_number
from .records import encodable

if TYPE_CHECKING:  # the HTTP client loads requests: only a run that calls the API imports it (pipeline._client)
    from .client import BillingClient

# legacy generation ("How to Check Billings" as first published)
BILLINGS_PATH = "/api/v3/account/billings"
USAGE_PATH = "/api/v3/account/usage"
BALANCE_PATH = "/api/v3/account/balance"
# current generation (the vendor's pages and CLI today)
SEARCH_PATH = "/api/v3/billings/search"
USAGE_STATS_PATH = "/api/v3/user/usage_stats"
CURRENT_BALANCE_PATH = "/api/v3/balance"
_CURRENCY = re.compile(r"[A-Z]{3}")
USAGE_STATS_MAX_DAYS = 31  # the most days one usage_stats query may span
# what a server answers for an endpoint it does not have (501: a server with no POST at all)
ABSENT_STATUSES = frozenset({404, 405, 501})


def fetch_provider_usage(client: BillingClient, window: Window, api: str = "legacy") -> tuple[Any, str | None]:
    """The provider's own per-model usage for the window's UTC days, or a warning if it cannot be had.

    With the current API: ``usage_stats`` in spans of at most 31 days, falling back to the legacy
    ``/account/usage`` when it is not there. The answer is returned as received (numbers exact),
    to be archived and read with :func:`parse_provider_usage`. A rejected key still stops the
    run (AuthError).
    """
    try:
        if api == "current":
            try:
                spans = [client.post_data(USAGE_STATS_PATH, span) for span in usage_stats_spans(window)]
                data: Any = None if None in spans else {"usage_stats": spans}
                return data, None if data is not None else _NO_DATA
            except ApiError as exc:
                if exc.status not in ABSENT_STATUSES:
                    raise
        params = {"start_date": window.first_day.isoformat(), "end_date": window.last_day.isoformat()}
        data = client.get_data(USAGE_PATH, params)
    except AuthError:
        raise
    except ApiError as exc:
        return None, f"reconciliation skipped: the usage summary could not be fetched ({exc})"
    return data, None if data is not None else _NO_DATA


_NO_DATA = "reconciliation skipped: the provider's usage summary answered without data"

# how each usage endpoint rounds its spend (docs/api.md): usage_stats to 3 decimals, /account/usage to cents
USAGE_STATS_UNIT_MICROS = 1_000
ACCOUNT_USAGE_UNIT_MICROS = 10_000


def fetch_provider_days(client: BillingClient, days: list[date], api: str = "legacy") -> tuple[pd.DataFrame, int]:
    """The provider's completed usage per UTC day and model over ``days`` (docs/booking.md,
    "Finding late changes"): a frame of ``recheck.DAY_USAGE_COLUMNS`` and the unit (micros) it is
    rounded to. ``usage_stats`` in spans of at most 31 days (its ``daily_usage``), or, when it is
    not there (or with the legacy API), ``/account/usage`` one day at a time. ApiError, AuthError
    or DataError when it cannot be had."""
    rows: list[tuple[int, str, int, int]] = []
    if api == "current":
        try:
            window = Window(min(days), max(days), "UTC", "days")
            for span in usage_stats_spans(window):
                rows += _daily_rows(client.post_data(USAGE_STATS_PATH, span))
            return _day_frame(rows, days), USAGE_STATS_UNIT_MICROS
        except ApiError as exc:
            if exc.status not in ABSENT_STATUSES:
                raise
            rows = []
    for day in days:
        data = client.get_data(USAGE_PATH, {"start_date": day.isoformat(), "end_date": day.isoformat()})
        counts = _per_model_counts(data, "by_model", "model", "requests", "usage summary")
        costs, _ = _per_model(data, "by_model", "model", "cost", f"usage summary of {day}")
        rows += [(day_number(day), model, counts.get(model, 0), cost) for model, cost in costs.items()]
    return _day_frame(rows, days), ACCOUNT_USAGE_UNIT_MICROS


def _daily_rows(data: Any) -> list[tuple[int, str, int, int]]:
    """(day, model, count, spend) of a usage_stats answer's ``daily_usage``."""
    if not isinstance(data, dict) or not isinstance(data.get("daily_usage"), list):
        raise DataError("usage_stats: field 'daily_usage' is missing or not a list")
    rows = []
    for index, entry in enumerate(data["daily_usage"]):
        where = f"usage_stats: daily_usage[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("date"), str):
            raise DataError(f"{where} must be an object with a 'date'")
        try:
            day = day_number(date.fromisoformat(entry["date"][:10]))
        except ValueError:
            raise DataError(f"{where}: field 'date' is not a date: {entry['date'][:20]!r}") from None
        counts = _per_model_counts(entry, "models", "model_uuid", "count", where)
        costs, _ = _per_model(entry, "models", "model_uuid", "amount", where)
        rows += [(day, model, counts.get(model, 0), cost) for model, cost in costs.items()]
    return rows


def _per_model_counts(data: Any, list_key: str, model_key: str, count_key: str, where: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for index, item in enumerate(data.get(list_key) or [] if isinstance(data, dict) else []):
        value = item.get(count_key) if isinstance(item, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DataError(f"{where}: {list_key}[{index}]: field {count_key!r} must be a count")
        model = item.get(model_key)
        counts[str(model)] = counts.get(str(model), 0) + value
    return counts


def _day_frame(rows: list[tuple[int, str, int, int]], days: list[date]) -> pd.DataFrame:
    wanted = {day_number(d) for d in days}
    frame = pd.DataFrame(rows, columns=["day", "model", "count", "spend_micros"])
    frame = frame[frame["day"].isin(wanted)]
    return frame.groupby(["day", "model"], as_index=False).sum().astype({"day": "int64", "count": "int64",
                                                                         "spend_micros": "int64"})


def usage_stats_spans(window: Window) -> list[dict[str, str]]:
    """``usage_stats`` bodies covering the window's UTC days, at most 31 days each, end inclusive
    to the second as the vendor's example is."""
    first, last = window.first_day, window.last_day
    spans = []
    while first <= last:
        end = min(last, first + timedelta(days=USAGE_STATS_MAX_DAYS - 1))
        spans.append({"start_time": f"{first.isoformat()}T00:00:00Z", "end_time": f"{end.isoformat()}T23:59:59Z"})
        first = end + timedelta(days=1)
    return spans


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
    usage = records.loc[
        (instants >= start) & (instants < end) & (records["type"] == "usage")
        & (records["status"] == "completed") & (records["amount_micros"] < 0),
        ["model", "currency", "amount_micros"],  # only what is summed: no copy of the other columns
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
    """The usage answer as archived, checked: DataError naming the field when it is malformed.

    Legacy shape: ``{"period": "2024-01", "total_requests": 1250, "total_cost": 45.67, "by_model":
    [{"model": "wavespeed-ai/flux-dev", "requests": 500, "cost": 15.00}, ...]}``. Current:
    ``{"usage_stats": [<data of each span>]}``, each ``{"per_model_usage": [{"model_uuid",
    "total_cost", ...}], "summary": {"total_cost", ...}, ...}``. A model listed twice (or in
    several spans) is added up.
    """
    if not isinstance(data, dict):
        raise DataError("usage summary: 'data' must be an object")
    if "usage_stats" in data:
        spans = data["usage_stats"]
        if not isinstance(spans, list):
            raise DataError("usage summary: 'usage_stats' must be a list")
        parts = [_per_model(span, "per_model_usage", "model_uuid", "total_cost", f"usage_stats[{i}]")
                 for i, span in enumerate(spans)]
        costs: dict[str, int] = {}
        for part, _ in parts:
            for model, micros in part.items():
                costs[model] = costs.get(model, 0) + micros
        totals = [total for _, total in parts]
        total = None if any(t is None for t in totals) else sum(t for t in totals if t is not None)
    else:
        costs, total = _per_model(data, "by_model", "model", "cost", "usage summary")
    if sum(map(abs, costs.values())) > SUM_LIMIT_MICROS:
        raise DataError("usage summary: the costs add up to more than can be compared exactly")
    return ProviderUsage(costs, total)


def _per_model(data: Any, list_key: str, model_key: str, cost_key: str, name: str) -> tuple[dict[str, int], int | None]:
    """Costs per model of one summary object, and its total cost (None when it gives none)."""
    if not isinstance(data, dict):
        raise DataError(f"{name}: 'data' must be an object")
    items = data.get(list_key)
    if not isinstance(items, list):
        raise DataError(f"{name}: field {list_key!r} is missing or not a list")
    costs: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"{name}: {list_key}[{index}]"
        if not isinstance(item, dict):
            raise DataError(f"{where} must be an object")
        model = item.get(model_key)
        if not isinstance(model, str):
            raise DataError(f"{where}: field {model_key!r} is missing or not a string")
        if not encodable([model]):
            raise DataError(f"{where}: field {model_key!r} is not valid Unicode text (a lone surrogate): {model[:40]!r}")
        costs[model] = costs.get(model, 0) + _amount(item.get(cost_key), f"{where} ({model}): field {cost_key!r}")
    summary = data.get("summary") if list_key == "per_model_usage" else data
    total = summary.get("total_cost") if isinstance(summary, dict) else None
    return costs, None if total is None else _amount(total, f"{name}: field 'total_cost'")


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


def fetch_balance(client: BillingClient, api: str = "legacy") -> tuple[int, str]:
    """The provider's credit balance now: (exact micros, currency). DataError when malformed.

    Legacy shape: ``{"balance": 156.78, "currency": "USD"}``; current (``GET /api/v3/balance``):
    ``{"balance": 156.78}``, in USD. Each generation's path first, the other's if it is absent.
    """
    paths = (CURRENT_BALANCE_PATH, BALANCE_PATH) if api == "current" else (BALANCE_PATH, CURRENT_BALANCE_PATH)
    try:
        data = client.get_data(paths[0], {})
    except ApiError as exc:
        if exc.status not in ABSENT_STATUSES:
            raise
        data = client.get_data(paths[1], {})
    if not isinstance(data, dict):
        raise DataError("balance: 'data' must be an object")
    currency = data.get("currency", "USD")  # the current API documents USD and sends no currency
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise BadBalanceCurrency(f"balance: field 'currency' must be three capital letters (ISO 4217), "
                                 f"got {str(currency)[:20]!r}")
    return _amount(data.get("balance"), "balance: field 'balance'"), currency


class BadBalanceCurrency(DataError):
    """The balance names no currency code (``usd``, control characters, ...): exit 5, never a
    roll-forward in a currency that is not one (docs/booking.md, "Roll-forward")."""
