"""The running totals behind summary entries (docs/booking.md, "Rounding"): never drift, always balance."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.books.carry import Carry
from exporter.money import MICROS_PER_CENT, round_to_cents

KEYS = [("Usage", "", "USD"), ("Usage", "A", "USD"), ("Usage", "B", "USD"), ("Video", "C", "USD")]
BALANCE = ("Prepaid", "", "USD")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(KEYS), st.integers(-40_000, 40_000), min_size=1), max_size=40))
def test_balance_is_rounded_exactly_and_every_key_stays_within_a_cent(entries):
    carry = Carry()
    exact = dict.fromkeys(KEYS, 0)
    for movements in entries:
        balance_cents, cents = carry.post(BALANCE, movements)
        assert balance_cents + sum(cents.values()) == 0  # the entry balances
        assert all(cents.values())  # no zero lines
        for key, micros in movements.items():
            exact[key] += micros
        state = carry.balances[BALANCE]
        assert state.posted == round_to_cents(-sum(exact.values()))  # the prepaid side ties, always
        for key, total in carry.counters.items():  # floor or ceiling of the running total
            assert total.exact == exact[key]
            assert total.exact // MICROS_PER_CENT <= total.posted <= -(-total.exact // MICROS_PER_CENT)


def test_entries_post_what_the_running_total_allows():
    carry = Carry()
    assert carry.post(BALANCE, {KEYS[1]: 6_000, KEYS[2]: 6_000}) == (-1, {KEYS[1]: 1})  # 0.012 -> 0.01
    assert carry.post(BALANCE, {KEYS[2]: 2_000}) == (0, {})  # 0.014 -> 0.01: nothing new to post
    assert carry.post(BALANCE, {KEYS[2]: 2_000}) == (-1, {KEYS[2]: 1})  # 0.016 -> 0.02: B's turn
