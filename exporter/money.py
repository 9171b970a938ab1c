"""Exact money: amounts travel as integer micro-units (1 USD = 1,000,000 micros).

Integers are exact and vectorise in an int64 pandas column, so a month of a million sub-cent
charges sums exactly and fast. Text is produced only at the edges (writers).

Rounding rule, applied once, at the edge: totals are rounded to cents ROUND_HALF_UP; the lines of
a journal entry share the rounding by the largest-remainder method (:func:`allocate_cents`), so
every line is within one cent of its exact amount and the lines add up to the rounded total
(docs/booking.md, "Rounding").
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Hashable, Mapping, TypeVar

import numpy as np

MICROS_PER_UNIT = 1_000_000
MICROS_PER_CENT = 10_000
# A record's amount is at most a billion units either way (records.py refuses more, exit 5).
MAX_AMOUNT_MICROS = 10**9 * MICROS_PER_UNIT
# int64 sums wrap silently. When the magnitudes of all amounts add up to at most this, every sum
# of any of them (and the difference of two such sums) stays inside int64; see sums_fit.
SUM_LIMIT_MICROS = 2**61
_SCALE = Decimal(MICROS_PER_UNIT)
_MICRO = Decimal(1).scaleb(-6)

K = TypeVar("K", bound=Hashable)


CURRENCY_CODE = re.compile(r"[A-Z]{3}")  # an ISO 4217 code, exactly: no case folding, no spaces


def parse_amount(number: Decimal | int | str) -> tuple[int, str]:
    """An exact JSON number -> (micros, plain decimal text with the source's precision).

    >>> parse_amount(Decimal("-0.0025"))
    (-2500, '-0.0025')
    >>> parse_amount("1e2")
    (100000000, '100')

    Raises ValueError when it is not a finite number, is beyond ±1,000,000,000 (no bill is; an
    amount such as 1e400 is an error, not money), or has more precision than a micro. Both are
    checked before any arithmetic: ``1e999999999 * 10**6`` would not finish.
    """
    text = str(number)
    try:
        value = number if isinstance(number, Decimal) else Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text[:40]!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text[:40]!r} is not a finite number")
    if value and value.adjusted() > 9:
        raise ValueError(f"{text[:40]} is too large (at most ±{MAX_AMOUNT_MICROS // MICROS_PER_UNIT:,})")
    if value.quantize(_MICRO) != value:
        raise ValueError(f"{text[:40]} has more than 6 decimal places")
    exponent = value.as_tuple().exponent  # an int: the value is finite
    if isinstance(exponent, int) and exponent < -18:  # only zeros there (checked above): keep the text short
        value = value.quantize(_MICRO)
    micros = int(value * _SCALE)
    if abs(micros) > MAX_AMOUNT_MICROS:
        raise ValueError(f"{text[:40]} is too large (at most ±{MAX_AMOUNT_MICROS // MICROS_PER_UNIT:,})")
    plain = format(value, "f")
    if plain.startswith("-") and value == 0:
        plain = plain[1:]
    return micros, plain


def micros_to_decimal(micros: int) -> Decimal:
    """Exact Decimal value of an amount in micros."""
    return Decimal(int(micros)) / _SCALE


def format_micros(micros: int, min_places: int = 2) -> str:
    """Exact plain text, at least ``min_places`` decimals, no trailing zeros beyond them.

    >>> format_micros(-25_000_000), format_micros(-2_500), format_micros(12_345_678)
    ('-25.00', '-0.0025', '12.345678')
    """
    micros = int(micros)
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_UNIT)
    digits = f"{frac:06d}".rstrip("0")
    digits = digits.ljust(min_places, "0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def round_to_cents(micros: int) -> int:
    """Micros -> cents, ROUND_HALF_UP (half away from zero), the one rounding rule for totals."""
    value = Decimal(int(micros)) / MICROS_PER_CENT
    return int(value.quantize(Decimal(1), ROUND_HALF_UP))


def format_cents(cents: int) -> str:
    """Cents -> '1234.56' / '-0.05' (no symbol, no thousands separator)."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{frac:02d}"


def allocate_cents(exact: Mapping[K, int]) -> dict[K, int]:
    """Round exact micro amounts to cents so the parts add up to the rounded total.

    Largest-remainder method: floor every part to the cent, then hand the missing cents to
    the parts with the largest discarded remainders. Ties go to the larger amount, then to
    the smaller key, so a re-run gives the same result. Every part ends within one cent of
    its exact value and ``sum(result) == round_to_cents(sum(exact))``.
    """
    total = round_to_cents(sum(int(v) for v in exact.values()))
    floors = {k: int(v) // MICROS_PER_CENT for k, v in exact.items()}
    missing = total - sum(floors.values())
    order = sorted(exact, key=lambda k: (-(int(exact[k]) - floors[k] * MICROS_PER_CENT), -abs(int(exact[k])), str(k)))
    for k in order[:missing]:
        floors[k] += 1
    return floors


def sums_fit(micros: np.ndarray) -> bool:
    """Whether the magnitudes of ``micros`` add up to at most :data:`SUM_LIMIT_MICROS`, exactly.

    Bounded amounts (< 2**50) make the int64 sum of a few thousand of them overflow, so the
    check cannot be an int64 sum itself: the magnitudes are split into high and low 32 bits,
    whose separate sums fit int64 for any count below 2**31, and joined as Python ints.
    """
    magnitudes = np.abs(np.asarray(micros, dtype=np.int64))
    high = int((magnitudes >> 32).sum())
    low = int((magnitudes & 0xFFFFFFFF).sum())
    return (high << 32) + low <= SUM_LIMIT_MICROS


__all__ = [
    "MAX_AMOUNT_MICROS",
    "MICROS_PER_CENT",
    "MICROS_PER_UNIT",
    "SUM_LIMIT_MICROS",
    "allocate_cents",
    "format_cents",
    "format_micros",
    "micros_to_decimal",
    "parse_amount",
    "round_to_cents",
    "sums_fit",
]
