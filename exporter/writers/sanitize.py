"""Text hygiene shared by the writers: spreadsheet formula injection and delimiter safety.

A spreadsheet runs a cell as a formula when it starts with = + - @ TAB CR or LF (OWASP CSV
injection). Human-facing CSVs prefix such free text with ``'``; import files (IIF, QuickBooks
Online CSVs) cannot carry that prefix into a memo, so they drop the leading trigger characters.
Amounts, dates and generated ids never pass through here: they are validated, not altered.
See docs/booking.md, "CSV and spreadsheet safety".
"""

from __future__ import annotations

import re
import unicodedata

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# what a human-facing CSV never carries raw: C0 controls but TAB/LF/CR (quoted as CSV allows), DEL, C1
_CSV_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"[\t\r\n]+")


def neutralize(text: str) -> str:
    """Free text for a human-facing CSV: control characters shown as U+FFFD, and ``'`` prefixed
    when a spreadsheet would execute it. Every text cell of every CSV of the pack goes through here."""
    if not text.isprintable():  # one C-level scan settles the usual case
        text = _CSV_CONTROL.sub("\ufffd", text)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def import_text(text: str) -> str:
    """Free text for an import file: one line, no control characters, no leading trigger.

    Leading whitespace of any kind and triggers are taken off together until neither is left,
    judged on the compatibility form of each character (a no-break space or a fullwidth ``＝``
    would otherwise hide an ``=`` behind it, or become one in a tool that normalises).
    """
    text = _LINE_BREAKS.sub(" ", _CONTROL.sub("", text)).rstrip()
    start = 0
    while start < len(text) and (text[start].isspace() or unicodedata.normalize("NFKC", text[start])[:1] in _LEADING):
        start += 1
    return text[start:]


_LEADING = frozenset("=+-@ ")


def excel_text(text: str) -> str:
    """Free text for an openpyxl cell: strip the control characters openpyxl refuses."""
    return _CONTROL.sub("", text)
