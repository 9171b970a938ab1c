"""Rounding that never drifts: the running totals behind summary entries (docs/booking.md, "Rounding").

The books remember, per line key (account, class, currency), the exact amount booked so far
(micros) and the amount posted (cents). A summary entry (usage, refunded tasks, late changes)
posts on its balance line -- the prepaid credit, or the payable when postpaid --
``round(exact running total after it) - posted before it``: the balance account never differs from
the exact running total by more than half a cent, across days, months and adjustments, and an
amount under a cent is never lost (it waits in the running total until it adds up).

The expense lines (one per account and class) share that amount so that every key's posted
total stays the floor or the ceiling of its exact running total -- within one cent, for ever:
the lines of the entry take their share by largest remainder of what each key is owed; only when
that cannot reach the balance line's amount (other keys rounded up earlier) does a key without
activity in this entry give back (or take) the cent it holds, as a line of its own.

Why not round every key to the nearest cent on its own: the entry must balance, and keys at
0.005, 0.005 and -0.010 round to 0.01, 0.01 and -0.01. The balance line is the one that must tie
to the provider's balance, so it is the one rounded exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..money import MICROS_PER_CENT, round_to_cents

LineKey = tuple[str, str, str]  # (account, class, currency)


@dataclass
class Total:
    """One key's running totals: exact micros and posted cents, debit positive."""

    exact: int = 0
    posted: int = 0

    @property
    def owed(self) -> int:
        """Micros booked but not yet posted (negative: posted ahead)."""
        return self.exact - self.posted * MICROS_PER_CENT


@dataclass
class Carry:
    """The running totals of every balance key and every expense (counter) key."""

    balances: dict[LineKey, Total] = field(default_factory=dict)
    counters: dict[LineKey, Total] = field(default_factory=dict)

    def copy(self) -> Carry:
        return Carry({k: Total(t.exact, t.posted) for k, t in self.balances.items()},
                     {k: Total(t.exact, t.posted) for k, t in self.counters.items()})

    def post(self, balance: LineKey, movements: Mapping[LineKey, int]) -> tuple[int, dict[LineKey, int]]:
        """Post one summary entry: ``movements`` are the exact debit-positive micros per expense key
        (the balance line takes the opposite of their sum). Returns the balance line's cents and
        the cents of every expense key that gets a line (zeros left out); they sum to zero."""
        state = self.balances.setdefault(balance, Total())
        state.exact -= sum(movements.values())
        balance_cents = round_to_cents(state.exact) - state.posted
        state.posted += balance_cents
        for key, micros in movements.items():
            self.counters.setdefault(key, Total()).exact += micros
        currency = balance[2]
        idle = {k: t.owed for k, t in self.counters.items() if k[2] == currency and k not in movements and t.owed}
        active = {k: self.counters[k].owed for k in movements}
        cents = _share(active, idle, -balance_cents)
        for key, amount in cents.items():
            self.counters[key].posted += amount
        return balance_cents, {k: v for k, v in cents.items() if v}


def _share(active: dict[LineKey, int], idle: dict[LineKey, int], total: int) -> dict[LineKey, int]:
    """Cents per key adding up to ``total``; every key ends at the floor or ceiling of what it is owed.

    Active keys start at the floor; the missing cents go to the largest remainders (ties: the
    larger amount, then the key, so re-runs agree). If the active keys cannot reach ``total``,
    idle keys holding a cent in the needed direction give it up, largest amount owed first.
    """
    cents = {key: owed // MICROS_PER_CENT for key, owed in active.items()}
    remainder = {key: owed - cents[key] * MICROS_PER_CENT for key, owed in active.items()}
    order = sorted((k for k in active if remainder[k]), key=lambda k: (-remainder[k], -abs(active[k]), k))
    missing = total - sum(cents.values())
    for key in order[: max(0, missing)]:
        cents[key] += 1
    missing = total - sum(cents.values())
    if missing:  # only idle keys owed a cent in this direction can move without leaving their floor/ceiling
        step = 1 if missing > 0 else -1
        movable = sorted((k for k, owed in idle.items() if owed * step > 0), key=lambda k: (-abs(idle[k]), k))
        for key in movable[: abs(missing)]:
            cents[key] = step
        missing = total - sum(cents.values())
    if missing and cents:  # the running totals disagree (the mapping's balance account changed): keep the entry balanced
        largest = max(cents, key=lambda k: (abs(active.get(k, 0)), k))
        cents[largest] += missing
    return cents


__all__ = ["Carry", "LineKey", "Total"]
