"""Tie the exported usage out against the provider's own usage summary.

The provider's summary (``GET /api/v3/account/usage``, read by
:func:`exporter.extract.endpoints.parse_provider_usage`) gives positive spend per model; ``cost`` is positive spend rounded by the provider (to cents), so a model is ``ok`` when the
exact exported spend is within one cent of it.

Currency: the summary has none. With one exported currency (the usual case) the summary is taken
to be in it. With several, a provider model is compared with the exported spend of that model when
the model was exported in exactly one currency; a model exported in several currencies cannot be
compared (adding up different currencies means nothing), so its rows are reported unmatched
(``only_exported`` per currency, ``only_provider`` with currency "") and a warning says why. A
model only the provider lists takes the single exported currency, or "" when there are several.
The provider's ``total_cost`` is checked the same way against the exported total when there is
a single currency.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import tables
from ..models import ProviderUsage
from ..money import MICROS_PER_CENT, format_micros

RECONCILIATION_COLUMNS = tables.RECONCILIATION.names
TOLERANCE_MICROS = MICROS_PER_CENT  # the provider rounds each model to the cent


def reconcile(by_model: pd.DataFrame, provider: ProviderUsage) -> tuple[pd.DataFrame, list[str]]:
    """Compare exported usage with the provider's summary; one row per (model, currency).

    ``by_model`` has columns model, currency and amount_micros (negative spend), like
    ``Summaries.by_model``; the pipeline passes the usage of the provider's own days, which is the
    period's when the period is in UTC (the provider's days are UTC days).

    Returns the frame (columns :data:`RECONCILIATION_COLUMNS`, amounts as positive spend in
    micros, status ``ok``/``mismatch``/``only_exported``/``only_provider``) and a warning for
    every row that is not ``ok``.
    """
    costs, total_cost = provider.costs, provider.total_cost
    exported: dict[tuple[str, str], int] = {}
    for model, currency, micros in zip(by_model["model"], by_model["currency"], by_model["amount_micros"]):
        key = (str(model), str(currency))
        exported[key] = exported.get(key, 0) - int(micros)  # by_model holds negative spend
    currencies = sorted({currency for _, currency in exported})
    currencies_of: dict[str, list[str]] = {}
    for model, currency in sorted(exported):
        currencies_of.setdefault(model, []).append(currency)

    rows: list[tuple[str, str, int, int, str]] = []
    warnings: list[str] = []
    for model, cost in sorted(costs.items()):
        candidates = currencies_of.get(model, [])
        if len(candidates) > 1:
            warnings.append(
                f"reconciliation: {model} was exported in several currencies ({', '.join(candidates)}) "
                "but the provider's summary has no currency, so it cannot be compared"
            )
            rows.append((model, "", 0, cost, "only_provider"))
            continue
        currency = candidates[0] if candidates else (currencies[0] if len(currencies) == 1 else "")
        spend = exported.pop((model, currency), None)
        if spend is None:
            rows.append((model, currency, 0, cost, "only_provider"))
        else:
            status = "ok" if abs(spend - cost) <= TOLERANCE_MICROS else "mismatch"
            rows.append((model, currency, spend, cost, status))
    rows.extend((model, currency, spend, 0, "only_exported") for (model, currency), spend in exported.items())

    frame = pd.DataFrame(
        [(model, currency, spend, cost, spend - cost, status) for model, currency, spend, cost, status in rows],
        columns=RECONCILIATION_COLUMNS,
    )
    frame = frame.astype({"exported_micros": "int64", "provider_micros": "int64", "difference_micros": "int64"})
    frame = frame.sort_values(["currency", "model"], ignore_index=True)
    warnings.extend(_row_warning(row) for row in frame.itertuples(index=False) if row.status != "ok")

    if total_cost is not None and len(currencies) <= 1:
        spend = -int(by_model["amount_micros"].sum())
        if abs(spend - total_cost) > TOLERANCE_MICROS:
            warnings.append(
                f"reconciliation: exported usage {_money(spend, currencies)} differs from the provider's "
                f"total_cost {_money(total_cost, currencies)} by {format_micros(spend - total_cost)}"
            )
    return frame, warnings


def _money(micros: int, currencies: list[str]) -> str:
    return f"{format_micros(micros)} {currencies[0]}" if currencies else format_micros(micros)


def _row_warning(row: Any) -> str:
    model, currency = row.model or "(no model)", f" {row.currency}" if row.currency else ""
    if row.status == "only_exported":
        return f"reconciliation: {model} has {format_micros(row.exported_micros)}{currency} of exported usage but is not in the provider's summary"
    if row.status == "only_provider":
        return f"reconciliation: {model} is in the provider's summary ({format_micros(row.provider_micros)}{currency}) but has no exported usage"
    return (
        f"reconciliation: {model} differs from the provider's summary by {format_micros(row.difference_micros)}{currency} "
        f"(exported {format_micros(row.exported_micros)}, provider {format_micros(row.provider_micros)})"
    )


__all__ = ["RECONCILIATION_COLUMNS", "TOLERANCE_MICROS", "reconcile"]
