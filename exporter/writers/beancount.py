"""The journal as a Beancount ledger, ``wavespeed_<label>.beancount``: a machine-checkable copy.

Account names come from the QuickBooks name and the IIF type of the mapping: the type picks the
root (``OCASSET`` -> ``Assets``, ``CCARD`` -> ``Liabilities``, ``EXP`` -> ``Expenses``, ...), each
``:`` level becomes a component (``Prepaid Expenses:WaveSpeedAI Credits`` ->
``Assets:Prepaid-Expenses:WaveSpeedAI-Credits``). Amounts are whole cents only: Beancount's
tolerance would hide a sub-cent imbalance (docs/booking.md, "Beancount"). ``bean-check`` passes.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from ..books.journal import check_entries
from ..books.mapping import ACCOUNT_ROOTS, AccountMapping
from ..errors import DataError, ExportError
from ..models import JournalEntry, Report
from ..money import format_cents
from .base import Writer

_CURRENCY = re.compile(r"^[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]$")
_NOT_COMPONENT = re.compile(r"[^A-Za-z0-9-]+")


class BeancountWriter(Writer):
    """Writes ``wavespeed_<label>.beancount`` from ``report.journal``; each account's root comes
    from its type in ``report.mapping``."""

    def write(self, report: Report, folder: Path) -> list[Path]:
        text = render_beancount(report, report.mapping)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"wavespeed_{report.window.label}.beancount"
        path.write_text(text, encoding="utf-8", newline="\n")
        return [path]


def render_beancount(report: Report, accounts: AccountMapping) -> str:
    entries = report.journal
    check_entries(entries)
    names = beancount_names({line.account for entry in entries for line in entry.lines}, accounts)
    currencies_of: dict[str, set[str]] = {}
    for entry in entries:
        for line in entry.lines:
            currencies_of.setdefault(line.account, set()).add(_currency(entry.currency))
    window = report.window
    out = [
        f"; {accounts.vendor} billing export {window.label} ({window.tz_name}), "
        f"wavespeed-export {report.tool_version}",
        f'option "title" {_string(f"{accounts.vendor} billing {window.label}")}',
    ]
    out.extend(f'option "operating_currency" "{c}"' for c in sorted(set().union(*currencies_of.values())))
    out.append("")
    for account in sorted(names, key=names.__getitem__):
        out.append(f"{window.first_day.isoformat()} open {names[account]} {','.join(sorted(currencies_of[account]))}")
    for entry in entries:
        out.append("")
        out.extend(_transaction(entry, names, accounts.vendor))
    return "\n".join(out) + "\n"


def _transaction(entry: JournalEntry, names: dict[str, str], vendor: str) -> list[str]:
    currency = _currency(entry.currency)
    lines = [
        f"{entry.date.isoformat()} * {_string(vendor)} {_string(entry.memo)}",
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


__all__ = ["BeancountWriter", "beancount_names", "render_beancount"]
