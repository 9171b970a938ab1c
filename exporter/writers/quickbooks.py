"""QuickBooks files: Desktop IIF journal, Online journal-entry CSV, Online bank-upload CSV.

All three are layouts of ``report.journal`` (:mod:`exporter.books.journal`); nothing here looks
at the records. The bank CSV is a one-sided statement of the prepaid credit for users who keep
it as a bank-type "wallet" account: one row per journal line on the prepaid account, in the
entry's own granularity, money in positive. So it moves the prepaid account by exactly what the
journal files do. The journal CSV and the bank upload are alternatives: import one, never both
(docs/booking.md, "The QuickBooks Online journal and the bank upload are alternatives"). The
format rules are in docs/booking.md, "IIF", "QuickBooks Online journal" and "QuickBooks Online
bank upload".

Several currencies: QuickBooks' import files carry no currency, and a company's books are kept in
one home currency, so each currency gets its own set of files with the code in the name
(``quickbooks_EUR.iif``, ``quickbooks_online_journal_EUR.csv``, ``quickbooks_online_bank_EUR.csv``);
with one currency the names are plain. Nothing is ever mixed.

Everything is rendered and checked first (balance, DOCNUM length, amount and date patterns), then
written: a failed check is a bug (:class:`~exporter.errors.ExportError`) and leaves no file.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

from ..books.journal import check_entries
from ..books.mapping import AccountMapping
from ..errors import ConfigError, ExportError
from ..models import JournalEntry
from ..report import Report
from ..money import format_cents
from .base import Writer, entries_by_currency, write_files
from .sanitize import import_text

IIF_FILE = "quickbooks.iif"
QBO_JOURNAL_FILE = "quickbooks_online_journal.csv"
QBO_BANK_FILE = "quickbooks_online_bank.csv"
QBO_JOURNAL_HEADER = ["JournalNo", "JournalDate", "AccountName", "Debits", "Credits", "Description", "Name", "Class"]
QBO_BANK_HEADER = ["Date", "Description", "Amount"]
BANK_MAX_ROWS = 1000  # per file, header included: converter practice (docs/booking.md, "QuickBooks Online bank upload")
BANK_MAX_BYTES = 350_000  # per file: Intuit's "350 KB" (docs/booking.md, "QuickBooks Online bank upload")
IIF_MAX_MEMO = 4000  # under the SDK's 4,095 (docs/booking.md, "IIF": field limits)

_TRNS_COLUMNS = ["TRNSTYPE", "DATE", "ACCNT", "NAME", "CLASS", "AMOUNT", "DOCNUM", "MEMO"]
_IIF_HEADERS = [["!TRNS", "TRNSID", *_TRNS_COLUMNS], ["!SPL", "SPLID", *_TRNS_COLUMNS], ["!ENDTRNS"]]
_AMOUNT = re.compile(r"^-?\d+\.\d{2}$")
_DATE = re.compile(r"^\d{2}/\d{2}/\d{4}$")
_IIF_BREAKS = re.compile(r"[\t\r\n]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r" {2,}")


class QuickBooksWriter(Writer):
    """Writes ``quickbooks.iif``, ``quickbooks_online_journal.csv`` and the bank CSV (or its parts).

    ``options.iif_lists`` puts ``!ACCNT``/``!CLASS`` (and ``!VEND`` for Names) blocks before the
    journal so QuickBooks Desktop creates what is missing.
    """

    journal = True

    @staticmethod
    def check_mapping(mapping: AccountMapping) -> None:
        """IIF is ASCII text: a name it cannot carry is refused here, never altered on the way out."""
        for name, what in sorted(mapping.names().items()):
            if not name.isascii():
                raise ConfigError(
                    f"{mapping.source}: the {what} name {name!r} is not plain ASCII, which QuickBooks Desktop "
                    "IIF files cannot carry; rename it (or leave quickbooks out of --format)"
                )

    def write(self, report: Report, folder: Path) -> list[Path]:
        mapping = report.mapping
        check_entries(report.journal)
        files: list[tuple[str, bytes]] = []
        for suffix, entries in entries_by_currency(report.journal):
            files.append((f"quickbooks{suffix}.iif", render_iif(entries, mapping if self.options.iif_lists else None)))
            files.append((f"quickbooks_online_journal{suffix}.csv", render_qbo_journal(entries)))
            parts = split_bank_rows(bank_rows(entries, mapping))
            for index, content in enumerate(parts, start=1):
                part = f"_part{index}" if len(parts) > 1 else ""
                files.append((f"quickbooks_online_bank{suffix}{part}.csv", content))
        return write_files(folder, files)


# -- checks and field formats --------------------------------------------------------------------


def _amount(cents: int) -> str:
    text = format_cents(cents)
    if not _AMOUNT.match(text):
        raise ExportError(f"internal error: amount text {text!r} is not plain -123.45")
    return text


def _date(day: date) -> str:
    text = f"{day.month:02d}/{day.day:02d}/{day.year:04d}"
    if not _DATE.match(text):
        raise ExportError(f"internal error: date text {text!r} is not MM/DD/YYYY")
    return text


def iif_text(text: str) -> str:
    """A free-text IIF field (a memo): ASCII only (accents dropped), no TAB/CR/LF/control
    characters, ``"`` -> ``'``. Names are never passed through here: see :func:`_iif_name`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _SPACES.sub(" ", _CONTROL.sub("", _IIF_BREAKS.sub(" ", ascii_text)).replace('"', "'")).strip()


def _iif_name(name: str) -> str:
    """An account, class or vendor name as the mapping gave it: the check at load time
    guarantees it fits, so an unfit one here is a bug, not something to repair."""
    if name != iif_text(name):
        raise ExportError(f"internal error: the name {name!r} cannot be written to IIF unchanged")
    return name


# -- IIF -----------------------------------------------------------------------------------------


def render_iif(entries: Sequence[JournalEntry], accounts: AccountMapping | None = None) -> bytes:
    """The IIF file; with ``accounts``, list blocks (accounts, classes, vendors) come first."""
    rows: list[list[str]] = []
    if accounts is not None:
        rows.extend(_iif_lists(entries, accounts))
    rows.extend(_IIF_HEADERS)
    for entry in entries:
        day, number = _date(entry.date), entry.number
        for index, line in enumerate(entry.lines):
            memo = iif_text(import_text(line.memo))[:IIF_MAX_MEMO]
            rows.append([
                "SPL" if index else "TRNS", "", "GENERAL JOURNAL", day, _iif_name(line.account),
                _iif_name(line.name), _iif_name(line.klass), _amount(line.amount_cents), number, memo,
            ])
        rows.append(["ENDTRNS"])
    return "".join("\t".join(row) + "\r\n" for row in rows).encode("ascii")


def _iif_lists(entries: Sequence[JournalEntry], accounts: AccountMapping) -> list[list[str]]:
    """``!ACCNT`` (parents first, a parent takes its child's type unless mapped), ``!CLASS``, ``!VEND``."""
    used = sorted({line.account for entry in entries for line in entry.lines})
    types: dict[str, tuple[str, str]] = {}  # full name -> (type, description)
    for name in used:
        try:
            kind = accounts.account_type(name)
        except KeyError:
            raise ExportError(
                f"account {name!r} is in the journal but not in the account mapping {accounts.source}: "
                "give the writer the mapping the journal was built with"
            ) from None
        levels = name.split(":")
        for depth in range(1, len(levels) + 1):
            path = ":".join(levels[:depth])
            known = accounts.accounts.get(path)
            types.setdefault(path, (known.type, known.description) if known else (kind, ""))
    rows = [["!ACCNT", "NAME", "ACCNTTYPE", "DESC"]]
    rows.extend(["ACCNT", _iif_name(path), kind, iif_text(desc)] for path, (kind, desc) in sorted(types.items()))
    classes = {line.klass for entry in entries for line in entry.lines if line.klass}
    if classes:
        rows.append(["!CLASS", "NAME"])
        rows.extend(["CLASS", _iif_name(path)] for path in sorted(_with_parents(classes)))
    names = {line.name for entry in entries for line in entry.lines if line.name}
    if names:
        rows.append(["!VEND", "NAME"])
        rows.extend(["VEND", _iif_name(name)] for name in sorted(names))
    return rows


def _with_parents(names: Iterable[str]) -> set[str]:
    """``{"A:B:C"}`` -> ``{"A", "A:B", "A:B:C"}`` (sorted, a parent comes before its children)."""
    levels: set[str] = set()
    for name in names:
        parts = name.split(":")
        levels.update(":".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return levels


# -- QuickBooks Online journal CSV ----------------------------------------------------------------


def render_qbo_journal(entries: Sequence[JournalEntry]) -> bytes:
    """One row per line: exactly one of Debits/Credits, positive, two decimals; UTF-8, CRLF."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(QBO_JOURNAL_HEADER)
    for entry in entries:
        day = _date(entry.date)
        for line in entry.lines:
            if line.amount_cents == 0:
                raise ExportError(f"internal error: journal entry {entry.number} has a zero line")
            amount = _amount(abs(line.amount_cents))
            debit, credit = (amount, "") if line.amount_cents > 0 else ("", amount)
            writer.writerow([
                entry.number, day, line.account, debit, credit,
                import_text(line.memo), import_text(line.name), line.klass,
            ])
    return buffer.getvalue().encode("utf-8")


# -- QuickBooks Online bank CSV -------------------------------------------------------------------

def bank_rows(entries: Sequence[JournalEntry], mapping: AccountMapping) -> list[tuple[date, str, int]]:
    """(day, description, cents): the journal's lines on the prepaid account, money in positive."""
    return [
        (entry.date, import_text(f"{entry.memo} [{entry.number}]"), line.amount_cents)
        for entry in entries
        for line in entry.lines
        if line.account == mapping.prepaid
    ]


def split_bank_rows(rows: Sequence[tuple[date, str, int]]) -> list[bytes]:
    """The bank CSV as one file, or parts of at most 1,000 rows (header included) and 350 KB."""
    header = _csv_line(QBO_BANK_HEADER)
    parts: list[bytes] = []
    current: list[bytes] = []
    size = len(header)
    for day, description, cents in rows:
        line = _csv_line([_date(day), description, _amount(cents)])
        if len(header) + len(line) > BANK_MAX_BYTES:
            raise ExportError(f"a bank CSV row is longer than {BANK_MAX_BYTES} bytes: {description[:60]!r}")
        if current and (len(current) + 1 >= BANK_MAX_ROWS or size + len(line) > BANK_MAX_BYTES):
            parts.append(header + b"".join(current))
            current, size = [], len(header)
        current.append(line)
        size += len(line)
    parts.append(header + b"".join(current))
    return parts


def _csv_line(fields: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(fields)
    return buffer.getvalue().encode("utf-8")


__all__ = [
    "BANK_MAX_BYTES",
    "BANK_MAX_ROWS",
    "QBO_BANK_HEADER",
    "QBO_JOURNAL_HEADER",
    "QuickBooksWriter",
    "bank_rows",
    "iif_text",
    "render_iif",
    "render_qbo_journal",
    "split_bank_rows",
]
