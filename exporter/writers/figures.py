"""The monthly report's figures, computed once from a Report: what the Summary sheet, the HTML
report (and the terminal) show, exact (int micros, Decimal ratios) and with spend POSITIVE.

Only the summary frames are read (by_model, by_key, by_day, totals, status_counts, rollforward,
history), never the detail rows, so this costs the same for ten records or a million.

Definitions (README, "Monthly report"):

- **usage** is the completed usage of the period, positive; **refunded tasks** the completed
  credits back that name a model; **AI spend** = usage - refunded tasks.
- **change** compares AI spend with the previous period of the books (``BooksBefore.history`` row
  of ``BooksBefore.previous_label``); per model it is the change in usage (``by_model.change_micros``,
  usage having a negative sign there, so spend change = -change_micros).
- **runway** = closing credit / average daily AI spend, the average over the period's days up
  to the day the report was made (a period not over yet is averaged over its elapsed days);
  none under a cent a day.
- **late changes** to closed periods: their AI spend (usage and refunded tasks) positive = more
  spend, counted by the records that moved money; the headline gives AI spend with them too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

import pandas as pd

from ..books.adjustments import LateChanges, late_changes
from ..models import COMPLETED, RollForward
from ..report import Report
from ..money import MICROS_PER_CENT, MICROS_PER_UNIT, allocate_cents, round_to_cents
from .amounts_text import cents_text, money, percent, price, signed_money

TOP_MODELS = 10
"""Models shown one by one; the rest are summed as "Other" (never silently dropped)."""
TOP_KEYS = 5
"""API keys shown one by one on the Summary; the rest are summed as "Other" (README, "Spend per API key")."""
HISTORY_MONTHS = 12
NO_MODEL = "(no model)"
NO_KEY = "(no key)"


@dataclass(frozen=True)
class ModelLine:
    """One row of the top-models table: a model, or "Other" standing for ``models`` models."""

    label: str
    usage_micros: int  # positive: what the model's tasks cost, before refunds
    tasks: int
    share: Decimal  # of the currency's usage, exact ratio
    change_micros: int | None  # change in usage vs the previous period, positive = more spend
    models: int = 1
    other: bool = False

    @property
    def unit_cost(self) -> Decimal | None:
        """Average price of one task, to the micro; None without tasks."""
        if not self.tasks:
            return None
        return (Decimal(self.usage_micros) / (self.tasks * MICROS_PER_UNIT)).quantize(Decimal("0.000001"), ROUND_HALF_UP)

    @property
    def change_ratio(self) -> Decimal | None:
        """Change over the previous usage; None when unknown or the model had none before."""
        if self.change_micros is None or self.usage_micros == self.change_micros:
            return None
        return _ratio(self.change_micros, self.usage_micros - self.change_micros)


@dataclass(frozen=True)
class KeyLine:
    """One row of the by-API-key table: a key, or "Other" standing for ``keys`` keys."""

    label: str
    key_id: str  # "" for "Other" and for records without a key
    usage_micros: int  # positive
    refunded_micros: int  # refunded tasks of the key, positive
    tasks: int
    share: Decimal  # of the currency's AI spend, exact ratio
    keys: int = 1
    other: bool = False

    @property
    def spend_micros(self) -> int:
        return self.usage_micros - self.refunded_micros


@dataclass(frozen=True)
class LeftOut:
    """Records that do not count (status other than completed), per status, type and currency."""

    status: str
    type: str
    currency: str
    count: int
    amount_micros: int  # what they are worth, as a magnitude


@dataclass(frozen=True)
class CurrencyFigures:
    """The headline, the model table and the chart series of one currency."""

    currency: str
    usage_micros: int  # positive
    refunded_micros: int  # refunded tasks, positive
    tasks: int
    topups_micros: int | None  # None when unknown (the current API lists none and the balance cannot tell)
    topups_count: int
    previous_spend_micros: int | None  # AI spend of the previous period; None when unknown
    previous_refunded_micros: int | None
    rollforward: RollForward | None
    days: int  # days the daily average is taken over
    models: tuple[ModelLine, ...]  # top models, then "Other" when there are more
    model_count: int
    daily: tuple[tuple[date, int], ...]  # every day of the period: usage, positive
    monthly: tuple[tuple[str, int], ...]  # up to 12 periods of AI spend, oldest first; () without books
    keys: tuple[KeyLine, ...] = ()  # top API keys, then "Other"; () when no record names a key
    key_count: int = 0
    late_spend_micros: int = 0  # AI spend of the late changes to closed periods booked here, positive = more

    @property
    def topups_note(self) -> str:
        """What the top-ups figure is: records counted, or derived from the balance, or unknown."""
        row = self.rollforward
        if row is not None and row.topups_derived:
            return "derived from the provider's balance" if self.topups_micros is not None else \
                "unknown: the current API lists no top-ups"
        return f"{self.topups_count:,} top-up{'s' if self.topups_count != 1 else ''}"

    @property
    def shows_late_spend(self) -> bool:
        """Whether the headline states AI spend with the late changes too: when they move it by a cent."""
        return round_to_cents(self.late_spend_micros) != 0

    @property
    def spend_with_late_micros(self) -> int:
        """This period's AI spend plus the late changes' (what the books' expense moved by)."""
        return self.spend_micros + self.late_spend_micros

    @property
    def spend_micros(self) -> int:
        return self.usage_micros - self.refunded_micros

    @property
    def change_micros(self) -> int | None:
        return None if self.previous_spend_micros is None else self.spend_micros - self.previous_spend_micros

    @property
    def change_ratio(self) -> Decimal | None:
        """Change as a fraction of the previous spend; None when unknown or the previous was 0."""
        if self.change_micros is None or not self.previous_spend_micros:
            return None
        return _ratio(self.change_micros, self.previous_spend_micros)

    @property
    def compares(self) -> bool:
        """Whether anything is known about the previous period (else the change columns are left out)."""
        return self.previous_spend_micros is not None or any(m.change_micros is not None for m in self.models)

    @property
    def refunded_change_micros(self) -> int | None:
        """Change of the refunded-tasks line in spend terms (more refunds = less spend)."""
        if self.previous_refunded_micros is None:
            return None
        return -(self.refunded_micros - self.previous_refunded_micros)

    @property
    def closing_micros(self) -> int | None:
        return None if self.rollforward is None else self.rollforward.closing_micros

    @property
    def average_daily_micros(self) -> int:
        """AI spend per day over :attr:`days`, rounded to the micro (half up)."""
        return int((Decimal(self.spend_micros) / self.days).quantize(Decimal(1), ROUND_HALF_UP))

    @property
    def runway_days(self) -> int | None:
        """Whole days the closing credit lasts at this period's average daily spend.

        None when the closing balance is unknown or the spend is too small to be a rate: under a
        cent a day on average (a month of one 0.0025 task would "last" millions of days).
        """
        closing = self.closing_micros
        if closing is None or self.spend_micros <= 0 or self.average_daily_micros < MICROS_PER_CENT:
            return None
        if closing <= 0:
            return 0
        return int((Decimal(closing) * self.days / Decimal(self.spend_micros)).to_integral_value(ROUND_FLOOR))

    def table_cents(self) -> list[int]:
        """The model rows, then refunded tasks (negative), rounded to cents so that they add up to
        the rounded AI spend: the largest-remainder rule of the journal lines (docs/booking.md)."""
        parts = {i: line.usage_micros for i, line in enumerate(self.models)}
        parts[len(self.models)] = -self.refunded_micros
        cents = allocate_cents(parts)
        return [cents[i] for i in range(len(parts))]

    def key_cents(self) -> list[int]:
        """The key rows' AI spend in cents, adding up to the rounded AI spend (the same rule)."""
        cents = allocate_cents({i: line.spend_micros for i, line in enumerate(self.keys)})
        return [cents[i] for i in range(len(self.keys))]


@dataclass(frozen=True)
class Figures:
    """Everything the monthly report shows, per currency, plus what was left out."""

    account: str
    label: str
    first_day: date
    last_day: date
    tz_name: str
    previous_label: str | None
    currencies: tuple[CurrencyFigures, ...]
    left_out: tuple[LeftOut, ...]
    records: int  # records of the period, every status
    warnings: tuple[str, ...]
    late_changes: tuple[LateChanges, ...] = ()


def compute(report: Report) -> Figures:
    """The report's figures (pure; reads only the summary frames)."""
    window = report.context.window
    days = _elapsed_days(report)
    rollforward = {r.currency: r for r in report.booked.rollforward}
    currencies = sorted(
        set(report.summaries.by_model["currency"].astype("str"))
        | set(report.summaries.totals["currency"].astype("str"))
        | set(rollforward)
    )
    left = report.summaries.status_counts[report.summaries.status_counts["status"] != COMPLETED]
    return Figures(
        account=report.context.account,
        label=window.label,
        first_day=window.first_day,
        last_day=window.last_day,
        tz_name=window.tz_name,
        previous_label=report.books.previous_label,
        currencies=tuple(_currency(report, c, rollforward.get(c), days) for c in currencies),
        left_out=tuple(
            LeftOut(str(r.status), str(r.type), str(r.currency), int(r.count), abs(int(r.amount_micros)))
            for r in left.sort_values(["status", "type", "currency"]).itertuples(index=False)
        ),
        records=int(report.summaries.status_counts["count"].sum()),
        warnings=report.warnings,
        late_changes=late_changes(report.booked.adjustments),
    )


def _elapsed_days(report: Report) -> int:
    """Days of the period up to the report's local date (all of them once the period is over)."""
    window, generated = report.context.window, report.context.generated_at
    today = generated.astimezone(window.tz).date() if generated.tzinfo else generated.date()
    total = (window.last_day - window.first_day).days + 1
    return max(1, min(total, (today - window.first_day).days + 1))


def _currency(report: Report, currency: str, rollforward: RollForward | None, days: int) -> CurrencyFigures:
    by_model = report.summaries.by_model[report.summaries.by_model["currency"].astype("str") == currency]
    totals = report.summaries.totals
    totals = totals[(totals["currency"] == currency) & (totals["type"] == "topup")]
    previous = _history_row(report, report.books.previous_label, currency)
    spend_now = -int(by_model["net_micros"].sum())
    by_key = report.summaries.by_key[report.summaries.by_key["currency"].astype("str") == currency]
    late = sum(change.spend_micros for change in late_changes(report.booked.adjustments) if change.currency == currency)
    topups: int | None = int(totals["amount_micros"].sum())
    if rollforward is not None and rollforward.topups_derived:  # docs/booking.md, "Top-ups with the current API"
        topups = rollforward.topups_micros if rollforward.topups_source.startswith("derived") else None
    return CurrencyFigures(
        currency=currency,
        usage_micros=-int(by_model["amount_micros"].sum()),
        refunded_micros=int(by_model["refunds_micros"].sum()),
        tasks=int(by_model["count"].sum()),
        topups_micros=topups,
        topups_count=int(totals["count"].sum()),
        previous_spend_micros=None if previous is None else previous[0],
        previous_refunded_micros=None if previous is None else previous[1],
        rollforward=rollforward,
        days=days,
        models=_model_lines(by_model),
        model_count=int((by_model["amount_micros"] != 0).sum()),
        daily=_daily(report, currency),
        monthly=_monthly(report, currency, spend_now),
        keys=_key_lines(by_key, spend_now),
        key_count=len(by_key),
        late_spend_micros=late,
    )


def _model_lines(by_model: pd.DataFrame) -> tuple[ModelLine, ...]:
    """Biggest usage first (then name); past :data:`TOP_MODELS` the rest become one "Other" line.

    Eleven models show as eleven lines: "Other (1 model)" would hide a name to save no space. A
    model without usage this period (gone since the previous one, or only refunded) is no top
    model: it stays in the All models table, its refunds in the refunded-tasks line.
    """
    by_model = by_model[by_model["amount_micros"] != 0]
    frame = by_model.assign(model=by_model["model"].astype("str")).sort_values(
        ["amount_micros", "model"], kind="stable", ignore_index=True
    )
    total_usage = -int(frame["amount_micros"].sum())
    has_change = "change_micros" in frame.columns
    lines = []
    for r in frame.itertuples(index=False):
        change = getattr(r, "change_micros", None) if has_change else None
        lines.append(ModelLine(
            label=str(r.model) or NO_MODEL,
            usage_micros=-int(r.amount_micros),
            tasks=int(r.count),
            share=_share(-int(r.amount_micros), total_usage),
            change_micros=None if change is None or pd.isna(change) else -int(change),
        ))
    if len(lines) <= TOP_MODELS + 1:
        return tuple(lines)
    rest = lines[TOP_MODELS:]
    usage = sum(line.usage_micros for line in rest)
    changes = [line.change_micros for line in rest]
    other = ModelLine(
        label=f"Other ({len(rest)} models)",
        usage_micros=usage,
        tasks=sum(line.tasks for line in rest),
        share=_share(usage, total_usage),
        change_micros=None if any(c is None for c in changes) else sum(c for c in changes if c is not None),
        models=len(rest),
        other=True,
    )
    return (*lines[:TOP_MODELS], other)


def _key_lines(by_key: pd.DataFrame, spend: int) -> tuple[KeyLine, ...]:
    """Biggest AI spend first (then name, id); past :data:`TOP_KEYS` the rest become one "Other" line."""
    frame = by_key.assign(api_key_name=by_key["api_key_name"].astype("str"), api_key_id=by_key["api_key_id"].astype("str"))
    frame = frame.sort_values(["net_micros", "api_key_name", "api_key_id"], kind="stable", ignore_index=True)
    lines = [
        KeyLine(
            label=r.api_key_name or (f"(unnamed key {r.api_key_id})" if r.api_key_id else NO_KEY),
            key_id=r.api_key_id,
            usage_micros=-int(r.usage_micros),
            refunded_micros=int(r.refunds_micros),
            tasks=int(r.count),
            share=_share(-int(r.net_micros), spend),
        )
        for r in frame.itertuples(index=False)
    ]
    if len(lines) <= TOP_KEYS + 1:
        return tuple(lines)
    rest = lines[TOP_KEYS:]
    usage, refunded = sum(line.usage_micros for line in rest), sum(line.refunded_micros for line in rest)
    other = KeyLine(
        label=f"Other ({len(rest)} keys)", key_id="", usage_micros=usage, refunded_micros=refunded,
        tasks=sum(line.tasks for line in rest), share=_share(usage - refunded, spend), keys=len(rest), other=True,
    )
    return (*lines[:TOP_KEYS], other)


def _share(part: int, total: int) -> Decimal:
    return _ratio(part, total) if total else Decimal(0)


def _ratio(numerator: int, denominator: int) -> Decimal:
    ratio = (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    return abs(ratio) if ratio == 0 else ratio  # never "-0.0000"


def _daily(report: Report, currency: str) -> tuple[tuple[date, int], ...]:
    """Usage per day, positive, for every day of the period (0 on a day without usage)."""
    by_day = report.summaries.by_day[report.summaries.by_day["currency"].astype("str") == currency]
    usage = {pd.Timestamp(d).date(): -int(u) for d, u in zip(by_day["date"], by_day["usage_micros"])}
    first, last = report.context.window.first_day, report.context.window.last_day
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return tuple((day, usage.get(day, 0)) for day in days)


def _history_row(report: Report, label: str | None, currency: str) -> tuple[int, int] | None:
    """(AI spend, refunded tasks) of one period of the books, positive; None when not held."""
    history = report.books.history
    if label is None or history is None:
        return None
    rows = history[(history["label"] == label) & (history["currency"] == currency)]
    if rows.empty:
        return None
    usage, refunds = -int(rows["usage_micros"].sum()), int(rows["refunds_micros"].sum())
    return usage - refunds, refunds


def _monthly(report: Report, currency: str, spend_now: int) -> tuple[tuple[str, int], ...]:
    """AI spend per period from the books, this period included, the last 12; () without books."""
    history = report.books.history
    if history is None:
        return ()
    rows = history[history["currency"] == currency]
    series = [
        (str(label), -int(usage) - int(refunds))
        for label, usage, refunds in zip(rows["label"], rows["usage_micros"], rows["refunds_micros"])
        if str(label) != report.context.window.label
    ]
    series.append((report.context.window.label, spend_now))
    return tuple(series[-HISTORY_MONTHS:])


# --------------------------------------------------------------------------- text for people


def left_out_text(items: Sequence[LeftOut]) -> str:
    """One line for the records that do not count, counts and amounts."""
    if not items:
        return "Left out: nothing (every record of the period is completed)."
    parts = [
        f"{i.count:,} {i.status} {i.type} record{'s' if i.count != 1 else ''} ({money(i.amount_micros)} {i.currency})"
        for i in items
    ]
    return "Left out (not completed, not counted above): " + "; ".join(parts) + "."


def late_changes_text(items: Sequence[LateChanges]) -> str | None:
    """One line for the late changes to closed periods booked in this one (None when there are
    none): AI spend as spend (positive = more spend), anything else as its effect on the credit."""
    if not items:
        return None
    return "Late changes to closed periods, booked in this one (adjustments.csv): " + "; ".join(map(late_change_text, items)) + "."


def late_change_text(item: LateChanges, amount: Callable[[int], str] = signed_money) -> str:
    """``2024-01: 3 records, AI spend +2.24 USD, other credit -10.00 USD`` (``amount`` formats a
    signed change: to the cent here, exact in the terminal)."""
    text = f"{item.period}: {item.count:,} record{'s' if item.count != 1 else ''}"
    if item.spend_micros or not item.other_micros:
        text += f", AI spend {amount(item.spend_micros)} {item.currency}"
    if item.other_micros:
        text += f", other credit {amount(item.other_micros)} {item.currency}"
    return text


def period_text(figures: Figures) -> str:
    return f"{figures.first_day.isoformat()} to {figures.last_day.isoformat()}, time zone {figures.tz_name}"


__all__ = [
    "HISTORY_MONTHS", "NO_KEY", "TOP_KEYS", "TOP_MODELS", "CurrencyFigures", "Figures", "KeyLine", "LateChanges",
    "LeftOut", "ModelLine", "cents_text", "compute", "late_change_text", "late_changes_text", "left_out_text", "money",
    "percent", "period_text", "price", "signed_money",
]
