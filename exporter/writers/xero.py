"""Xero manual journals: ``xero_manual_journals.csv``, a layout of ``report.journal`` (docs/xero.md).

Xero's manual-journal import groups rows with the same Narration and Date into one journal, so
every journal entry gets a narration of its own (its memo and journal number). Amounts are signed
(positive debit, negative credit) and each journal sums to zero; accounts are written as their
Xero codes and every line carries a tax rate name, both from the account mapping. A QuickBooks
class ``Category:Option`` becomes tracking category ``Category`` with option ``Option``.

Xero takes at most 300 lines per file: a bigger journal set is written as ``_part1``, ``_part2``,
... and a journal is never split across two files. Manual journals are in the organisation's base
currency, so each currency gets its own files (``xero_manual_journals_EUR.csv``) when there are
several, as for QuickBooks. Everything is rendered and checked first, then written.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

from ..books.journal import check_entries
from ..books.mapping import AccountMapping
from ..errors import ConfigError, ExportError
from ..models import JournalEntry
from ..report import Report
from ..money import format_cents
from .base import Writer, entries_by_currency, write_files
from .sanitize import import_text

XERO_FILE = "xero_manual_journals"
XERO_HEADER = [
    "*Narration", "*Date", "Description", "*AccountCode", "*TaxRate", "*Amount",
    "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2",
]
ACCOUNT_TRACKING = "WaveSpeedAI account"  # the consolidated pack's first tracking category
XERO_MAX_LINES = 300  # per file (docs/xero.md); the heading row is counted, to be safe
XERO_MAX_ROWS = XERO_MAX_LINES - 1

_AMOUNT = re.compile(r"^-?\d+\.\d{2}$")

Row = list[str]


class XeroWriter(Writer):
    """Writes ``xero_manual_journals.csv`` (or its parts, per currency when there are several)."""

    journal = True

    @staticmethod
    def check_mapping(mapping: AccountMapping) -> None:
        """Every account a line can post to has a Xero code; every class can be a tracking option."""
        missing = [name for name in mapping.postable_accounts() if not mapping.accounts[name].code]
        if missing:
            listed = ", ".join(repr(name) for name in missing)
            raise ConfigError(
                f"{mapping.source}: Xero needs an account code for every account a journal can post to; "
                f"no code for {listed}: add code = \"...\" to each (see templates/accounts_xero.toml)"
            )
        untaxed = [name for name in mapping.postable_accounts() if not mapping.tax_rate(name)]
        if untaxed:
            raise ConfigError(
                f"{mapping.source}: Xero needs a tax rate name on every journal line and the mapping names none "
                f"for {', '.join(repr(name) for name in untaxed)}: add xero_tax_rate = \"...\" at the top, spelled as "
                "in Xero's Settings > Tax rates (a zero rate: e.g. Tax Exempt in the US, No VAT in the UK, "
                "BAS Excluded in Australia, No GST in New Zealand)"
            )
        flat = [name for name in mapping.classes if ":" not in name]
        if flat:
            raise ConfigError(
                f"{mapping.source}: Xero tracking needs classes of the form \"Category:Option\"; "
                f"{', '.join(repr(name) for name in flat)} has no option level"
            )

    def write(self, report: Report, folder: Path) -> list[Path]:
        mapping = report.mapping
        self.check_mapping(mapping)
        check_entries(report.journal)
        files: list[tuple[str, bytes]] = []
        for suffix, entries in entries_by_currency(report.journal):
            journals = [journal_rows(entry, mapping, self.options.date_format) for entry in entries]
            parts = split_journals(journals)
            for index, rows in enumerate(parts, start=1):
                part = f"_part{index}" if len(parts) > 1 else ""
                files.append((f"{XERO_FILE}{suffix}{part}.csv", _csv([XERO_HEADER, *rows])))
        return write_files(folder, files)


def journal_rows(entry: JournalEntry, mapping: AccountMapping, date_format: str, account: str = "") -> list[Row]:
    """The rows of one journal: same Narration and Date on each, one row per line.

    ``account`` (the consolidated pack): tracking category :data:`ACCOUNT_TRACKING` with that
    option on every line, the class moving to the second tracking category (docs/profiles.md)."""
    narration = import_text(f"{entry.memo} [{entry.number}]")
    day = entry.date.strftime(date_format)
    rows = []
    for line in entry.lines:
        known = mapping.accounts.get(line.account)
        code = known.code if known is not None else ""
        if not code:
            raise ExportError(
                f"account {line.account!r} is in the journal but has no Xero code in the account mapping "
                f"{mapping.source}: give the writer the mapping the journal was built with"
            )
        amount = format_cents(line.amount_cents)
        if line.amount_cents == 0 or not _AMOUNT.match(amount):
            raise ExportError(f"internal error: journal {entry.number} has the amount {amount!r}")
        category, _, option = line.klass.partition(":")
        tracking = [ACCOUNT_TRACKING, account, category, option] if account else [category, option, "", ""]
        rows.append([
            narration, day, import_text(line.memo), code, mapping.tax_rate(line.account), amount, *tracking,
        ])
    return rows


def split_journals(journals: Sequence[list[Row]]) -> list[list[Row]]:
    """Journals packed in order into files of at most :data:`XERO_MAX_ROWS` rows; never one split.

    Always at least one (possibly empty) part. Two journals with the same Narration and Date in a
    file would merge into one in Xero: that is refused as a bug.
    """
    parts: list[list[Row]] = [[]]
    keys: set[tuple[str, str]] = set()
    for rows in journals:
        if len(rows) > XERO_MAX_ROWS:
            raise ExportError(
                f"the journal {rows[0][0]!r} has {len(rows)} lines, more than Xero imports from one file "
                f"({XERO_MAX_ROWS}); map its models to fewer accounts and classes"
            )
        if len(parts[-1]) + len(rows) > XERO_MAX_ROWS:
            parts.append([])
            keys = set()
        key = (rows[0][0], rows[0][1])
        if key in keys:
            raise ExportError(f"internal error: two Xero journals share the narration and date {key}")
        keys.add(key)
        parts[-1].extend(rows)
    return parts


def _csv(rows: list[Row]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)
    return buffer.getvalue().encode("utf-8")


__all__ = ["ACCOUNT_TRACKING", "XERO_HEADER", "XERO_MAX_LINES", "XeroWriter", "journal_rows", "split_journals"]
