"""QuickBooks files: Desktop IIF journal, Online journal-entry CSV, Online bank-upload CSV.

The two journal files are thin layouts over ``report.journal`` (built by
:func:`exporter.journal.build_journal`). The bank CSV is a one-sided statement of the prepaid
credit for users who keep it as a bank-type "wallet" account: money in positive, out negative.
Its rows follow the journal's roles: top-ups, payouts, credits without a model and suspense
records one row each; usage and refunded tasks (credits back naming a model) per local day and
model, since one row per task would be thousands of sub-cent lines.

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

from ..accounts import AccountMapping, load_accounts
from ..errors import ExportError
from ..journal import check_entries, record_roles
from ..models import COMPLETED, JournalEntry, Report
from ..money import allocate_cents, format_cents
from .text import import_text

IIF_FILE = "quickbooks.iif"
QBO_JOURNAL_FILE = "quickbooks_online_journal.csv"
QBO_BANK_FILE = "quickbooks_online_bank.csv"
QBO_JOURNAL_HEADER = ["JournalNo", "JournalDate", "AccountName", "Debits", "Credits", "Description", "Name", "Class"]
QBO_BANK_HEADER = ["Date", "Description", "Amount"]
BANK_MAX_ROWS = 1000  # per file, header included [practice: converter vendors; not in Intuit's pages]
BANK_MAX_BYTES = 350 * 1024  # per file [Intuit]
IIF_MAX_MEMO = 4000

_TRNS_COLUMNS = ["TRNSTYPE", "DATE", "ACCNT", "NAME", "CLASS", "AMOUNT", "DOCNUM", "MEMO"]
_IIF_HEADERS = [["!TRNS", "TRNSID", *_TRNS_COLUMNS], ["!SPL", "SPLID", *_TRNS_COLUMNS], ["!ENDTRNS"]]
_AMOUNT = re.compile(r"^-?\d+\.\d{2}$")
_DATE = re.compile(r"^\d{2}/\d{2}/\d{4}$")
_IIF_BREAKS = re.compile(r"[\t\r\n]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r" {2,}")


class QuickBooksWriter:
    """Writes ``quickbooks.iif``, ``quickbooks_online_journal.csv`` and the bank CSV (or its parts).

    ``iif_lists`` puts ``!ACCNT``/``!CLASS`` (and ``!VEND`` for Names) blocks before the journal so
    QuickBooks Desktop creates what is missing. ``accounts`` is the mapping the journal was built
    with (account types for the lists, the vendor for bank descriptions); default: the template.
    """

    def __init__(self, iif_lists: bool = False, accounts: AccountMapping | None = None) -> None:
        self.iif_lists = iif_lists
        self.accounts = accounts

    def write(self, report: Report, folder: Path) -> list[Path]:
        accounts = self.accounts or load_accounts(None)
        currencies = _currencies(report)
        check_entries(report.journal)
        files: list[tuple[str, bytes]] = []
        for currency in currencies or [""]:
            suffix = f"_{_file_safe(currency)}" if len(currencies) > 1 else ""
            entries = [e for e in report.journal if e.currency == currency or len(currencies) <= 1]
            files.append((f"quickbooks{suffix}.iif", render_iif(entries, accounts if self.iif_lists else None)))
            files.append((f"quickbooks_online_journal{suffix}.csv", render_qbo_journal(entries)))
            parts = split_bank_rows(bank_rows(report, currency, accounts.vendor) if currency else [])
            for index, content in enumerate(parts, start=1):
                part = f"_part{index}" if len(parts) > 1 else ""
                files.append((f"quickbooks_online_bank{suffix}{part}.csv", content))
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, content in files:
            path = folder / name
            path.write_bytes(content)
            paths.append(path)
        return paths


def _currencies(report: Report) -> list[str]:
    """Every currency with a journal entry or a completed non-zero record, sorted."""
    frame = report.transactions
    done = frame[(frame["status"] == COMPLETED) & (frame["amount_micros"] != 0)]
    return sorted({e.currency for e in report.journal} | set(done["currency"].astype("str")))


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "XXX"


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
    """One IIF field: ASCII only (accents dropped), no TAB/CR/LF/control characters, ``"`` -> ``'``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _SPACES.sub(" ", _CONTROL.sub("", _IIF_BREAKS.sub(" ", ascii_text)).replace('"', "'")).strip()


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
                "SPL" if index else "TRNS", "", "GENERAL JOURNAL", day, iif_text(line.account),
                iif_text(line.name), iif_text(line.klass), _amount(line.amount_cents), number, memo,
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
    rows.extend(["ACCNT", iif_text(path), kind, iif_text(desc)] for path, (kind, desc) in sorted(types.items()))
    classes = {line.klass for entry in entries for line in entry.lines if line.klass}
    if classes:
        rows.append(["!CLASS", "NAME"])
        rows.extend(["CLASS", iif_text(path)] for path in sorted(_with_parents(classes)))
    names = {line.name for entry in entries for line in entry.lines if line.name}
    if names:
        rows.append(["!VEND", "NAME"])
        rows.extend(["VEND", iif_text(name)] for name in sorted(names))
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

# order of rows within a day
_BANK_ORDER = {"topup": 0, "credit": 1, "task_credit": 2, "payout": 3, "suspense": 4, "usage": 5}


def bank_rows(report: Report, currency: str, vendor: str) -> list[tuple[date, str, int]]:
    """(day, description, cents) for one currency, zero rows left out.

    Top-ups, payouts, credits without a model and suspense records are one row each; usage and
    refunded tasks are summed per local day and model. All rows are rounded together with the
    largest-remainder method, so they add up exactly to the period's completed net, rounded once.
    """
    frame = report.transactions
    done = frame[
        (frame["status"] == COMPLETED) & (frame["amount_micros"] != 0) & (frame["currency"].astype("str") == currency)
    ]
    roles = record_roles(done)
    items: list[tuple[date, int, str, int]] = []  # day, order, description, exact micros
    singles = done.assign(role=roles)[~roles.isin(["usage", "task_credit"])]
    for row in singles.itertuples(index=False):
        method = str(row.payment_method) or "unknown payment method"
        description = {
            "topup": f"{vendor} credit top-up via {method}",
            "payout": f"{vendor} refund of credit paid out to {method}",
            "credit": f"{vendor} credit back ({row.type})",
        }.get(row.role, f"{vendor} {row.type} adjustment to review")
        items.append((row.date.date(), _BANK_ORDER[row.role], description, int(row.amount_micros)))
    for role, title in (("usage", "usage"), ("task_credit", "credit back")):
        part = done[roles == role]
        if part.empty:
            continue
        grouped = part.groupby(["date", "model"], observed=True).agg(
            count=("id", "size"), micros=("amount_micros", "sum")
        )
        for (day, model), count, micros in zip(grouped.index, grouped["count"], grouped["micros"]):
            tasks = f"{count} task" if count == 1 else f"{count} tasks"
            label = str(model) or "(no model)"
            description = f"{vendor} {title} {label} {day.date().isoformat()} ({tasks})"
            items.append((day.date(), _BANK_ORDER[role], description, int(micros)))
    items.sort(key=lambda item: item[:3])
    cents = allocate_cents(dict(enumerate(micros for *_, micros in items)))
    return [(day, import_text(text), cents[i]) for i, (day, _, text, _) in enumerate(items) if cents[i]]


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
