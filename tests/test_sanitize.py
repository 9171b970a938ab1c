"""Import-file text never starts a formula, however its trigger is hidden (docs/booking.md, "CSV and spreadsheet safety")."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.writers.sanitize import FORMULA_TRIGGERS, import_text


@pytest.mark.parametrize("text", [
    "=\u00a0=HYPERLINK(\"http://x\")",  # a no-break space between two triggers (found by a probe)
    " \u2003+cmd|' /C calc'!A0",
    "\uff1dSUM(A1:A2)",  # a fullwidth equals sign becomes "=" under NFKC
    "@\u3000-2+3",
    "\ufe66\ufe66x",
])
def test_hidden_triggers_are_removed(text):
    cleaned = import_text(text)
    assert cleaned and not unicodedata.normalize("NFKC", cleaned).lstrip().startswith(FORMULA_TRIGGERS)


@given(st.text(st.sampled_from(["=", "+", "-", "@", " ", "\u00a0", "\u2003", "\uff1d", "\t", "\n", "a", "é", "1"]), max_size=12))
def test_import_text_is_one_line_and_never_a_formula(text):
    cleaned = import_text(text)
    assert "\n" not in cleaned and "\t" not in cleaned and cleaned == cleaned.strip()
    assert not unicodedata.normalize("NFKC", cleaned).startswith(FORMULA_TRIGGERS)
    assert import_text(cleaned) == cleaned  # stable: a second pass changes nothing


def test_plain_text_is_kept():
    assert import_text("wavespeed-ai/flux-dev  (late)") == "wavespeed-ai/flux-dev  (late)"
