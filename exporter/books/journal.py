"""The journal: the one place that decides accounts, signs and rounding.

Every book format (IIF, QuickBooks Online journal and bank upload, Beancount, Xero, the workbook's
Journal sheet) is a layout of the entries built here; none of them looks at the records.

Only completed, non-zero records are booked, per currency, by the sign of ``amount_micros`` (the
record's effect on the prepaid credit balance); the roles are listed in :data:`exporter.models.Role`
and explained in docs/booking.md ("The booking model"). In short: the prepaid account (for usage
of a postpaid account: the payable) moves by the record's amount, the counter account by the
opposite. Top-ups, payouts, credits back without a model and suspense records are one entry each,
their prepaid line rounded through the prepaid account's running total; usage and refunded tasks are summarised per currency and calendar month (or
local day), one line per (expense account, class) -- the class the API key's when the mapping
routes keys --, rounded by the cumulative rule of
:mod:`.carry`. Late changes to closed periods (:mod:`.adjustments`) are booked the same way in
entries of their own (docs/booking.md, "Closed periods and late changes").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, cast

import numpy as np
import pandas as pd

from ..config import GRANULARITIES, Granularity
from ..errors import ConfigError, ExportError
from ..models import COMPLETED, SUMMARY_ROLES, JournalEntry, JournalLine, Role
from ..money import MICROS_PER_CENT, format_cents, format_micros, round_to_cents
from ..period import Window
from ..transform import Key, day_key, grouped_sums, text_key
from .carry import Carry, LineKey, Total
from .mapping import AccountMapping
from .numbering import DEFAULT_CODE, MAX_NUMBER, NumberRequest, assign_numbers

_SINGLE_COLUMNS = ["role", "id", "currency", "amount_micros", "payment_method", "type", "date", "created_at"]
_MEMO_MODELS = 3  # models named in a summary line's memo before "+N more"
_ORDER = {"usage": 0, "task_refund": 1, "adjustment": 2}  # summaries of one day post in this order


@dataclass(frozen=True)
class Journal:
    """The entries, in date and number order; what the accountant should look at; and the
    rounding state after the last entry (for the books database to carry on)."""

    entries: tuple[JournalEntry, ...]
    warnings: tuple[str, ...] = ()
    carry: Carry = field(default_factory=Carry)


def build_journal(
    transactions: pd.DataFrame,
    window: Window,
    mapping: AccountMapping,
    granularity: Granularity = "monthly",
    *,
    carry: Carry | None = None,
    adjustments: pd.DataFrame | None = None,
    journal_code: str = DEFAULT_CODE,
) -> Journal:
    """The journal entries of the completed records of ``transactions`` (the transactions frame).

    ``carry`` is the rounding state the books left at the end of the previous period (none: a
    fresh start); ``adjustments`` the late changes to closed periods to post in this window
    (:data:`exporter.models.ADJUSTMENT_COLUMNS`). Every entry balances to the cent. Raises
    ExportError if the posted balance does not tie to the records (a bug), ConfigError for a bad
    granularity.
    """
    if granularity not in GRANULARITIES:
        raise ConfigError(f"journal granularity must be 'monthly' or 'daily', got {granularity!r}")
    done = ((transactions["status"] == COMPLETED) & (transactions["amount_micros"] != 0)).to_numpy()
    roles = transactions["role"]  # computed once per report (transform.record_roles)
    state = (carry or Carry()).copy()
    builder = _Builder(window, mapping, granularity, state)
    # each step copies only the rows and columns it reads: a million-record month is not copied whole
    singles = done & (roles.notna() & ~roles.isin(SUMMARY_ROLES)).to_numpy()
    for row in transactions.loc[singles, _SINGLE_COLUMNS].itertuples(index=False):
        builder.single(row.role, str(row.id), str(row.currency), int(row.amount_micros), str(row.payment_method),
                       str(row.type), row.date.date(), (row.date.date(), row.created_at, str(row.id)))
    keys = builder.summary_keys(transactions)
    for role in SUMMARY_ROLES:
        builder.summaries(transactions, keys, done & (roles == role).to_numpy(), role)
    if adjustments is not None and len(adjustments):
        builder.adjustments(adjustments)
    builder.post_summaries()
    entries = _numbered(builder.drafts, window, journal_code)
    _check_ties(entries, transactions.loc[done, ["currency", "amount_micros"]], adjustments, mapping,
                len(builder.singles_rounded) + len(builder.dropped))
    return Journal(tuple(entries), tuple(builder.warnings()), state)


@dataclass
class _Draft:
    """An entry before numbering, and what its number is made of."""

    entry: JournalEntry
    period: str  # the summary's period part of the number, "" for singles
    order: tuple[Any, ...]


@dataclass
class _Group:
    """The models of one (account, class) line of a summary entry; ``micros`` debit-positive."""

    micros: int = 0
    count: int = 0
    models: dict[str, int] = field(default_factory=dict)  # model -> size (micros, magnitude)

    def add(self, model: str, count: int, micros: int) -> None:
        self.micros += micros
        self.count += count
        self.models[model] = self.models.get(model, 0) + abs(micros)  # a model run by several keys: once

    def label(self) -> str:
        """The models by size, e.g. ``wavespeed-ai/flux-dev, google/veo3 +2 more``."""
        names = [model or "(no model)" for model, _ in sorted(self.models.items(), key=lambda m: (-m[1], m[0]))]
        shown = ", ".join(names[:_MEMO_MODELS])
        return shown + (f" +{len(names) - _MEMO_MODELS} more" if len(names) > _MEMO_MODELS else "")


@dataclass
class _Summary:
    """A summary entry before rounding: counter groups per (account, class), debit-positive micros."""

    kind: str  # "usage", "task_refund" or "adjustment"
    role: Role
    currency: str
    day: date
    label: str  # the period in memos, e.g. "2024-01" or "2024-01-15"
    number_part: str
    groups: dict[tuple[str, str], _Group]
    source_ids: tuple[str, ...] = ()
    adjusts: str = ""


class _Builder:
    def __init__(self, window: Window, mapping: AccountMapping, granularity: Granularity, carry: Carry) -> None:
        self.window = window
        self.mapping = mapping
        self.granularity = granularity
        self.carry = carry  # the running totals every entry rounds through (docs/booking.md, "Rounding")
        self.drafts: list[_Draft] = []
        self.pending: list[_Summary] = []
        self.unmapped: set[str] = set()
        self.dropped: list[tuple[str, str, int]] = []  # (record id, currency, micros) under half a cent
        self.suspense: list[str] = []
        self.singles_rounded: list[str] = []

    # -- one entry per record ----------------------------------------------------------------

    def single(self, role: str, record_id: str, currency: str, micros: int, method: str, kind: str,
               day: date, order: tuple[Any, ...], adjusts: str = "", change: str = "") -> None:
        """A top-up, payout, credit without a model or suspense record (or a late change to one):
        the prepaid credit moves by ``micros``, the counter account by the opposite.

        The prepaid line is rounded through the prepaid account's running total, like a summary's
        balance line: a whole-cent amount posts exactly itself, a sub-cent one what keeps the
        account at its exact balance rounded (an amount under half a cent may post nothing now and
        a cent later)."""
        total = self.carry.balances.setdefault((self.mapping.prepaid, "", currency), Total())
        total.exact += micros
        cents = round_to_cents(total.exact) - total.posted
        total.posted += cents
        if cents == 0:
            self.dropped.append((record_id, currency, micros))
            return
        self.singles_rounded.append(record_id)
        mapping, vendor = self.mapping, self.mapping.vendor
        via = method or "unknown payment method"
        if role == "topup":
            memo, counter = f"{vendor} top-up {record_id} via {via}", mapping.payment_account(method)
        elif role == "payout":
            memo, counter = f"{vendor} refund {record_id} paid out to {via}", mapping.payment_account(method)
        elif role == "credit":
            memo, counter = f"{vendor} credit back {record_id} ({kind}, no model)", mapping.refunds
        else:
            memo = f"{vendor} {kind} {record_id} of {format_micros(micros)} {currency}: needs review"
            counter = mapping.suspense
            self.suspense.append(f"{record_id} ({kind}, {format_micros(micros)} {currency})")
        if adjusts:
            memo = f"{vendor} late change to {adjusts}: {record_id} {change.replace('_', ' ')} ({memo})"
        lines = (self.line(mapping.prepaid, cents, memo), self.line(counter, -cents, memo))
        entry = JournalEntry("", day, currency, memo, cast(Role, role), _debit_first(lines), (record_id,), adjusts)
        self.drafts.append(_Draft(entry, "", order))

    # -- summaries ---------------------------------------------------------------------------

    def summary_keys(self, transactions: pd.DataFrame) -> list[Key]:
        """What a summary line groups by: currency, calendar month or local day, model (and API key
        when the mapping routes keys: docs/booking.md, "Chargeback by API key"), as codes per row."""
        _, days, span = day_key(transactions["date"])
        starts, period_of_day = np.unique(span.to_numpy().astype("datetime64[D]" if self.granularity == "daily" else "datetime64[M]"),
                                          return_inverse=True)
        period: Key = ("period", period_of_day[days], pd.Series(starts))
        keys = [text_key(transactions["currency"]), period, text_key(transactions["model"])]
        return [*keys, text_key(transactions["api_key_name"])] if self.mapping.keys else keys

    def summaries(self, transactions: pd.DataFrame, keys: list[Key], rows: np.ndarray, role: Role) -> None:
        """Usage (or refunded tasks) of the ``rows`` (a mask) per currency and period: one grouping of
        the ``keys``' codes (:meth:`summary_keys`), so a million-record month is neither copied nor
        grouped period by period."""
        lines = grouped_sums(rows, keys, transactions["amount_micros"].to_numpy())
        if lines.empty:
            return
        currency, period = (lines[name].to_numpy() for name, _, _ in keys[:2])
        key_names = lines["api_key_name"] if self.mapping.keys else [""] * len(lines)
        # refunded tasks are few next to usage (millions of ids): keep theirs so each can be traced
        traced = np.logical_and.reduce([rows, *(codes >= 0 for _, codes, _ in keys)]) if role == "task_refund" else False
        at = np.flatnonzero(traced)
        ids = transactions["id"].array[at]
        of_row = [values.to_numpy()[codes[at]] for _, codes, values in keys[:2]]  # each refunded task's currency, period
        firsts = np.flatnonzero(np.r_[True, (currency[1:] != currency[:-1]) | (period[1:] != period[:-1])])  # each summary's first line
        for first, stop in zip(firsts, [*firsts[1:], len(lines)]):
            part = slice(first, stop)
            groups = self.groups(zip(lines["model"][part], key_names[part], lines["size"][part], lines["sum"][part]))
            label, day, number_part = self.period_of(pd.Timestamp(period[first]).date())
            source_ids = tuple(ids[(of_row[0] == currency[first]) & (of_row[1] == period[first])])
            self.pending.append(_Summary(role, role, str(currency[first]), day, label, number_part, groups, source_ids))

    def adjustments(self, frame: pd.DataFrame) -> None:
        """Late changes to closed periods: summarised per (closed period, currency) when they are
        usage or refunded tasks, one entry each otherwise; all dated the window's last day."""
        posted = frame[frame["delta_micros"] != 0]
        roles = posted["role"]  # decided once (books.adjustments.adjustment_roles), as FOCUS reads it
        day = self.window.last_day
        summary = posted[roles.isin(SUMMARY_ROLES)]
        for (period, currency), part in summary.groupby(["period", "currency"], sort=True):
            groups = self.groups(zip(part["model"].astype("str"), [""] * len(part), [1] * len(part), part["delta_micros"]))
            self.pending.append(_Summary("adjustment", "usage", str(currency), day, f"late changes to {period}",
                                         "", groups, tuple(part["id"]), str(period)))
        singles = posted.assign(role=roles)[~roles.isin(SUMMARY_ROLES)]
        for row in singles.sort_values(["period", "id"]).itertuples(index=False):
            self.single(row.role, str(row.id), str(row.currency), int(row.delta_micros), str(row.payment_method),
                        str(row.type), day, (day, str(row.period), str(row.id)), str(row.period), str(row.change))

    def groups(self, models: Iterable[tuple[str, str, Any, Any]]) -> dict[tuple[str, str], _Group]:
        """(model, API key name, count, signed micros) -> counter groups per (account, class),
        debit-positive; a key rule's class wins over the model's (docs/booking.md, "Chargeback by API key")."""
        groups: dict[tuple[str, str], _Group] = {}
        for model, key_name, count, micros in models:
            account, klass, explicit = self.mapping.line_for(model, key_name)
            if not explicit and self.mapping.rules:  # no rules: everything goes to [usage] by choice
                self.unmapped.add(model)
            groups.setdefault((account, klass), _Group()).add(model, int(count), -int(micros))
        return groups

    def post_summaries(self) -> None:
        """Round every summary through the running totals, in date order, and make its entry."""
        carry = self.carry
        for summary in sorted(self.pending, key=lambda s: (s.currency, s.day, _ORDER[s.kind], s.adjusts)):
            balance: LineKey = (self.mapping.usage_side, "", summary.currency)
            counters = {(account, klass, summary.currency): g.micros for (account, klass), g in summary.groups.items()}
            balance_cents, cents = carry.post(balance, counters)
            self.summary_entry(summary, balance_cents, cents)

    def summary_entry(self, summary: _Summary, balance_cents: int, cents: dict[LineKey, int]) -> None:
        tz, currency = self.window.tz_name, summary.currency
        title = {"usage": "Usage", "task_refund": "Credits back", "adjustment": "Late changes"}[summary.kind]
        unit = "record" if summary.kind == "adjustment" else "task"
        period = summary.label if summary.kind != "adjustment" else f"to {summary.adjusts}"
        lines = []
        for (account, klass, _), amount in sorted(cents.items()):
            group = summary.groups.get((account, klass))
            detail = f"{group.label()} ({_count(group.count, unit)}, {tz})" if group else "cent carried from earlier entries"
            lines.append(self.line(account, amount, f"{title} {period} {detail}", klass))
        total = _count(sum(group.count for group in summary.groups.values()), unit)
        if balance_cents:
            lines.append(self.line(self.mapping.usage_side, balance_cents, f"{title} {period} total ({total}, {tz})"))
        if not lines:
            return  # under a cent so far: it waits in the running totals
        memo = f"{self.mapping.vendor} {title.lower()} {period} ({total}, {tz})"
        entry = JournalEntry("", summary.day, currency, memo, summary.role, _debit_first(lines),
                             summary.source_ids, summary.adjusts)
        self.drafts.append(_Draft(entry, summary.number_part, (summary.day, currency, summary.adjusts)))

    def period_of(self, start: date) -> tuple[str, date, str]:
        """(label for memos, entry date, period part of the number) of a summary period."""
        window = self.window
        if self.granularity == "daily":
            if window.kind == "month":
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
                f"{len(self.dropped)} record(s) under half a cent round to 0.00 and were not posted "
                f"({amounts} in all): {_listing([label for label, _, _ in self.dropped])}"
            )
        return found


def _debit_first(lines: Iterable[JournalLine]) -> tuple[JournalLine, ...]:
    """Debits before credits, each side in the given order (QuickBooks shows them so)."""
    ordered = list(lines)
    return tuple([line for line in ordered if line.amount_cents > 0] + [line for line in ordered if line.amount_cents < 0])


def _count(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _listing(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _numbered(drafts: list[_Draft], window: Window, code: str = DEFAULT_CODE) -> list[JournalEntry]:
    requests = [NumberRequest(d.entry.role, d.entry.currency, d.period, d.order, bool(d.entry.adjusts)) for d in drafts]
    numbers = assign_numbers(requests, window, code)
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


def _check_ties(entries: list[JournalEntry], done: pd.DataFrame, adjustments: pd.DataFrame | None,
                mapping: AccountMapping, singles: int) -> None:
    """Every entry is well formed and balances, and the balance side matches the records.

    Allowed difference per currency: half a cent per single record (each rounds on its own, or
    is too small to post), plus one cent for the summaries (their running total is within half a
    cent of the exact one at the start and at the end of the window).
    """
    check_entries(entries)
    balance_side = balance_accounts(mapping)
    posted: dict[str, int] = {}
    for entry in entries:
        posted[entry.currency] = posted.get(entry.currency, 0) + sum(
            line.amount_cents for line in entry.lines if line.account in balance_side
        )
    sums = done.groupby("currency", observed=True)["amount_micros"].sum()  # by category: no text per record
    exact = {str(currency): int(micros) for currency, micros in sums.items()}
    if adjustments is not None and len(adjustments):
        for currency, micros in adjustments.groupby("currency")["delta_micros"].sum().items():
            exact[currency] = exact.get(currency, 0) + int(micros)
    for currency in sorted(set(exact) | set(posted)):  # the same currency named first on every run
        difference = posted.get(str(currency), 0) * MICROS_PER_CENT - int(exact.get(currency, 0))
        if abs(difference) * 2 > (singles + 2) * MICROS_PER_CENT:
            raise ExportError(
                f"internal error: the journal moves the {currency} credit balance by "
                f"{format_micros(posted.get(str(currency), 0) * MICROS_PER_CENT)} but the records by "
                f"{format_micros(int(exact.get(currency, 0)))}"
            )


__all__ = ["Journal", "balance_accounts", "build_journal", "check_entries"]
