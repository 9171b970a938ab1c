"""The credit roll-forward: opening + top-ups + usage + refunds + other + adjustments = closing.

docs/booking.md, "Roll-forward". Exact micros throughout (usage is negative, refunds are credits
back and payouts, other is any record type the API adds). The opening of a period is, in order:
the amount given with ``--opening-balance``; the closing the books recorded for the previous
contiguous period; or, derived from the provider, its balance now less the net of the completed
records created after the period ended. Otherwise it is unknown, and so is the closing.

Tie-out: whenever the provider's balance was read, the closing computed here is compared with
the provider's figure for the period end; a difference over one cent is a warning naming both
(and the pending amount, in case the provider reserves pending tasks).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..models import ProviderBalance, RollForward, Summaries
from ..money import MICROS_PER_CENT, format_micros

_COLUMNS = {"topup": "topups", "usage": "usage", "refund": "refunds"}


@dataclass(frozen=True)
class Previous:
    """The previous contiguous period in the books and the closings it recorded."""

    label: str
    closings: dict[str, int | None]


def roll_forward(
    summaries: Summaries,
    adjustments: pd.DataFrame | None,
    *,
    previous: Previous | None,
    given_opening: int | None,
    provider: ProviderBalance | None,
    derive_topups: bool = False,
) -> tuple[tuple[RollForward, ...], list[str]]:
    """One RollForward per currency met (records, adjustments or the provider's balance).

    ``derive_topups``: the records hold no top-ups (the current API), so the top-ups of the
    period are what the provider's balance says they were: closing - opening - the other moves;
    the opening then cannot come from the provider (that would need the top-ups).
    """
    totals = summaries.totals
    counts = summaries.status_counts  # the summary, not the detail rows again
    pending = counts[counts["status"] == "pending"].groupby("currency")["amount_micros"].sum()
    deltas = (adjustments.groupby("currency")["delta_micros"].sum()
              if adjustments is not None and len(adjustments) else pd.Series(dtype="int64"))
    warnings: list[str] = []
    used = set(totals["currency"]) | set(counts["currency"]) | set(deltas.index) | set(previous.closings if previous else ())
    if provider is not None and used and provider.currency not in used:
        # a balance in a currency nothing else names: no roll-forward of its own (docs/booking.md, "Roll-forward")
        warnings.append(f"roll-forward: the provider's balance is in {provider.currency}, which no record of the "
                        f"period and no earlier period in the books uses ({', '.join(sorted(used))}): it is not used")
        provider = None
    currencies = sorted(used | ({provider.currency} if provider else set()))
    rows: list[RollForward] = []
    for currency in currencies:
        of_currency = totals[totals["currency"] == currency]
        moves = {"topups": 0, "usage": 0, "refunds": 0, "other": 0}
        for kind, micros in zip(of_currency["type"], of_currency["amount_micros"]):
            moves[_COLUMNS.get(str(kind), "other")] += int(micros)
        adjusted = int(deltas.get(currency, 0))
        movement = sum(moves.values()) + adjusted
        expected = None  # the provider's figure for the period's closing
        if provider is not None and provider.currency == currency and provider.after_net_micros is not None:
            expected = provider.balance_micros - provider.after_net_micros
        topups_source = ""
        if derive_topups:
            opening, source = _opening(currency, len(currencies), previous, given_opening, None, movement, None)
            if opening is not None and expected is not None:
                moves["topups"] = expected - opening - movement
                movement += moves["topups"]
                topups_source = "derived from the provider's balance (the current API lists no top-ups)"
            else:
                topups_source = ("unknown: the current API lists no top-ups; give --topups FILE, or an opening "
                                 "(--opening-balance or a closed previous period) and a provider balance")
            if opening is None:
                source = ("unknown: the current API lists no top-ups, so the provider's balance cannot tell the "
                          "opening; give --opening-balance, or --topups FILE")
        else:
            opening, source = _opening(currency, len(currencies), previous, given_opening, expected, movement, provider)
        closing = None if opening is None else opening + movement
        row = RollForward(
            currency=currency, opening_micros=opening, topups_micros=moves["topups"], usage_micros=moves["usage"],
            refunds_micros=moves["refunds"], other_micros=moves["other"], adjustments_micros=adjusted,
            closing_micros=closing, opening_source=source,
            provider_balance_micros=provider.balance_micros if provider and provider.currency == currency else None,
            pending_micros=int(pending.get(currency, 0)), chained=source.startswith("closing of"),
            topups_source=topups_source,
        )
        rows.append(row)
        warnings += _checks(row, expected, previous, adjustments)
    return tuple(rows), warnings


def _opening(
    currency: str, count: int, previous: Previous | None, given: int | None, expected: int | None,
    movement: int, provider: ProviderBalance | None,
) -> tuple[int | None, str]:
    if given is not None and count == 1:
        return given, "given with --opening-balance"
    if previous is not None and previous.closings.get(currency) is not None:
        return previous.closings[currency], f"closing of {previous.label} in the books"
    if expected is not None and provider is not None:
        return expected - movement, (
            f"derived from the provider's balance ({format_micros(provider.balance_micros)} {currency} at "
            f"{provider.read_at:%Y-%m-%d %H:%M} UTC) less {provider.after_records} completed record(s) after the period"
        )
    if provider is not None and provider.currency == currency and provider.after_net_micros is None:
        return None, f"unknown: {provider.skipped}; give --opening-balance"
    return None, "unknown: no earlier period in the books and no provider balance; give --opening-balance"


def _checks(row: RollForward, expected: int | None, previous: Previous | None, adjustments: pd.DataFrame | None) -> list[str]:
    warnings = []
    if expected is not None and row.closing_micros is not None and abs(row.closing_micros - expected) > MICROS_PER_CENT:
        pending = f"; {format_micros(row.pending_micros)} {row.currency} is pending" if row.pending_micros else ""
        warnings.append(
            f"roll-forward: the closing {format_micros(row.closing_micros)} {row.currency} does not tie to the "
            f"provider's balance, which gives {format_micros(expected)} for the period end "
            f"(difference {format_micros(row.closing_micros - expected)}{pending})"
        )
    recorded = previous.closings.get(row.currency) if previous is not None else None
    if recorded is not None and row.opening_micros is not None and row.opening_micros != recorded:
        gap = row.opening_micros - recorded
        late = 0 if adjustments is None else int(adjustments.loc[adjustments["currency"] == row.currency, "delta_micros"].sum())
        cause = (f"explained by the late changes posted here ({format_micros(late)})" if late == gap
                 else "nothing in the books explains it")
        assert previous is not None
        warnings.append(
            f"roll-forward: the opening {format_micros(row.opening_micros)} {row.currency} breaks the chain: "
            f"{previous.label} closed at {format_micros(recorded)} ({cause})"
        )
    return warnings


__all__ = ["Previous", "roll_forward"]
