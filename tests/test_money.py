"""Exact money: parsing, formatting, rounding once, and largest-remainder allocation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.extract import jsonexact
from exporter.money import allocate_cents, format_cents, format_micros, parse_amount, round_to_cents


@pytest.mark.parametrize(
    "text, micros, plain",
    [
        ("-0.0025", -2_500, "-0.0025"),
        ("100.00", 100_000_000, "100.00"),
        ("100", 100_000_000, "100"),
        ("1e-3", 1_000, "0.001"),
        ("-15.50", -15_500_000, "-15.50"),
        ("0.000001", 1, "0.000001"),
        ("-0.0", 0, "0.0"),
    ],
)
def test_parse_amount_is_exact(text, micros, plain):
    assert parse_amount(text) == (micros, plain)


@pytest.mark.parametrize("text", ["0.0000001", "1e-7", "abc", "NaN", "Infinity"])
def test_parse_amount_rejects_what_it_cannot_hold(text):
    with pytest.raises(ValueError):
        parse_amount(text)


def test_ten_thousand_quarter_cents_sum_exactly():
    data = jsonexact.loads("[" + ",".join(["0.0025"] * 10_000) + "]")
    total = sum(parse_amount(value)[0] for value in data)
    assert format_micros(total, 4) == "25.0000"


def test_format_micros_and_cents():
    assert format_micros(-25_000_000) == "-25.00"
    assert format_micros(-2_500) == "-0.0025"
    assert format_micros(0) == "0.00"
    assert format_cents(-5) == "-0.05"
    assert format_cents(123456) == "1234.56"


@pytest.mark.parametrize("micros, cents", [(5_000, 1), (4_999, 0), (-5_000, -1), (-4_999, 0), (17_020_000, 1702)])
def test_round_to_cents_is_half_up_away_from_zero(micros, cents):
    assert round_to_cents(micros) == cents


def test_allocation_matches_the_worked_example():  # docs/booking.md, "Worked example"
    exact = {"model-a": 10_004_000, "model-b": 5_004_000, "model-c": 2_004_000, "model-d": 8_000}
    assert allocate_cents(exact) == {"model-a": 1001, "model-b": 500, "model-c": 200, "model-d": 1}


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(-10**9, 10**9), min_size=1, max_size=12))
def test_allocation_ties_out_and_stays_within_a_cent(exact):
    allocated = allocate_cents(exact)
    assert sum(allocated.values()) == round_to_cents(sum(exact.values()))
    for key, micros in exact.items():
        assert abs(Decimal(allocated[key]) - Decimal(micros) / 10_000) < 1
    assert allocate_cents(dict(reversed(list(exact.items())))) == allocated  # order-independent


@pytest.mark.parametrize("text", ["1e400", "-1E+999999999", "1000000000.000001", "-1000000000.5"])
def test_amounts_beyond_a_billion_are_refused(text):
    with pytest.raises(ValueError, match="too large"):
        parse_amount(text)


def test_the_largest_accepted_amount_and_extreme_exponents():
    assert parse_amount("-999999999.999999") == (-999_999_999_999_999, "-999999999.999999")
    assert parse_amount("-1000000000") == (-1_000_000_000_000_000, "-1000000000")  # the bound itself is kept
    with pytest.raises(ValueError, match="more than 6 decimal places"):
        parse_amount("1e-999999999")  # refused without writing out a billion zeros
    assert parse_amount("0E-999999999") == (0, "0.000000")  # a zero's text stays short
    assert parse_amount("0E+999999999") == (0, "0")
