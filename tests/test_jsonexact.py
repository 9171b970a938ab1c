from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.extract import jsonexact


def test_numbers_are_exact_and_keep_their_digits():
    data = jsonexact.loads('{"a": -0.0025, "b": 100.00, "c": 1e-3, "d": 7, "e": true}')
    assert data == {"a": Decimal("-0.0025"), "b": Decimal("100.00"), "c": Decimal("0.001"), "d": 7, "e": True}
    assert [jsonexact.is_number(v) for v in data.values()] == [True, True, True, True, False]
    assert jsonexact.dumps(data) == '{"a":-0.0025,"b":100.00,"c":0.001,"d":7,"e":true}'


def test_strings_that_look_like_numbers_stay_strings():
    data = jsonexact.loads('{"amount": "12.5"}')
    assert not jsonexact.is_number(data["amount"])
    assert jsonexact.dumps(data) == '{"amount":"12.5"}'


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "{\"a\": -Infinity}"])
def test_non_finite_constants_are_rejected(text):
    with pytest.raises(ValueError):
        jsonexact.loads(text)


def test_many_lines_at_once_and_the_bad_one_named():
    lines = ['{"a": 1.50}', '{"b": "x"}', "[2]"]
    assert jsonexact.loads_lines(lines) == [{"a": Decimal("1.50")}, {"b": "x"}, [2]]
    with pytest.raises(ValueError, match="line 1"):
        jsonexact.loads_lines(['{"a": 1}', '{"b": }', "3"])
    with pytest.raises(ValueError, match="line 0: Extra data"):
        jsonexact.loads_lines(['{"a": 1}, {"b": 2}'])  # two values on one line would shift every record


json_values = st.recursive(
    st.none() | st.booleans() | st.text() | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_dumps_then_loads_round_trips_exactly(value):
    again = jsonexact.loads(jsonexact.dumps(value))
    assert again == value
    assert jsonexact.dumps(again) == jsonexact.dumps(value)  # the digits survive too
