"""Amounts and ratios as people read them: cents with thousands separators, signed changes,
percentages, unit costs. Rounded half up, once, here at the edge (docs/booking.md, "Rounding")."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from ..money import round_to_cents


def money(micros: int) -> str:
    """Cents with thousands separators, half up: ``1,234.57``."""
    cents = round_to_cents(micros)
    return cents_text(cents)


def cents_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{whole:,}.{frac:02d}"


def signed_money(micros: int) -> str:
    """A change: ``+12.30``, ``-0.05``, ``0.00``."""
    cents = round_to_cents(micros)
    return ("+" if cents > 0 else "") + cents_text(cents)


def percent(ratio: Decimal, *, signed: bool = False, places: int = 1) -> str:
    value = (ratio * 100).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    if value == 0:
        value = abs(value)  # never "-0.0%"
    return f"{'+' if signed and value > 0 else ''}{value:,}%"


def price(value: Decimal | None) -> str:
    """A unit cost: 2 to 4 decimals (a task can cost a fraction of a cent), ``-`` when unknown."""
    if value is None:
        return "-"
    text = f"{value.quantize(Decimal('0.0001'), ROUND_HALF_UP):,}"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


__all__ = ["cents_text", "money", "percent", "price", "signed_money"]
