"""The consolidated pack's figures: each account's (:func:`..figures.compute`, the one place the
monthly report's figures are made) side by side per currency, and their sums, exact int micros.

Spend, change and top models of an account are exactly what its own pack's Summary and
report.html show; a total is the sum of the accounts' figures, never recomputed from records.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

from ...report import Consolidated, Report
from ..figures import CurrencyFigures, ModelLine, compute

TOP_MODELS_PER_ACCOUNT = 5
"""Models shown per account side by side; the rest of the account's are one "Other" line."""


@dataclass(frozen=True)
class AccountLine:
    """One account's figures in one currency."""

    account: str
    tz_name: str
    previous_label: str | None
    figures: CurrencyFigures


@dataclass(frozen=True)
class CurrencyTotal:
    """The accounts' lines of one currency and their sums."""

    currency: str
    lines: tuple[AccountLine, ...]

    def _sum(self, name: str) -> int | None:
        """The exact sum of the accounts' figure ``name``; None when one is unknown (no partial total)."""
        values = [getattr(line.figures, name) for line in self.lines]
        return None if any(v is None for v in values) else sum(int(v) for v in values)

    @property
    def spend_micros(self) -> int:
        return int(self._sum("spend_micros") or 0)

    @property
    def usage_micros(self) -> int:
        return int(self._sum("usage_micros") or 0)

    @property
    def refunded_micros(self) -> int:
        return int(self._sum("refunded_micros") or 0)

    @property
    def tasks(self) -> int:
        return int(self._sum("tasks") or 0)

    @property
    def topups_micros(self) -> int | None:
        return self._sum("topups_micros")

    @property
    def previous_spend_micros(self) -> int | None:
        return self._sum("previous_spend_micros")

    @property
    def change_micros(self) -> int | None:
        previous = self.previous_spend_micros
        return None if previous is None else self.spend_micros - previous

    def share(self, line: AccountLine) -> Decimal:
        """The account's part of the currency's AI spend (0 when there is none)."""
        total = self.spend_micros
        return Decimal(line.figures.spend_micros) / Decimal(total) if total else Decimal(0)


def change_ratio(change: int | None, previous: int | None) -> Decimal | None:
    """Change over the previous spend; None when unknown or the previous was 0."""
    if change is None or not previous:
        return None
    return Decimal(change) / Decimal(previous)


def side_by_side(consolidated: Consolidated) -> tuple[CurrencyTotal, ...]:
    """Per currency (sorted), every account having figures in it, in the accounts' order."""
    lines: dict[str, list[AccountLine]] = {}
    for account in consolidated.accounts:
        figures = compute(account.report)
        for currency in figures.currencies:
            lines.setdefault(currency.currency, []).append(
                AccountLine(account.name, figures.tz_name, figures.previous_label, currency))
    return tuple(CurrencyTotal(currency, tuple(lines[currency])) for currency in sorted(lines))


def top_models(figures: CurrencyFigures, count: int = TOP_MODELS_PER_ACCOUNT) -> tuple[ModelLine, ...]:
    """The account's biggest models, the rest (and its own "Other") as one "Other" line."""
    shown = [line for line in figures.models if not line.other][:count]
    rest = [line for line in figures.models if line not in shown]
    if not rest:
        return tuple(shown)
    models = sum(line.models for line in rest)
    usage = sum(line.usage_micros for line in rest)
    share = sum((line.share for line in rest), Decimal(0))
    other = ModelLine(f"Other ({models} models)", usage, sum(line.tasks for line in rest), share, None, models, True)
    return (*shown, other)


def with_account(consolidated: Consolidated, frame_of: str) -> pd.DataFrame:
    """The accounts' frames (``Summaries.<frame_of>``) one after another, an ``account`` column first."""
    frames = []
    for account in consolidated.accounts:
        frame: pd.DataFrame = getattr(account.report.summaries, frame_of)
        frames.append(frame.assign(account=account.name)[["account", *frame.columns]])
    return pd.concat(frames, ignore_index=True)


def totals(consolidated: Consolidated) -> pd.DataFrame:
    """Completed records per currency and type: the sum of the accounts' ``Summaries.totals`` (exact ints)."""
    frame = pd.concat([account.report.summaries.totals for account in consolidated.accounts], ignore_index=True)
    summed = frame.groupby(["currency", "type"], sort=True)[["count", "amount_micros"]].sum().reset_index()
    return summed.astype({"count": "int64", "amount_micros": "int64"})


def reports(consolidated: Consolidated) -> list[Report]:
    return [account.report for account in consolidated.accounts]


__all__ = ["AccountLine", "CurrencyTotal", "change_ratio", "reports", "side_by_side", "top_models", "totals",
           "with_account"]
