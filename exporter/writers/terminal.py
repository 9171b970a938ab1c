"""What the terminal shows: the per-model table of ``summary`` and the lines after an export."""

from __future__ import annotations

from pathlib import Path

from ..models import Report
from ..money import format_micros


def render_summary(report: Report) -> str:
    """The per-model table with a totals row, then totals per currency and type."""
    lines = [f"{report.window.label}  ({report.window.tz_name}, {report.stats.in_period:,} records)", ""]
    header = ("model", "currency", "count", "amount", "share")
    rows = [
        (r.model or "(none)", r.currency, f"{r.count:,}", format_micros(r.amount_micros), f"{r.share * 100:.2f}%")
        for r in report.by_model.itertuples(index=False)
    ]
    total_rows = [
        ("TOTAL usage", str(currency), f"{int(group['count'].sum()):,}",
         format_micros(int(group["amount_micros"].sum())), "100.00%")
        for currency, group in report.by_model.groupby("currency")
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, *total_rows)]
    rule = "  ".join("-" * w for w in widths)

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip()

    lines += [fmt(header), rule, *map(fmt, rows), rule, *map(fmt, total_rows), ""]
    for r in report.totals.itertuples(index=False):
        lines.append(f"{r.type:<10} {r.currency:<4} {r.count:>9,}  {format_micros(r.amount_micros):>16}")
    pending = report.status_counts[report.status_counts["status"] != "completed"]
    for r in pending.itertuples(index=False):
        lines.append(f"not counted: {r.count:,} {r.type} record(s) with status {r.status}")
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def render_result(report: Report, folder: Path, files: list[Path]) -> str:
    """The lines printed after an export: where, how many records, totals, warnings."""
    lines = [
        f"wrote {len(files)} files to {folder}",
        f"{report.stats.in_period:,} records in {report.window.label} ({report.window.tz_name})",
    ]
    for r in report.totals.itertuples(index=False):
        lines.append(f"  {r.type:<10} {r.currency:<4} {r.count:>9,}  {format_micros(r.amount_micros):>16}")
    lines.extend(render_rollforward(report))
    lines.append(f"{len(report.journal)} journal entries; {len(report.warnings)} warning(s)")
    lines.extend(report.notes)
    lines.extend(f"warning: {w}" for w in report.warnings)
    return "\n".join(lines)


def render_rollforward(report: Report) -> list[str]:
    """The credit roll-forward per currency, and the late changes posted, one line each."""
    lines = []
    for r in report.rollforward:
        opening = "unknown" if r.opening_micros is None else format_micros(r.opening_micros)
        closing = "unknown" if r.closing_micros is None else format_micros(r.closing_micros)
        lines.append(
            f"credit {r.currency}: opening {opening} + top-ups {format_micros(r.topups_micros)} "
            f"- usage {format_micros(-r.usage_micros)} + refunds {format_micros(r.refunds_micros)}"
            + (f" + other {format_micros(r.other_micros)}" if r.other_micros else "")
            + f" + adjustments {format_micros(r.adjustments_micros)} = closing {closing}"
        )
        lines.append(f"  opening: {r.opening_source}")
    if report.adjustments is not None and len(report.adjustments):
        for (period, currency), part in report.adjustments.groupby(["period", "currency"], sort=True):
            lines.append(f"late changes to {period}: {len(part)} record(s), "
                         f"{format_micros(int(part['delta_micros'].sum()))} {currency} posted in {report.window.label}")
    return lines


__all__ = ["render_result", "render_summary"]
