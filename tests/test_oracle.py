"""Not a byte changes (issue 19): every file of the oracle's packs (tests/oracle.py), in every
format, against the digests of the implementation the columnar core replaces."""

from __future__ import annotations

from pathlib import Path

from oracle import GOLDEN, digests, read_golden


def test_every_file_of_every_format_is_byte_for_byte_the_golden_one(tmp_path: Path) -> None:
    golden = read_golden()
    rendered = digests(tmp_path)
    missing = sorted(set(golden) - set(rendered))
    extra = sorted(set(rendered) - set(golden))
    changed = sorted(name for name in set(golden) & set(rendered) if golden[name] != rendered[name])
    assert not (missing or extra or changed), (
        f"output differs from {GOLDEN.relative_to(GOLDEN.parents[2])}: changed {changed}, missing {missing}, "
        f"new {extra} (regenerate only for a deliberate output change: python tests/oracle.py --write)"
    )


def test_the_generated_month_is_hostile_enough() -> None:
    from oracle import generated_lines

    text = "\n".join(generated_lines())
    for needle in ('"=', '"+', '"-', '"@', '\\t', "E-3", "E+1", "refunded", "pending", "failed", "topup", "refund",
                   "EUR", "+02:00", "-05:30", "z\"", "\\u", "ид_", "null"):
        assert needle in text, needle
