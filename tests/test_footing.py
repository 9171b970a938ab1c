"""Every summary table foots, on any records: by_day, by_model, the totals and the terminal's table."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.money import MICROS_PER_UNIT
from exporter.writers.terminal import SUMMARY_HEADER, people_amount, render_result, render_summary
from factories import make_report, record

MODELS = ["a/model", "b/model", "c/video", ""]

records = st.lists(
    st.builds(
        lambda kind, micros, model, status, currency, day, second: record(
            kind, str(Decimal(micros) / MICROS_PER_UNIT), model=model or None, status=status, currency=currency,
            payment_method="stripe" if kind == "topup" else None,
            created_at=f"2024-01-{day:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z",
        ),
        kind=st.sampled_from(["usage", "usage", "usage", "topup", "refund", "adjustment"]),
        micros=st.integers(-300 * MICROS_PER_UNIT, 300 * MICROS_PER_UNIT),
        model=st.sampled_from(MODELS),
        status=st.sampled_from(["completed", "completed", "pending", "failed"]),
        currency=st.sampled_from(["USD", "EUR"]),
        day=st.integers(1, 31),
        second=st.integers(0, 86_399),
    ),
    max_size=40,
)


def _amount(cell: str) -> int:
    """A terminal amount (``1,234.5678``) back to micros."""
    return int(Decimal(cell.replace(",", "")) * MICROS_PER_UNIT)


def _table(text: str) -> tuple[list[list[str]], list[list[str]]]:
    """(model rows, TOTAL rows) of render_summary's table, cells split on the column gaps."""
    lines = text.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("model ")))
    rules = [i for i, line in enumerate(lines) if line.startswith("-----")]
    widths = [len(part) for part in lines[rules[0]].split("  ")]

    def cells(line: str) -> list[str]:
        found, at = [], 0
        for width in widths:
            found.append(line[at:at + width].strip())
            at += width + 2
        return found

    assert cells(lines[header]) == list(SUMMARY_HEADER)
    body = [cells(line) for line in lines[rules[0] + 1:rules[1]]]
    totals = [cells(line) for line in lines[rules[1] + 1:] if line.startswith("TOTAL")]
    return body, totals


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_every_summary_table_foots(raws):
    report = make_report(raws)
    by_day, by_model, totals = report.summaries.by_day, report.summaries.by_model, report.summaries.totals
    done = report.summaries.transactions[report.summaries.transactions["status"] == "completed"]

    # by_day: each row foots, and the rows add up to the completed records per currency
    parts = by_day[["topups_micros", "usage_micros", "refunds_micros", "other_micros"]].sum(axis=1)
    assert (parts == by_day["net_micros"]).all()
    per_currency = {str(c): int(v) for c, v in done.groupby(done["currency"].astype("str"))["amount_micros"].sum().items()}
    assert by_day.groupby("currency")["net_micros"].sum().to_dict() == per_currency
    assert totals.groupby("currency")["amount_micros"].sum().to_dict() == per_currency
    assert by_day.groupby("currency")["count"].sum().to_dict() == totals.groupby("currency")["count"].sum().to_dict()

    # by_model: net = usage + refunded tasks; usage negative, refunds positive; shares add up to ~1
    assert (by_model["net_micros"] == by_model["amount_micros"] + by_model["refunds_micros"]).all()
    assert (by_model["amount_micros"] <= 0).all() and (by_model["refunds_micros"] >= 0).all()
    for _, group in by_model.groupby("currency"):
        if group["amount_micros"].sum():
            assert abs(sum(group["share"]) - 1) <= Decimal("0.0001") * len(group)

    # the terminal's table: spend positive, each row and each TOTAL foots, TOTAL = the rows
    rows, total_rows = _table(render_summary(report))
    assert len(rows) == len(by_model) and len(total_rows) == by_model["currency"].nunique()
    for row in rows + total_rows:
        spend, refunds, net = (_amount(cell) for cell in row[3:6])
        assert spend >= 0 and spend - refunds == net
    for total in total_rows:
        mine = [row for row in rows if row[1] == total[1]]
        for column in (3, 4, 5):
            assert _amount(total[column]) == sum(_amount(row[column]) for row in mine)
        assert _amount(total[3]) == -int(by_model.loc[by_model["currency"] == total[1], "amount_micros"].sum())

    # the totals lines after an export: the same figures, usage as positive spend
    shown = render_result(report, Path("out"), []).splitlines()
    start = shown.index(next(line for line in shown if " records in " in line)) + 1
    end = next(i for i in range(start, len(shown)) if not shown[i].startswith("  ") or shown[i].startswith("  opening"))
    body = shown[start:end]
    parsed = {(" ".join(line.split()[:-3]), line.split()[-3]): (line.split()[-2], _amount(line.split()[-1])) for line in body}
    labels = {"topup": "top-ups", "usage": "usage spend", "refund": "refunds"}
    assert parsed == {
        (labels.get(r.type, r.type), r.currency): (f"{r.count:,}", people_amount(r.type, r.amount_micros))
        for r in totals.itertuples(index=False)
    }
