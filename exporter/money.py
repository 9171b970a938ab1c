"""Exact money: amounts travel as integer micro-units (1 USD = 1,000,000 micros).

Integers are exact and vectorise in an int64 pandas column, so a month of a million sub-cent
charges sums exactly and fast. Text is produced only at the edges (writers).

Rounding rule, applied once, at the edge: totals are rounded to cents ROUND_HALF_UP; the lines of
a journal entry share the rounding by the largest-remainder method (:func:`allocate_cents`), so
every line is within one cent of its exact amount and the lines add up to the rounded total
(docs/booking.md, "Rounding").
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Hashable, Mapping, TypeVar

MICROS_PER_UNIT = 1_000_000
MICROS_PER_CENT = 10_000
_SCALE = Decimal(MICROS_PER_UNIT)
_MICRO = Decimal(1).scaleb(-6)
MAX_AMOUNT_DIGITS = 9  # an amount is below 10**9 units: int64 micros then sum safely over ~9,000 such records

K = TypeVar("K", bound=Hashable)


def parse_amount(number: Decimal | int | str) -> tuple[int, str]:
    """An exact JSON number -> (micros, plain decimal text with the source's precision).

    >>> parse_amount(Decimal("-0.0025"))
    (-2500, '-0.0025')
    >>> parse_amount("1e2")
    (100000000, '100')

    Raises ValueError when it is not a finite number, is 10**9 or more in size (no bill is; an
    amount such as 1e400 is an error, not money), or has more precision than a micro.
    """
    text = str(number)
    try:
        value = number if isinstance(number, Decimal) else Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text[:40]!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text[:40]!r} is not a finite number")
    if value and value.adjusted() >= MAX_AMOUNT_DIGITS:  # checked first: 1e999999999 * 10**6 overflows
        raise ValueError(f"{text[:40]} is too large (at most {MAX_AMOUNT_DIGITS} digits before the point)")
    if value.quantize(_MICRO) != value:
        raise ValueError(f"{text[:40]} has more than 6 decimal places")
    exponent = value.as_tuple().exponent  # an int: the value is finite
    if isinstance(exponent, int) and exponent < -18:  # only zeros there (checked above): keep the text short
        value = value.quantize(_MICRO)
    plain = format(value, "f")
    if plain.startswith("-") and value == 0:
        plain = plain[1:]
    return int(value * _SCALE), plain


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


__all__ = [
    "MICROS_PER_CENT",
    "MICROS_PER_UNIT",
    "allocate_cents",
    "format_cents",
    "format_micros",
    "micros_to_decimal",
    "parse_amount",
    "round_to_cents",
]
