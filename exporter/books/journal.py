"""The journal: the one place that decides accounts, signs and rounding.

Every book format (IIF, QuickBooks Online journal and bank upload, Beancount, the workbook's
Journal sheet) is a layout of the entries built here; none of them looks at the records.

Only completed, non-zero records are booked, per currency, by the sign of ``amount_micros`` (the
record's effect on the prepaid credit balance); the roles are listed in :data:`exporter.models.Role`
and explained in docs/booking.md ("The booking model"). In short: the prepaid account (for usage
of a postpaid account: the payable) moves by the record's amount, the counter account by the
opposite. Top-ups, payouts, credits back without a model and suspense records are one entry each;
usage and refunded tasks are summarised per currency and calendar month (or local day), one line
per (expense account, class).

Rounding (docs/booking.md, "Rounding"): amounts are summed exactly and rounded once per entry: a
single entry is its amount rounded half-up to the cent; a summary's balance line is its exact
total rounded, and its counter lines share that total by the largest-remainder method.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import pandas as pd

from ..config import GRANULARITIES, Granularity
from ..errors import ConfigError, ExportError
from ..models import COMPLETED, SUMMARY_ROLES, JournalEntry, JournalLine, Role
from ..money import MICROS_PER_CENT, allocate_cents, format_cents, format_micros, round_to_cents
from ..period import Window
from ..transform import record_roles
from .mapping import AccountMapping
from .numbering import MAX_NUMBER, NumberRequest, assign_numbers, is_month

_MEMO_MODELS = 3  # models named in a summary line's memo before "+N more"


@dataclass(frozen=True)
class Journal:
    """The entries, in date and number order, and what the accountant should look at."""

    entries: tuple[JournalEntry, ...]
    warnings: tuple[str, ...] = ()


def build_journal(
    transactions: pd.DataFrame, window: Window, mapping: AccountMapping, granularity: Granularity = "monthly"
) -> Journal:
    """The journal entries of the completed records of ``transactions`` (the transactions frame).

    Every entry balances to the cent; per currency, the lines on the prepaid (and, when postpaid,
    payable) account add up to the records' exact effect on the balance within half a cent per
    entry. Raises ExportError if that does not hold (a bug), ConfigError for a bad granularity.
    """
    if granularity not in GRANULARITIES:
        raise ConfigError(f"journal granularity must be 'monthly' or 'daily', got {granularity!r}")
    done = transactions[(transactions["status"] == COMPLETED) & (transactions["amount_micros"] != 0)]
    roles = record_roles(done)
    builder = _Builder(window, mapping, granularity)
    for row in done.assign(role=roles)[~roles.isin([*SUMMARY_ROLES, "zero"])].itertuples(index=False):
        builder.single(row)
    for role in SUMMARY_ROLES:
        builder.summaries(done[roles == role], role)
    entries = _numbered(builder.drafts, window)
    _check_ties(entries, done, mapping, len(builder.dropped))
    return Journal(tuple(entries), tuple(builder.warnings()))


@dataclass
class _Draft:
    """An entry before numbering, and what its number is made of."""

    entry: JournalEntry
    period: str  # the summary's period part of the number, "" for singles
    order: tuple[Any, ...]


@dataclass
class _Group:
    """The models of one (account, class) line of a summary entry."""

    micros: int = 0
    count: int = 0
    models: list[tuple[int, str]] = field(default_factory=list)

    def add(self, model: str, count: int, micros: int) -> None:
        self.micros += micros
        self.count += count
        self.models.append((micros, model))

    def label(self) -> str:
        """The models by spend, e.g. ``wavespeed-ai/flux-dev, google/veo3 +2 more``."""
        names = [model or "(no model)" for _, model in sorted(self.models, key=lambda m: (-m[0], m[1]))]
        shown = ", ".join(names[:_MEMO_MODELS])
        return shown + (f" +{len(names) - _MEMO_MODELS} more" if len(names) > _MEMO_MODELS else "")


class _Builder:
    def __init__(self, window: Window, mapping: AccountMapping, granularity: Granularity) -> None:
        self.window = window
        self.mapping = mapping
        self.granularity = granularity
        self.drafts: list[_Draft] = []
        self.unmapped: set[str] = set()
        self.dropped: list[tuple[str, str, int]] = []  # (id or summary label, currency, micros)
        self.suspense: list[str] = []

    # -- one entry per record ----------------------------------------------------------------

    def single(self, row: Any) -> None:
        """A top-up, payout, credit without a model or suspense record: ``row`` is a frame tuple."""
        record_id, currency, micros, role = str(row.id), str(row.currency), int(row.amount_micros), row.role
        method, kind, day = str(row.payment_method), str(row.type), row.date.date()
        cents = round_to_cents(micros)
        if cents == 0:
            self.dropped.append((record_id, currency, micros))
            return
        mapping, vendor = self.mapping, self.mapping.vendor
        if role == "topup":
            memo = f"{vendor} top-up {record_id} via {method or 'unknown payment method'}"
            counter = mapping.payment_account(method)
        elif role == "payout":
            memo = f"{vendor} refund {record_id} paid out to {method or 'unknown payment method'}"
            counter = mapping.payment_account(method)
        elif role == "credit":
            memo = f"{vendor} credit back {record_id} ({kind}, no model)"
            counter = mapping.refunds
        else:
            memo = f"{vendor} {kind} {record_id} of {format_micros(micros)} {currency}: needs review"
            counter = mapping.suspense
            self.suspense.append(f"{record_id} ({kind}, {format_micros(micros)} {currency})")
        # the prepaid credit moves by the record's signed amount; the counter account by the opposite
        lines = (self.line(mapping.prepaid, cents, memo), self.line(counter, -cents, memo))
        entry = JournalEntry("", day, currency, memo, role, _debit_first(lines), (record_id,))
        self.drafts.append(_Draft(entry, "", (day, row.created_at, record_id)))

    # -- summaries ---------------------------------------------------------------------------

    def summaries(self, records: pd.DataFrame, role: Role) -> None:
        """Usage (or refunded tasks) per currency and calendar month or local day."""
        if records.empty:
            return
        unit = "D" if self.granularity == "daily" else "M"
        periods = records["date"].to_numpy().astype(f"datetime64[{unit}]")
        keyed = records.assign(_period=periods)
        for (currency, period), part in keyed.groupby(["currency", "_period"], observed=True, sort=True):
            models = (
                part.groupby("model", observed=True)
                .agg(count=("id", "size"), micros=("amount_micros", "sum"))
                .reset_index()
            )
            # refunded tasks are few next to usage (millions of ids): keep theirs so each can be traced
            source_ids = tuple(part["id"]) if role == "task_refund" else ()
            self.summary(role, str(currency), pd.Timestamp(period).date(), models, source_ids)

    def summary(self, role: Role, currency: str, start: date, models: pd.DataFrame, source_ids: tuple[str, ...]) -> None:
        """One summary entry: ``start`` is the local day (daily) or the first day of the month."""
        sign = -1 if role == "usage" else 1  # usage draws the balance down: its expense is -amount
        groups: dict[tuple[str, str], _Group] = {}
        for model, count, micros in zip(models["model"].astype("str"), models["count"], models["micros"]):
            account, klass, explicit = self.mapping.expense_for(model)
            if not explicit and self.mapping.rules:  # no rules: everything goes to [usage] by choice
                self.unmapped.add(model)
            groups.setdefault((account, klass), _Group()).add(model, int(count), sign * int(micros))
        cents = allocate_cents({key: group.micros for key, group in groups.items()})
        label, entry_day, period_part = self.period_of(start)
        title = "Usage" if role == "usage" else "Credits back"
        tz = self.window.tz_name
        tasks = sum(group.count for group in groups.values())
        total = sum(cents.values())
        if total == 0:
            exact = sum(group.micros for group in groups.values())
            self.dropped.append((f"{title.lower()} {label}", currency, sign * exact))
            return
        expense_sign = 1 if role == "usage" else -1  # usage debits expense, credits back credit it
        lines = [
            self.line(account, expense_sign * cents[(account, klass)],
                      f"{title} {label} {group.label()} ({_tasks(group.count)}, {tz})", klass)
            for (account, klass), group in sorted(groups.items())
            if cents[(account, klass)]  # a group under half a cent may get no cent: nothing to post
        ]
        balance_line = self.line(self.mapping.usage_side, -expense_sign * total, f"{title} {label} total ({_tasks(tasks)}, {tz})")
        memo = f"{self.mapping.vendor} {title.lower()} {label} ({_tasks(tasks)}, {tz})"
        entry = JournalEntry("", entry_day, currency, memo, role, _debit_first([*lines, balance_line]), source_ids)
        self.drafts.append(_Draft(entry, period_part, (entry_day, currency)))

    def period_of(self, start: date) -> tuple[str, date, str]:
        """(label for memos, entry date, period part of the number) of a summary period."""
        window = self.window
        if self.granularity == "daily":
            if is_month(window):
                part = f"{start.day:02d}"
            else:
                width = len(str((window.last_day - window.first_day).days + 1))
                part = f"{(start - window.first_day).days + 1:0{width}d}"
            return start.isoformat(), start, part
        month_end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        first, last = max(start, window.first_day), min(month_end, window.last_day)
        whole_month = first.day == 1 and last == month_end
        label = f"{first:%Y-%m}" if whole_month else f"{first.isoformat()} to {last.isoformat()}"
        months = (window.last_day.year - window.first_day.year) * 12 + window.last_day.month - window.first_day.month
        offset = (first.year - window.first_day.year) * 12 + first.month - window.first_day.month + 1
        return label, last, (f"{offset:02d}" if months else "")

    def line(self, account: str, cents: int, memo: str, klass: str = "") -> JournalLine:
        # QuickBooks needs a Name on an Accounts Payable line: the vendor
        name = self.mapping.vendor if self.mapping.accounts[account].type == "AP" else ""
        return JournalLine(account, cents, memo, klass, name)

    # -- warnings ----------------------------------------------------------------------------

    def warnings(self) -> list[str]:
        found = []
        if self.unmapped:
            listed = [model or "(no model)" for model in sorted(self.unmapped)]
            names = ", ".join(listed[:8]) + (f" and {len(listed) - 8} more" if len(listed) > 8 else "")
            found.append(
                f"{len(self.unmapped)} model(s) matched no rule of the account mapping "
                f"({self.mapping.source.name}) and were booked to {self.mapping.usage!r}: {names}"
            )
        if self.suspense:
            found.append(
                f"{len(self.suspense)} record(s) booked to the suspense account {self.mapping.suspense!r} "
                f"for review: {_listing(self.suspense)}"
            )
        if self.dropped:
            totals: dict[str, int] = {}
            for _, currency, micros in self.dropped:
                totals[currency] = totals.get(currency, 0) + micros
            amounts = ", ".join(f"{format_micros(v)} {c}" for c, v in sorted(totals.items()))
            found.append(
                f"{len(self.dropped)} amount(s) under half a cent round to 0.00 and were not posted "
                f"({amounts} in all): {_listing([label for label, _, _ in self.dropped])}"
            )
        return found


def _debit_first(lines: Iterable[JournalLine]) -> tuple[JournalLine, ...]:
    """Debits before credits, each side in the given order (QuickBooks shows them so)."""
    ordered = list(lines)
    return tuple([line for line in ordered if line.amount_cents > 0] + [line for line in ordered if line.amount_cents < 0])


def _tasks(count: int) -> str:
    return f"{count} task" if count == 1 else f"{count} tasks"


def _listing(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _numbered(drafts: list[_Draft], window: Window) -> list[JournalEntry]:
    requests = [NumberRequest(d.entry.role, d.entry.currency, d.period, d.order) for d in drafts]
    numbers = assign_numbers(requests, window)
    entries = [replace(d.entry, number=number) for d, number in zip(drafts, numbers)]
    return sorted(entries, key=lambda e: (e.date, e.number))


# -- the bug guard -----------------------------------------------------------------------------


def check_entries(entries: Iterable[JournalEntry]) -> None:
    """Bug guard before anything is written: balanced entries, no zero lines, short unique numbers.

    Every writer that lays out journal entries calls it (docs/booking.md, "One booking path").
    """
    seen: set[str] = set()
    for entry in entries:
        if entry.balance_cents:
            raise ExportError(f"internal error: journal entry {entry.number} does not balance by {format_cents(entry.balance_cents)}")
        if not entry.number or len(entry.number) > MAX_NUMBER or not entry.number.isascii() or not entry.number.isalnum():
            raise ExportError(f"internal error: journal number {entry.number!r} is not 1-{MAX_NUMBER} ASCII letters/digits")
        if entry.number in seen:
            raise ExportError(f"internal error: journal number {entry.number} is used twice")
        if len(entry.lines) < 2 or any(line.amount_cents == 0 for line in entry.lines):
            raise ExportError(f"internal error: journal entry {entry.number} has fewer than two lines or a zero line")
        seen.add(entry.number)


def balance_accounts(mapping: AccountMapping) -> set[str]:
    """The accounts that mirror the provider's side: the prepaid credit, and the payable when postpaid."""
    return {mapping.prepaid} | ({mapping.payable} if mapping.postpaid else set())


def _check_ties(entries: list[JournalEntry], done: pd.DataFrame, mapping: AccountMapping, dropped: int) -> None:
    """Every entry is well formed and balances, and the balance side matches the records."""
    check_entries(entries)
    balance_side = balance_accounts(mapping)
    posted: dict[str, int] = {}
    rounded: dict[str, int] = {}  # entries (or dropped amounts) per currency: each rounds once
    for entry in entries:
        posted[entry.currency] = posted.get(entry.currency, 0) + sum(
            line.amount_cents for line in entry.lines if line.account in balance_side
        )
        rounded[entry.currency] = rounded.get(entry.currency, 0) + 1
    exact = done.groupby(done["currency"].astype("str"))["amount_micros"].sum()
    for currency, micros in exact.items():
        difference = posted.get(str(currency), 0) * MICROS_PER_CENT - int(micros)
        allowed = (rounded.get(str(currency), 0) + dropped) * MICROS_PER_CENT
        if abs(difference) * 2 > allowed:  # at most half a cent per rounding
            raise ExportError(
                f"internal error: the journal moves the {currency} credit balance by "
                f"{format_micros(posted.get(str(currency), 0) * MICROS_PER_CENT)} but the records by {format_micros(int(micros))}"
            )


__all__ = ["Journal", "balance_accounts", "build_journal", "check_entries"]
