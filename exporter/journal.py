"""Build the double-entry journal from a Report: what the QuickBooks and Beancount writers print.

Only completed, non-zero records are booked, per currency, by the sign of ``amount_micros`` (the
record's effect on the prepaid credit balance; accounting-formats.md §7.1):

- ``topup`` (a top-up, amount > 0): one entry each, Dr prepaid / Cr the payment method's account.
  Number ``WS2401T001``.
- ``usage`` (a usage record, amount < 0): one summary per currency and period (or local day), one
  debit line per (expense account, class), Cr prepaid (the payable when postpaid) for the total.
  Number ``WS2401U`` (daily ``WS2401U15``).
- ``task_credit`` (amount > 0, not a top-up, names a model: a refunded task): summarised like
  usage, Dr prepaid (payable when postpaid) / Cr the model's expense account and class
  (contra-expense). Number ``WS2401R`` (daily ``WS2401R15``).
- ``credit`` (amount > 0, not a top-up, no model): one entry each, Dr prepaid / Cr refunds.
  Number ``WS2401C001``.
- ``payout`` (a refund, amount < 0: money paid back to the card): one entry each, Dr the payment
  method's account / Cr prepaid. Number ``WS2401P001``; its ``JournalEntry.kind`` is "topup".
- ``suspense`` (anything else: a negative top-up, a negative record of an unknown type): one
  entry each, Dr suspense / Cr prepaid, and a warning. Number ``WS2401S001``.

Why refunded tasks are summarised rather than booked one entry each: they mirror usage (one
task, often a fraction of a cent). Booked one by one, each would round on its own (0.0025 ->
0.00, 0.0075 -> 0.01), so a month of them would drift the prepaid account away from the
provider's balance and bury the books in tiny entries. Summed exactly per (account, class) and
rounded once with the largest-remainder method, they cost at most half a cent per entry, like
usage. Credits back without a model are rare, named events (goodwill credits) and stay one entry
each; one that rounds to 0.00 is not posted and is listed in a warning.

Journal numbers are deterministic and at most 11 characters (IIF DOCNUM): ``WS`` + yymm for a
month window, ``W`` + yymmdd of the first day for a range window; then the role letter; then
- summaries: nothing (monthly), the day of the month (daily; the day's offset in a range window),
  plus one digit for the currency when there are several (1 = first code alphabetically:
  ``WS2401U1`` EUR, ``WS2401U2`` USD); if that would not fit, a sequence number instead;
- the rest: a sequence number in date order, ``001``...``999``, four digits above 999 when they
  fit, else base 36 of the room left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd

from .accounts import AccountMapping
from .errors import ConfigError, ExportError
from .models import COMPLETED, EntryKind, JournalEntry, JournalLine, Report
from .money import (
    MICROS_PER_CENT,
    allocate_cents,
    format_cents,
    format_micros,
    round_to_cents,
)
from .period import Window

Granularity = Literal["monthly", "daily"]
MAX_NUMBER = 11  # IIF DOCNUM / QuickBooks Desktop RefNumber [SDK]

# Role letters in journal numbers; summaries (U, R) are numbered by period, the rest in sequence.
_LETTERS = {"topup": "T", "usage": "U", "task_credit": "R", "credit": "C", "payout": "P", "suspense": "S"}
_SUMMARY_ROLES = ("usage", "task_credit")
# JournalEntry.kind of each role: a payout moves money between the balance and the payer, as a top-up does
_ENTRY_KINDS: dict[str, EntryKind] = {
    "topup": "topup", "payout": "topup", "usage": "usage", "task_credit": "credit", "credit": "credit", "suspense": "suspense",
}
_MEMO_MODELS = 3  # models named in a summary line's memo before "+N more"
_DIGITS36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def record_roles(frame: pd.DataFrame) -> pd.Series:
    """How each record is booked (see the module table); ``zero`` for amount 0. Status is not checked."""
    amount = frame["amount_micros"]
    kind = frame["type"].astype("str")
    has_model = frame["model"].astype("str") != ""
    positive_not_topup = (amount > 0) & (kind != "topup")
    conditions = [
        amount == 0,
        (kind == "topup") & (amount > 0),
        (kind == "usage") & (amount < 0),
        (kind == "refund") & (amount < 0),
        positive_not_topup & has_model,
        positive_not_topup,
    ]
    choices = ["zero", "topup", "usage", "payout", "task_credit", "credit"]
    return pd.Series(np.select(conditions, choices, default="suspense"), index=frame.index, dtype="str")


def build_journal(
    report: Report, accounts: AccountMapping, granularity: Granularity = "monthly"
) -> tuple[list[JournalEntry], list[str]]:
    """The journal entries of the report's completed records, and warnings for the accountant.

    Every entry balances to the cent; per currency, the lines on the prepaid (and, when postpaid,
    payable) account add up to the records' exact effect on the balance within half a cent per
    entry. Raises ExportError if that does not hold (a bug), ConfigError for a bad granularity.
    """
    if granularity not in ("monthly", "daily"):
        raise ConfigError(f"journal granularity must be 'monthly' or 'daily', got {granularity!r}")
    frame = report.transactions
    done = frame[(frame["status"] == COMPLETED) & (frame["amount_micros"] != 0)]
    roles = record_roles(done)
    builder = _Builder(report.window, accounts, granularity)
    singles = done.assign(role=roles)[~roles.isin([*_SUMMARY_ROLES, "zero"])]
    for row in singles.itertuples(index=False):
        builder.single(row)
    for role in _SUMMARY_ROLES:
        builder.summaries(done[roles == role], role)
    entries = _number(builder.drafts, report.window)
    _check(entries, done, accounts, builder.dropped)
    return entries, builder.warnings()


@dataclass
class _Draft:
    """An entry before numbering: ``key`` orders the entries of a role for sequence numbers."""

    role: str
    entry: JournalEntry
    day: date | None  # the day of a daily summary
    key: tuple[Any, ...]


class _Builder:
    def __init__(self, window: Window, accounts: AccountMapping, granularity: Granularity) -> None:
        self.window = window
        self.accounts = accounts
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
        accounts, vendor = self.accounts, self.accounts.vendor
        if role == "topup":
            memo = f"{vendor} top-up {record_id} via {method or 'unknown payment method'}"
            other = accounts.payment_account(method)
        elif role == "payout":
            memo = f"{vendor} refund {record_id} paid out to {method or 'unknown payment method'}"
            other = accounts.payment_account(method)
        elif role == "credit":
            memo = f"{vendor} credit back {record_id} ({kind}, no model)"
            other = accounts.refunds
        else:
            memo = f"{vendor} {kind} {record_id} of {format_micros(micros)} {currency}: needs review"
            other = accounts.suspense
            self.suspense.append(f"{record_id} ({kind}, {format_micros(micros)} {currency})")
        # the prepaid credit moves by the record's signed amount; the other account takes the rest
        lines = (self.line(accounts.prepaid, cents, memo), self.line(other, -cents, memo))
        lines = lines if cents > 0 else lines[::-1]  # debit first
        entry = JournalEntry("", day, currency, memo, _ENTRY_KINDS[role], lines, (record_id,))
        self.drafts.append(_Draft(role, entry, None, (day, row.created_at, record_id)))

    # -- summaries ---------------------------------------------------------------------------

    def summaries(self, records: pd.DataFrame, role: str) -> None:
        """Usage (or task credits) per currency and period/day, one line per (account, class)."""
        period_keys = ["currency", "date"] if self.granularity == "daily" else ["currency"]
        for key, part in records.groupby(period_keys, observed=True, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            day = key[1].date() if self.granularity == "daily" else None
            models = (
                part.groupby("model", observed=True)
                .agg(count=("id", "size"), micros=("amount_micros", "sum"))
                .reset_index()
            )
            # refunded tasks are few next to usage (millions of ids): keep theirs so each can be traced
            source_ids = tuple(part["id"]) if role == "task_credit" else ()
            self.summary(role, str(key[0]), day, models, source_ids)

    def summary(self, role: str, currency: str, day: date | None, models: pd.DataFrame, source_ids: tuple[str, ...]) -> None:
        sign = -1 if role == "usage" else 1  # usage draws the balance down: its expense is -amount
        groups: dict[tuple[str, str], _Group] = {}
        for model, count, micros in zip(models["model"].astype("str"), models["count"], models["micros"]):
            account, klass, explicit = self.accounts.expense_for(model)
            if not explicit:
                self.unmapped.add(model)
            groups.setdefault((account, klass), _Group()).add(model, int(count), sign * int(micros))
        cents = allocate_cents({key: group.micros for key, group in groups.items()})
        period = day.isoformat() if day else self.period_label
        title = "Usage" if role == "usage" else "Credits back"
        tz = self.window.tz_name
        tasks = sum(group.count for group in groups.values())
        total = sum(cents.values())
        if total == 0:
            exact = sum(group.micros for group in groups.values())
            self.dropped.append((f"{title.lower()} {period}", currency, sign * exact))
            return
        expense_sign = 1 if role == "usage" else -1  # usage debits expense, credits back credit it
        lines = []
        for (account, klass), group in sorted(groups.items()):
            if cents[(account, klass)]:  # a group under half a cent may get no cent: nothing to post
                memo = f"{title} {period} {group.label()} ({_tasks(group.count)}, {tz})"
                lines.append(self.line(account, expense_sign * cents[(account, klass)], memo, klass))
        balance_line = self.line(self.accounts.usage_side, -expense_sign * total, f"{title} {period} total ({_tasks(tasks)}, {tz})")
        lines = [*lines, balance_line] if role == "usage" else [balance_line, *lines]  # debit first
        memo = f"{self.accounts.vendor} {title.lower()} {period} ({_tasks(tasks)}, {tz})"
        entry_day = day or self.window.last_day
        entry = JournalEntry("", entry_day, currency, memo, _ENTRY_KINDS[role], tuple(lines), source_ids)
        self.drafts.append(_Draft(role, entry, day, (entry_day, currency)))

    @property
    def period_label(self) -> str:
        window = self.window
        if _is_month(window):
            return window.label
        return f"{window.first_day.isoformat()} to {window.last_day.isoformat()}"

    def line(self, account: str, cents: int, memo: str, klass: str = "") -> JournalLine:
        # QuickBooks needs a Name on an Accounts Payable line: the vendor
        name = self.accounts.vendor if self.accounts.accounts[account].type == "AP" else ""
        return JournalLine(account, cents, memo, klass, name)

    # -- warnings ----------------------------------------------------------------------------

    def warnings(self) -> list[str]:
        found = []
        if self.unmapped:
            listed = [model or "(no model)" for model in sorted(self.unmapped)]
            names = ", ".join(listed[:8]) + (f" and {len(listed) - 8} more" if len(listed) > 8 else "")
            found.append(
                f"{len(self.unmapped)} model(s) matched no rule of the account mapping "
                f"({self.accounts.source.name}) and were booked to {self.accounts.usage!r}: {names}"
            )
        if self.suspense:
            found.append(
                f"{len(self.suspense)} record(s) booked to the suspense account {self.accounts.suspense!r} "
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


def _tasks(count: int) -> str:
    return f"{count} task" if count == 1 else f"{count} tasks"


def _listing(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


@dataclass
class _Group:
    """The models of one (account, class) line of a summary entry."""

    micros: int = 0
    count: int = 0

    def __post_init__(self) -> None:
        self.models: list[tuple[int, str]] = []

    def add(self, model: str, count: int, micros: int) -> None:
        self.micros += micros
        self.count += count
        self.models.append((micros, model))

    def label(self) -> str:
        """The models by spend, e.g. ``wavespeed-ai/flux-dev, google/veo3 +2 more``."""
        names = [model or "(no model)" for _, model in sorted(self.models, key=lambda m: (-m[0], m[1]))]
        shown = ", ".join(names[:_MEMO_MODELS])
        return shown + (f" +{len(names) - _MEMO_MODELS} more" if len(names) > _MEMO_MODELS else "")


# -- journal numbers ---------------------------------------------------------------------------


def _is_month(window: Window) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}", window.label)) and window.first_day.day == 1


def journal_prefix(window: Window) -> str:
    """``WS2401`` for the month 2024-01, ``W240105`` for a range starting 2024-01-05."""
    if _is_month(window):
        return f"WS{window.first_day:%y%m}"
    return f"W{window.first_day:%y%m%d}"


def _number(drafts: list[_Draft], window: Window) -> list[JournalEntry]:
    """Give every draft a unique number of at most 11 characters, then order by date and number."""
    prefix = journal_prefix(window)
    currencies = sorted({draft.entry.currency for draft in drafts if draft.role in _SUMMARY_ROLES})
    numbered: list[JournalEntry] = []
    for role, letter in _LETTERS.items():
        of_role = sorted((d for d in drafts if d.role == role), key=lambda d: d.key)
        if not of_role:
            continue
        head = prefix + letter
        numbers = None
        if role in _SUMMARY_ROLES:
            numbers = [head + _day_part(d.day, window) + _currency_part(d.entry.currency, currencies) for d in of_role]
            if max(map(len, numbers)) > MAX_NUMBER:
                numbers = None  # a long range, daily, several currencies: fall back to a sequence
        if numbers is None:
            numbers = [head + code for code in _sequence(len(of_role), MAX_NUMBER - len(head))]
        numbered.extend(replace(d.entry, number=n) for d, n in zip(of_role, numbers))
    return sorted(numbered, key=lambda e: (e.date, e.number))


def _day_part(day: date | None, window: Window) -> str:
    if day is None:
        return ""
    if _is_month(window):
        return f"{day.day:02d}"
    width = len(str((window.last_day - window.first_day).days + 1))
    return f"{(day - window.first_day).days + 1:0{width}d}"


def _currency_part(currency: str, currencies: list[str]) -> str:
    if len(currencies) <= 1:
        return ""
    index = currencies.index(currency) + 1
    return _DIGITS36[index] if index < len(_DIGITS36) else "??"  # "??" forces the fallback


def _sequence(count: int, room: int) -> list[str]:
    """``count`` distinct codes of one width fitting ``room`` characters: 001, 002, ... or base 36."""
    width = max(3, len(str(count)))
    if width <= room:
        return [f"{n:0{width}d}" for n in range(1, count + 1)]
    if 36**room > count:
        return [_base36(n, room) for n in range(1, count + 1)]
    raise ExportError(f"internal error: {count} journal entries of one kind do not fit {MAX_NUMBER}-character numbers")


def _base36(n: int, width: int) -> str:
    digits = ""
    while n:
        n, rest = divmod(n, 36)
        digits = _DIGITS36[rest] + digits
    return digits.rjust(width, "0")


# -- the bug guard -----------------------------------------------------------------------------


def check_entries(entries: Iterable[JournalEntry]) -> None:
    """Bug guard before anything is written: balanced entries, short unique ASCII numbers."""
    seen: set[str] = set()
    for entry in entries:
        if entry.balance_cents:
            raise ExportError(f"internal error: journal entry {entry.number} does not balance by {format_cents(entry.balance_cents)}")
        if not entry.number or len(entry.number) > MAX_NUMBER or not entry.number.isascii() or not entry.number.isalnum():
            raise ExportError(f"internal error: journal number {entry.number!r} is not 1-{MAX_NUMBER} ASCII letters/digits")
        if entry.number in seen:
            raise ExportError(f"internal error: journal number {entry.number} is used twice")
        if len(entry.lines) < 2:
            raise ExportError(f"internal error: journal entry {entry.number} has fewer than two lines")
        seen.add(entry.number)


def _check(entries: list[JournalEntry], done: pd.DataFrame, accounts: AccountMapping, dropped: list[tuple[str, str, int]]) -> None:
    """Every entry is well formed and balances, and the balance side matches the records."""
    check_entries(entries)
    balance_side = {accounts.prepaid} | ({accounts.payable} if accounts.postpaid else set())
    posted: dict[str, int] = {}
    groups: dict[str, int] = {}
    for entry in entries:
        posted[entry.currency] = posted.get(entry.currency, 0) + sum(
            line.amount_cents for line in entry.lines if line.account in balance_side
        )
        groups[entry.currency] = groups.get(entry.currency, 0) + 1
    for _, currency, _ in dropped:
        groups[currency] = groups.get(currency, 0) + 1
    exact = done.groupby(done["currency"].astype("str"))["amount_micros"].sum()
    for currency, micros in exact.items():
        difference = posted.get(str(currency), 0) * MICROS_PER_CENT - int(micros)
        # each entry (or dropped amount) is rounded once: at most half a cent each
        if abs(difference) * 2 > groups.get(str(currency), 0) * MICROS_PER_CENT:
            raise ExportError(
                f"internal error: the journal moves the {currency} credit balance by "
                f"{format_micros(posted.get(str(currency), 0) * MICROS_PER_CENT)} but the records by {format_micros(int(micros))}"
            )


__all__ = ["Granularity", "build_journal", "journal_prefix", "record_roles"]
