"""The consolidated journals: every account's entries, one file per format, each line carrying
its account (docs/profiles.md, "The consolidated month").

The entries are the accounts' own, as their packs hold them (numbers unique across accounts: each
account has its letter), laid out by the same renderers as one account's pack:

- QuickBooks (IIF and the Online journal): the account is the line's class; a class the mapping
  gave the line becomes its sub-class (``prod:AI Models:Google``), so a class report per account
  totals every class under it. No bank upload: it is one account's prepaid "wallet".
- Xero: tracking category ``WaveSpeedAI account`` with the account as option, the mapping's class
  as the second category (Xero has two at most: the classes may use one category).
- Beancount: each transaction tagged ``#<account>`` and ``wavespeed_account: "<account>"``.
- FOCUS: ``SubAccountId``/``SubAccountName`` the account, the API key in ``x_ApiKeyId``/``x_ApiKeyName``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...books.journal import check_entries
from ...books.mapping import AccountMapping
from ...config import RenderOptions
from ...errors import ConfigError
from ...models import JournalEntry
from ...report import AccountPack, Consolidated
from ..base import entries_by_currency, write_files
from ..beancount import (
    ACCOUNTS_FILE,
    beancount_names,
    render_accounts,
    render_transactions,
)
from ..focus import CONSOLIDATED_HEADER, FOCUS_FILE, focus_rows, write_focus
from ..quickbooks import render_iif, render_qbo_journal
from ..xero import (
    XERO_FILE,
    XERO_HEADER,
    XeroWriter,
    _csv,
    journal_rows,
    split_journals,
)


def account_class(account: str, klass: str) -> str:
    """The QuickBooks class of a consolidated line: the account, the mapping's class under it."""
    return f"{account}:{klass}" if klass else account


def tagged(account: AccountPack) -> list[JournalEntry]:
    """The account's entries with its class on every line."""
    return [replace(entry, lines=tuple(replace(line, klass=account_class(account.name, line.klass))
                                       for line in entry.lines))
            for entry in account.report.journal]


def joint_mapping(consolidated: Consolidated) -> AccountMapping:
    """One mapping naming every account the accounts' mappings declare (they may differ per
    profile); ConfigError when two declare the same account differently."""
    first = consolidated.accounts[0].report.mapping
    accounts = dict(first.accounts)
    for pack in consolidated.accounts[1:]:
        for name, account in pack.report.mapping.accounts.items():
            known = accounts.setdefault(name, account)  # a description may differ: the first one's is listed
            if (known.type, known.code, known.xero_tax_rate) != (account.type, account.code, account.xero_tax_rate):
                raise ConfigError(f"the account {name!r} is declared differently in the mappings of the profiles "
                                  f"(type, Xero code or tax rate): one ledger cannot hold both; make them agree")
    return replace(first, accounts=accounts)


def check(consolidated: Consolidated, formats: tuple[str, ...]) -> None:
    """ConfigError, before anything is written, for what a consolidated journal cannot carry."""
    if {"quickbooks", "beancount"} & set(formats):  # the formats that name accounts from one mapping
        joint_mapping(consolidated)
    if "xero" not in formats:
        return
    categories = sorted({klass.partition(":")[0] for pack in consolidated.accounts
                         for klass in pack.report.mapping.classes})
    if len(categories) > 1:
        raise ConfigError(f"Xero holds two tracking categories at most: the consolidated journal uses one for the "
                          f"account, and the mappings' classes use {len(categories)} ({', '.join(categories)}); "
                          "leave xero out of the formats, or give the classes one category")
    for pack in consolidated.accounts:
        XeroWriter.check_mapping(pack.report.mapping)


def write_quickbooks(consolidated: Consolidated, folder: Path, options: RenderOptions) -> list[Path]:
    entries = [entry for pack in consolidated.accounts for entry in tagged(pack)]
    check_entries(entries)
    lists = joint_mapping(consolidated) if options.iif_lists else None
    files: list[tuple[str, bytes]] = []
    for suffix, part in entries_by_currency(tuple(entries)):
        files.append((f"quickbooks{suffix}.iif", render_iif(part, lists)))
        files.append((f"quickbooks_online_journal{suffix}.csv", render_qbo_journal(part)))
    return write_files(folder, files)


def write_xero(consolidated: Consolidated, folder: Path, options: RenderOptions) -> list[Path]:
    entries = tuple(entry for pack in consolidated.accounts for entry in pack.report.journal)
    check_entries(entries)  # numbers unique across the accounts too
    pack_of = {entry.number: pack for pack in consolidated.accounts for entry in pack.report.journal}
    files: list[tuple[str, bytes]] = []
    for suffix, part in entries_by_currency(entries):
        journals = [journal_rows(entry, pack_of[entry.number].report.mapping, options.date_format,
                                 pack_of[entry.number].name) for entry in part]
        parts = split_journals(journals)
        for index, rows in enumerate(parts, start=1):
            name = f"{XERO_FILE}{suffix}{f'_part{index}' if len(parts) > 1 else ''}.csv"
            files.append((name, _csv([XERO_HEADER, *rows])))
    return write_files(folder, files)


def write_beancount(consolidated: Consolidated, folder: Path) -> list[Path]:
    reports = [pack.report for pack in consolidated.accounts]
    mapping = joint_mapping(consolidated)
    used = set(mapping.accounts) | {name for r in reports for name, _ in r.books.ledger_accounts} | {
        line.account for r in reports for entry in r.journal for line in entry.lines}
    names = beancount_names(used, mapping)
    check_entries([entry for report in reports for entry in report.journal])  # numbers unique across accounts
    folder.mkdir(parents=True, exist_ok=True)
    accounts = folder / ACCOUNTS_FILE
    accounts.write_text(render_accounts(reports, names), encoding="utf-8", newline="\n")
    transactions = folder / f"wavespeed_{consolidated.label}.beancount"
    text = "\n".join(render_transactions(pack.report, names, pack.name) for pack in consolidated.accounts)
    transactions.write_text(text, encoding="utf-8", newline="\n")
    return [accounts, transactions]


def write_focus_file(consolidated: Consolidated, folder: Path) -> list[Path]:
    rows = [row for pack in consolidated.accounts for row in focus_rows(pack.report, pack.name)]
    return [write_focus(folder / FOCUS_FILE, CONSOLIDATED_HEADER, rows)]


__all__ = ["account_class", "check", "joint_mapping", "tagged", "write_beancount", "write_focus_file",
           "write_quickbooks", "write_xero"]
