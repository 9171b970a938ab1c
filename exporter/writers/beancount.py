"""The journal as Beancount: one page of a plain-text ledger that runs across months.

Each pack writes ``accounts.beancount`` (the options and an ``open`` for every account the books
have used so far, dated the books' first day) and ``wavespeed_<label>.beancount`` (the period's
transactions and, when the roll-forward knows the closing, a ``balance`` assertion on the prepaid
account the day after the period). A ledger that includes the latest ``accounts.beancount`` once
and every month's file passes ``bean-check``; so does one pack's two files together. The first
period of the books also carries the opening balance (against ``Equity:Opening-Balances``).

Account names come from the QuickBooks name and the IIF type of the mapping: the type picks the
root (``OCASSET`` -> ``Assets``, ``CCARD`` -> ``Liabilities``, ``EXP`` -> ``Expenses``, ...), each
``:`` level becomes a component (``Prepaid Expenses:WaveSpeedAI Credits`` ->
``Assets:Prepaid-Expenses:WaveSpeedAI-Credits``). Amounts are whole cents only: Beancount's
tolerance would hide a sub-cent imbalance (docs/booking.md, "Beancount"). ``bean-check`` passes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from ..books.journal import check_entries
from ..books.mapping import ACCOUNT_ROOTS, AccountMapping
from ..errors import DataError, ExportError
from ..models import JournalEntry, RollForward
from ..report import Report
from ..money import format_cents, round_to_cents
from .base import Writer

_CURRENCY = re.compile(r"^[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]$")
_NOT_COMPONENT = re.compile(r"[^A-Za-z0-9-]+")


OPENING_EQUITY = "Equity:Opening-Balances"
ACCOUNTS_FILE = "accounts.beancount"


class BeancountWriter(Writer):
    """Writes ``accounts.beancount`` and ``wavespeed_<label>.beancount`` from ``report.journal``;
    each account's root comes from its type in ``report.mapping``."""

    journal = True

    def write(self, report: Report, folder: Path) -> list[Path]:
        check_entries(report.journal)
        names = beancount_names(_ledger_accounts(report), report.mapping)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / ACCOUNTS_FILE, folder / f"wavespeed_{report.context.window.label}.beancount"]
        for path, text in zip(paths, (render_accounts([report], names), render_transactions(report, names))):
            path.write_text(text, encoding="utf-8", newline="\n")
        return paths


def _ledger_accounts(report: Report) -> set[str]:
    """Every account the ledger may meet: the mapping's, the books' earlier ones, this journal's.
    Naming them all at once keeps each Beancount name the same from month to month."""
    return (set(report.mapping.accounts) | {name for name, _ in report.books.ledger_accounts}
            | {line.account for entry in report.journal for line in entry.lines})


def _openings(report: Report) -> list[RollForward]:
    """Currencies whose opening balance this file must post: the books' first period, opening known."""
    if report.mapping.postpaid:
        return []
    return [row for row in report.booked.rollforward if row.opening_micros is not None and not row.chained]


def render_accounts(reports: Sequence[Report], names: dict[str, str]) -> str:
    """Options and an ``open`` for every account the books used so far (and this period), in
    every report given (one; several in the consolidated pack)."""
    report = reports[0]
    vendor = report.mapping.vendor
    currencies_of: dict[str, set[str]] = {}
    for each in reports:
        for name, currency in each.books.ledger_accounts:
            currencies_of.setdefault(names[name], set()).add(_currency(currency))
        for entry in each.journal:
            for line in entry.lines:
                currencies_of.setdefault(names[line.account], set()).add(_currency(entry.currency))
        for row in each.booked.rollforward:
            for account in (names[each.mapping.prepaid], OPENING_EQUITY):
                currencies_of.setdefault(account, set()).add(_currency(row.currency))
    first = min(day for each in reports for day in (each.books.start, each.context.window.first_day) if day)
    out = [
        f"; {vendor} accounts for the Beancount ledger, wavespeed-export {report.context.tool_version}: include this",
        "; file once, with the transaction file of every period (wavespeed_<period>.beancount)",
        f'option "title" {_string(f"{vendor} billing")}',
    ]
    out.extend(f'option "operating_currency" "{c}"' for c in sorted(set().union(*currencies_of.values())))
    out.append("")
    out.extend(f"{first.isoformat()} open {account} {','.join(sorted(currencies))}"
               for account, currencies in sorted(currencies_of.items()))
    return "\n".join(out) + "\n"


def render_transactions(report: Report, names: dict[str, str], account: str = "") -> str:
    """The period's transactions (and opening balance, and closing ``balance`` assertion).

    ``account`` (the consolidated pack): every transaction tagged ``#<account>`` and carrying
    ``wavespeed_account``; no balance assertion, since accounts may share the prepaid account
    (each account's own pack asserts its own; docs/profiles.md)."""
    window, vendor = report.context.window, report.mapping.vendor
    prepaid = names[report.mapping.prepaid]
    tag = f" #{account}" if account else ""
    out = [f"; {vendor} billing {window.label} ({window.tz_name}){' of ' + account if account else ''}, "
           f"wavespeed-export {report.context.tool_version}:",
           f"; transactions only, the accounts are opened in {ACCOUNTS_FILE}"]
    for row in _openings(report):
        cents, currency = round_to_cents(int(row.opening_micros or 0)), _currency(row.currency)
        title = _string("Opening balance of the prepaid credit")
        out += ["", f"{window.first_day.isoformat()} * {_string(vendor)} {title}{tag}", *_account_meta(account), f"  source: {_string(row.opening_source)}",
                f"  {prepaid}  {format_cents(cents)} {currency}", f"  {OPENING_EQUITY}  {format_cents(-cents)} {currency}"]
    for entry in report.journal:
        out.append("")
        out.extend(_transaction(entry, names, vendor, account))
    if not report.mapping.postpaid and not account:
        after = (window.last_day + timedelta(days=1)).isoformat()
        for row in report.booked.rollforward:
            if row.topups_derived:  # top-ups the journal did not book: the ledger cannot hold this closing
                out += ["", f"; no balance assertion for {row.currency}: top-ups {row.topups_source}"]
            elif row.closing_micros is not None:
                out += ["", f"{after} balance {prepaid}  {format_cents(round_to_cents(row.closing_micros))} "
                            f"{_currency(row.currency)}"]
    return "\n".join(out) + "\n"


def _account_meta(account: str) -> list[str]:
    return [f"  wavespeed_account: {_string(account)}"] if account else []


def _transaction(entry: JournalEntry, names: dict[str, str], vendor: str, account: str = "") -> list[str]:
    currency = _currency(entry.currency)
    lines = [
        f"{entry.date.isoformat()} * {_string(vendor)} {_string(entry.memo)}{f' #{account}' if account else ''}",
        *_account_meta(account),
        f"  journal_no: {_string(entry.number)}",
    ]
    if entry.source_ids:
        lines.append(f"  source_id: {_string(', '.join(entry.source_ids))}")
    width = max(len(names[line.account]) for line in entry.lines) + 2
    for line in entry.lines:
        lines.append(f"  {names[line.account]:<{width}}{format_cents(line.amount_cents):>12} {currency}")
        if line.memo and line.memo != entry.memo:
            lines.append(f"    memo: {_string(line.memo)}")
        if line.klass:
            lines.append(f"    class: {_string(line.klass)}")
        if line.name:
            lines.append(f"    name: {_string(line.name)}")
    return lines


def beancount_names(used: set[str], accounts: AccountMapping) -> dict[str, str]:
    """QuickBooks full name -> a valid, distinct Beancount account name."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for name in sorted(used):
        try:
            root = ACCOUNT_ROOTS[accounts.account_type(name)]
        except KeyError:
            raise ExportError(
                f"account {name!r} is in the journal but not in the account mapping {accounts.source}: "
                "give the writer the mapping the journal was built with"
            ) from None
        candidate = ":".join([root, *(_component(level) for level in name.split(":"))])
        unique, n = candidate, 1
        while unique in taken:  # "AI API Usage" and "AI-API Usage" must stay apart
            n += 1
            unique = f"{candidate}-{n}"
        taken.add(unique)
        names[name] = unique
    return names


def _component(level: str) -> str:
    """``WaveSpeedAI Credits`` -> ``WaveSpeedAI-Credits``; starts with a capital letter or digit."""
    ascii_level = unicodedata.normalize("NFKD", level).encode("ascii", "ignore").decode("ascii")
    component = _NOT_COMPONENT.sub("-", ascii_level).strip("-")
    if not component:
        return "X"
    if not (component[0].isdigit() or component[0].isupper()):
        component = component[0].upper() + component[1:] if component[0].isalpha() else "X" + component
    return component


def _currency(code: str) -> str:
    upper = code.strip().upper()
    if not _CURRENCY.match(upper):
        raise DataError(f"currency {code!r} cannot be written as a Beancount commodity")
    return upper


def _string(text: str) -> str:
    cleaned = re.sub(r"[\x00-\x1f\x7f]+", " ", text)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["ACCOUNTS_FILE", "BeancountWriter", "beancount_names", "render_accounts", "render_transactions"]
