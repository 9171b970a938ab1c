"""What the terminal shows: the per-model table of ``summary`` and the lines after an export.

One sign convention for people: spend is positive. Usage (negative in the records and the CSV
files) is shown as spend; top-ups and refunds as the credit they add (a refund paid out to the
card shows negative). Amounts are exact, with thousands separators.
"""

from __future__ import annotations

from pathlib import Path

from ..books.adjustments import late_changes
from ..report import Report
from ..money import format_micros
from .figures import late_change_text
from ..pack import PreviousPack

SUMMARY_HEADER = ("model", "currency", "tasks", "spend", "refunds", "net spend", "share")
# the totals' record types, as people call them; usage is shown as spend (positive)
_TYPE_LABELS = {"topup": "top-ups", "usage": "usage spend", "refund": "refunds"}


def money(micros: int) -> str:
    """Exact amount with thousands separators: ``1,234.5678``."""
    text = format_micros(micros)
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, fraction = digits.partition(".")
    return f"{sign}{int(whole):,}" + (f".{fraction}" if fraction else "")


def signed(micros: int) -> str:
    """An exact change: ``+2.24``, ``-0.003``, ``0.00``."""
    return ("+" if micros > 0 else "") + money(micros)


def people_amount(record_type: str, micros: int) -> int:
    """A signed total of ``record_type`` as people read it: usage as positive spend."""
    return -micros if record_type == "usage" else micros


def render_summary(report: Report) -> str:
    """The per-model table with a totals row per currency, then totals per currency and type.

    Per row: spend (usage, positive) - refunds (refunded tasks) = net spend.
    """
    window = report.context.window
    lines = [f"{window.label}  ({window.tz_name}, {report.context.stats.in_period:,} records)", ""]
    by_model = report.summaries.by_model
    rows = [
        (r.model or "(none)", r.currency, f"{r.count:,}", money(-r.amount_micros), money(r.refunds_micros),
         money(-r.net_micros), f"{r.share * 100:.2f}%")
        for r in by_model.itertuples(index=False)
    ]
    total_rows = [
        ("TOTAL", str(currency), f"{int(group['count'].sum()):,}", money(-int(group["amount_micros"].sum())),
         money(int(group["refunds_micros"].sum())), money(-int(group["net_micros"].sum())), "100.00%")
        for currency, group in by_model.groupby("currency")
    ]
    widths = [max(len(cell) for cell in column) for column in zip(SUMMARY_HEADER, *rows, *total_rows)]
    rule = "  ".join("-" * w for w in widths)

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip()

    lines += [fmt(SUMMARY_HEADER), rule, *map(fmt, rows), rule, *map(fmt, total_rows), ""]
    lines += _totals_lines(report, "")
    pending = report.summaries.status_counts[report.summaries.status_counts["status"] != "completed"]
    for r in pending.itertuples(index=False):
        lines.append(f"not counted: {r.count:,} {r.type} record(s) with status {r.status}")
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def render_result(report: Report, folder: Path, files: list[Path], replaced: str | None = None) -> str:
    """The lines printed after an export: where, what it replaced, how many records, totals, the
    roll-forward, notes and warnings."""
    lines = [f"wrote {len(files)} files to {folder}"]
    if replaced:
        lines.append(replaced)
    window = report.context.window
    lines.append(f"{report.context.stats.in_period:,} records in {window.label} ({window.tz_name})")
    lines += _totals_lines(report, "  ")
    lines.extend(render_rollforward(report))
    lines.append(f"{len(report.journal)} journal entries; {len(report.warnings)} warning(s)")
    lines.extend(report.notes)
    lines.extend(f"warning: {w}" for w in report.warnings)
    return "\n".join(lines)


def render_rollforward(report: Report) -> list[str]:
    """The credit roll-forward per currency, and the late changes posted, one line each (spend positive)."""
    lines = []
    for r in report.booked.rollforward:
        opening = "unknown" if r.opening_micros is None else money(r.opening_micros)
        closing = "unknown" if r.closing_micros is None else money(r.closing_micros)
        lines.append(
            f"credit {r.currency}: opening {opening} + top-ups {money(r.topups_micros)} "
            f"- usage {money(-r.usage_micros)} + refunds {money(r.refunds_micros)}"
            + (f" + other {money(r.other_micros)}" if r.other_micros else "")
            + f" + adjustments {money(r.adjustments_micros)} = closing {closing}"
        )
        lines.append(f"  opening: {r.opening_source}")
        if r.topups_derived:
            lines.append(f"  top-ups: {r.topups_source}")
    if report.books.recheck is not None:
        lines.append(f"late changes: {report.books.recheck.text}")
    changes = late_changes(report.booked.adjustments)
    for change in changes:  # as the report says it: spend positive (figures.late_change_text)
        lines.append(f"late changes to {late_change_text(change, signed)}; posted in {report.context.window.label}")
    for currency in sorted({change.currency for change in changes}):
        usage = report.summaries.by_model[report.summaries.by_model["currency"].astype("str") == currency]
        spend = -int(usage["net_micros"].sum())
        late = sum(change.spend_micros for change in changes if change.currency == currency)
        if late:
            lines.append(f"AI spend {currency}: {money(spend)} this period, {money(spend + late)} with the late changes")
    return lines


def replaced_line(previous: PreviousPack) -> str:
    """``replaced output/2024-01 (previous: 11 files, 2026-11-20)``."""
    when = f", {previous.generated_at[:10]}" if previous.generated_at else ""
    return f"replaced {previous.folder} (previous: {previous.files} files{when})"


def _totals_lines(report: Report, indent: str) -> list[str]:
    """One line per (currency, type) of completed records: count and amount, spend positive."""
    return [
        f"{indent}{_TYPE_LABELS.get(r.type, r.type):<12} {r.currency:<4} {r.count:>9,}  "
        f"{money(people_amount(r.type, r.amount_micros)):>18}"
        for r in report.summaries.totals.itertuples(index=False)
    ]


__all__ = ["SUMMARY_HEADER", "money", "people_amount", "render_result", "render_rollforward", "render_summary", "replaced_line"]
