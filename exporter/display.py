"""Terminal-safe text: the one function everything printed goes through (docs/booking.md,
"CSV and spreadsheet safety", "Terminal and report").

Text from the server (model names, error bodies, record fields) reaches the terminal in tables,
warnings, notes and error messages. A terminal obeys control characters: ESC starts sequences
that set the window title or rewrite the screen, C1 codes (U+0080-U+009F, e.g. CSI U+009B) do the
same on many terminals, BEL rings. So every C0 control but the newline (TAB and CR included),
DEL and every C1 control is shown as U+FFFD, the replacement character, as the human-facing CSV
files already show them (writers/sanitize.py): the text stays readable and the same name reads
the same in the terminal, the CSV and report.html.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import click

REPLACEMENT = "\ufffd"
_UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_UNSAFE_IN_JSON = re.compile(r"[\x7f-\x9f]")  # json.dumps escapes C0 itself, not DEL and C1


def visible(text: str) -> str:
    """``text`` with every control character but the newline shown as U+FFFD."""
    if text.isprintable():  # one C-level scan settles the usual case
        return text
    return _UNSAFE.sub(REPLACEMENT, text)


def echo(text: str, *, err: bool = False) -> None:
    """click.echo of terminal-safe text: every line the CLI prints goes through here."""
    click.echo(visible(text), err=err)


def json_text(value: Any) -> str:
    """JSON for scripts, exact (no text replaced) and terminal-safe: C1 and DEL as \\u escapes."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class VisibleFormatter(logging.Formatter):
    """Log lines (retries, skipped pages: they quote the server) made terminal-safe."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))


__all__ = ["REPLACEMENT", "VisibleFormatter", "echo", "json_text", "visible"]
