"""Journal numbers: deterministic, unique, at most 11 ASCII letters and digits (IIF DOCNUM).

The prefix names the export window: ``WS`` + yymm for a calendar month (``WS2401``), ``WS`` +
yy + ``Q`` + quarter for a quarter (``WS24Q1``: a summary number is then at most
``WS24Q1U031`` -- month offset, currency digit -- 10 characters), ``W`` + yymmdd of the first
day for any other range (``W240105``). Then the role letter (``T`` top-up, ``U`` usage, ``R``
refunded tasks, ``C`` credit back, ``P`` payout, ``S`` suspense; ``A`` for every late change to a
closed period). Then:

- summaries (usage, refunded tasks): the period part -- nothing for one entry per window,
  the day (daily: day of the month, or the day's offset in a range), or the month's offset when
  a range spans several calendar months -- plus one base-36 digit for the currency when there
  are several (1 = first code alphabetically: ``WS2401U1`` EUR, ``WS2401U2`` USD). When that
  would not fit, a sequence number instead;
- the rest: a sequence number in date order, ``001``...``999``, four digits above 999 when they
  fit, else base 36 of the room left;
- late changes: a summary is ``WS2402A`` (``WS2402A1``, ``WS2402A2``... when there are several:
  one per closed period and currency), the single ones ``WS2402A001``....

See docs/booking.md, "Journal numbers".
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ExportError
from ..models import SUMMARY_ROLES, Role
from ..period import Window

MAX_NUMBER = 11  # IIF DOCNUM / QuickBooks Desktop RefNumber (docs/booking.md, "Journal numbers")
LETTERS: dict[Role, str] = {"topup": "T", "usage": "U", "task_refund": "R", "credit": "C", "payout": "P", "suspense": "S"}
ADJUSTMENT_LETTER = "A"
_DIGITS36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class NumberRequest:
    """What a number is made from: ``period`` is the summary's period part ("" for singles)."""

    role: Role
    currency: str
    period: str
    order: tuple[Any, ...]  # sorts the entries of one role (date first) for sequence numbers
    adjustment: bool = False  # a late change to a closed period


DEFAULT_ACCOUNT = "default"  # the books' account when no profile names one
_CODE_KEY = "journal_code:"  # meta key prefix: the journal letter of each account (Books.journal_code)
DEFAULT_CODE = "S"  # the books' default account (no profile): the numbers as they always were
# one letter per further account in one books file (docs/booking.md, "Journal numbers"): never S
# (the default account) nor W (a range's numbers start with it), so no two accounts share a number
ACCOUNT_CODES = "ABCDEFGHIJKLMNOPQRTUVXYZ"


def journal_prefix(window: Window, code: str = DEFAULT_CODE) -> str:
    """``WS2401`` for the month 2024-01, ``WS24Q1`` for the quarter 2024-Q1, ``W240105`` for a
    range starting 2024-01-05; for another account of the books, its letter ``code`` in place of
    ``S`` (``WA2401``, ``WA24Q1``) or of a range's ``W`` (``A240105``): as long, never the same."""
    if window.kind == "month":
        return f"W{code}{window.first_day:%y%m}"
    if window.kind == "quarter":
        return f"W{code}{window.first_day:%y}Q{(window.first_day.month + 2) // 3}"
    return f"{'W' if code == DEFAULT_CODE else code}{window.first_day:%y%m%d}"


def assign_numbers(requests: list[NumberRequest], window: Window, code: str = DEFAULT_CODE) -> list[str]:
    """A unique number for every request, in the order given (``code``: the account's letter)."""
    prefix = journal_prefix(window, code)
    currencies = sorted({r.currency for r in requests if r.role in SUMMARY_ROLES and not r.adjustment})
    numbers: list[str] = [""] * len(requests)
    _number_adjustments(requests, prefix + ADJUSTMENT_LETTER, numbers)
    for role, letter in LETTERS.items():
        of_role = sorted((i for i, r in enumerate(requests) if r.role == role and not r.adjustment),
                         key=lambda i: requests[i].order)
        if not of_role:
            continue
        head = prefix + letter
        chosen: list[str] | None = None
        if role in SUMMARY_ROLES:
            chosen = [head + requests[i].period + _currency_part(requests[i].currency, currencies) for i in of_role]
            if max(map(len, chosen)) > MAX_NUMBER or len(set(chosen)) < len(chosen):
                chosen = None  # a long range, daily, several currencies: fall back to a sequence
        if chosen is None:
            chosen = [head + code for code in _sequence(len(of_role), MAX_NUMBER - len(head))]
        for i, number in zip(of_role, chosen):
            numbers[i] = number
    return numbers


def _number_adjustments(requests: list[NumberRequest], head: str, numbers: list[str]) -> None:
    """``WS2402A`` (or ``A1``, ``A2``...) for summaries, ``WS2402A001``... for single late changes."""
    summaries = sorted((i for i, r in enumerate(requests) if r.adjustment and r.role in SUMMARY_ROLES),
                       key=lambda i: requests[i].order)
    singles = sorted((i for i, r in enumerate(requests) if r.adjustment and r.role not in SUMMARY_ROLES),
                     key=lambda i: requests[i].order)
    if len(summaries) >= len(_DIGITS36):
        raise ExportError(f"internal error: {len(summaries)} late-change summaries do not fit {MAX_NUMBER}-character numbers")
    for n, i in enumerate(summaries, start=1):
        numbers[i] = head + (_DIGITS36[n] if len(summaries) > 1 else "")
    for i, code in zip(singles, _sequence(len(singles), MAX_NUMBER - len(head))):
        numbers[i] = head + code


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


__all__ = ["ACCOUNT_CODES", "DEFAULT_ACCOUNT", "DEFAULT_CODE", "JournalCodes", "LETTERS", "MAX_NUMBER", "NumberRequest", "assign_numbers", "journal_prefix"]


class JournalCodes:
    """Each account's letter in its journal numbers (docs/profiles.md), as methods of
    :class:`~.database.Books`; kept in the books' ``meta`` table."""

    db: sqlite3.Connection
    account: str
    path: Path

    def journal_code(self) -> str:
        """This account's letter in its journal numbers (books/numbering.py): ``S`` for the default
        account; for another, the letter the books gave it, or the next free one until its first
        export keeps it (:meth:`keep_journal_code`). ConfigError when no letter is left."""
        if self.account == DEFAULT_ACCOUNT:
            return DEFAULT_CODE
        taken = dict(self.db.execute(
            "SELECT key, value FROM meta WHERE substr(key, 1, length(?)) = ?", (_CODE_KEY, _CODE_KEY)).fetchall())
        mine = taken.get(_CODE_KEY + self.account)
        if mine:
            return str(mine)
        free = [code for code in ACCOUNT_CODES if code not in taken.values()]
        if not free:
            raise ConfigError(f"{self.path} holds {len(taken)} accounts besides the default one, as many as journal "
                              f"numbers can tell apart: account {self.account!r} needs books of its own")
        return free[0]

    def keep_journal_code(self, code: str) -> None:
        """Give this account the letter ``code`` for good (inside the export's transaction);
        ConfigError if another account took it meanwhile."""
        if self.account == DEFAULT_ACCOUNT:
            return
        if self.journal_code() != code:
            raise ConfigError(f"{self.path}: another account took the journal letter {code} meanwhile; "
                              "nothing was written, export again")
        self.db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (_CODE_KEY + self.account, code))
