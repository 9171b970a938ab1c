from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter import jsonexact


def test_numbers_keep_their_literal_text():
    data = jsonexact.loads('{"a": -0.0025, "b": 100.00, "c": 1e-3, "d": 7}')
    assert data == {"a": "-0.0025", "b": "100.00", "c": "1e-3", "d": "7"}
    assert all(isinstance(v, jsonexact.Number) for v in data.values())
    assert jsonexact.dumps(data) == '{"a":-0.0025,"b":100.00,"c":1e-3,"d":7}'


def test_strings_that_look_like_numbers_stay_strings():
    data = jsonexact.loads('{"amount": "12.5"}')
    assert not isinstance(data["amount"], jsonexact.Number)
    assert jsonexact.dumps(data) == '{"amount":"12.5"}'


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "{\"a\": -Infinity}"])
def test_non_finite_constants_are_rejected(text):
    with pytest.raises(ValueError):
        jsonexact.loads(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.text() | st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: jsonexact.Number(str(d))),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_dumps_then_loads_round_trips(value):
    assert jsonexact.loads(jsonexact.dumps(value)) == value
