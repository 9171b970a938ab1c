"""report.html: the Summary as one self-contained page, for a browser, a phone or a PDF printer.

Same figures as the Summary sheet (:mod:`.figures`), the charts as inline SVG (:mod:`.svg`) and
the full model table. Nothing is fetched: no external URL, font, script or image, and the style
sheet is inline. Every text from the data goes through :func:`~.svg.esc` (a model name is
chosen by whoever names models, so it is treated as hostile).
"""

from __future__ import annotations

from datetime import timezone
from pathlib import Path

from ..report import Report
from ..money import MICROS_PER_CENT, format_micros
from .base import Writer
from .figures import (
    CurrencyFigures, Figures, compute, late_changes_text, left_out_text, money, percent, period_text, price, signed_money,
)
from .svg import Bar, columns, esc, horizontal_bars

REPORT_NAME = "report.html"
_DASH = "–"
_DAYS_WIDTH = 434  # the plot width of a month of daily bars (31 x 14): other column charts match it
_STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bar: #4472c4; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 62rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.meta, .note, footer { color: var(--muted); }
.meta span { margin-right: 1.2rem; white-space: nowrap; }
dl.headline { display: grid; grid-template-columns: repeat(auto-fit, minmax(10.5rem, 1fr)); gap: .6rem; margin: 0; }
dl.headline div { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .7rem; }
dl.headline dt { font-size: .85rem; color: var(--muted); min-height: 2.6em; }
dl.headline dd { margin: 0; font-size: 1.35rem; font-weight: 600; font-variant-numeric: tabular-nums; }
dl.headline dd.note { font-size: .8rem; font-weight: 400; color: var(--muted); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: .9rem; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; white-space: normal; overflow-wrap: break-word; min-width: 9rem; }
thead th { background: #f6f8fa; }
tr.other td:first-child, tr.refunds td { font-style: italic; color: var(--muted); }
tr.total td { font-weight: 600; border-top: 2px solid var(--ink); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(19rem, 1fr)); gap: 1rem 2rem;
          margin-top: 1rem; }
figure { margin: 0; }
.stack { display: grid; gap: 1rem; align-content: start; }
figcaption { font-weight: 600; font-size: .9rem; margin-bottom: .3rem; }
svg.chart { width: 100%; max-width: 36rem; height: auto; display: block; }
svg .bar { fill: var(--bar); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg text { font-size: 13px; fill: var(--ink); }
svg .value { font-size: 12px; }
svg .axis { font-size: 11px; fill: var(--muted); }
.left-out { margin-top: 1rem; }
ul.warnings { padding-left: 1.2rem; }
@media (max-width: 40rem) {
  main { padding: .6rem; }
  dl.headline dd { font-size: 1.15rem; }
  table { font-size: .8rem; }
  th, td { padding: .2rem .3rem; }
  th:first-child, td:first-child { min-width: 6rem; }
}
@media print {
  @page { size: A4; margin: 12mm; }
  body { font-size: 9pt; }
  main { max-width: none; padding: 0; }
  h1 { font-size: 15pt; }
  h2 { font-size: 11pt; margin: .6rem 0 .3rem; }
  h3 { margin: .6rem 0 .2rem; }
  dl.headline { grid-template-columns: repeat(5, 1fr); gap: .4rem; }
  dl.headline dd { font-size: 13pt; }
  th, td { padding: .1rem .4rem; }
  table { font-size: 8.5pt; }
  .charts { grid-template-columns: 1fr 1fr; margin-top: .8rem; }
  figure, .currency table, dl.headline, tr { break-inside: avoid; }
  #all-models { break-before: page; }
  .scroll { overflow: visible; }
}
"""


class HtmlReportWriter(Writer):
    """``report.html``: the month's report, self-contained."""

    def write(self, report: Report, folder: Path) -> list[Path]:
        path = Path(folder) / REPORT_NAME
        path.write_text(render(report), encoding="utf-8")
        return [path]


def render(report: Report) -> str:
    figures = compute(report)
    title = f"WaveSpeedAI spend report {figures.label}"
    body = [
        "<header>",
        "<h1>WaveSpeedAI spend report</h1>",
        f'<p class="meta"><span>Account <b>{esc(figures.account)}</b></span> '
        f"<span>Period <b>{esc(figures.label)}</b></span> <span>{esc(period_text(figures))}</span></p>",
        "</header>",
    ]
    if not figures.currencies:
        body.append("<p><b>No completed records in this period.</b></p>")
    for currency in figures.currencies:
        body += _currency_section(figures, currency)
    body.append(f'<p class="left-out" id="left-out">{esc(left_out_text(figures.left_out))}</p>')
    late = late_changes_text(figures.late_changes)
    if late:
        body.append(f'<p class="left-out" id="late-changes">{esc(late)}</p>')
    for currency in figures.currencies:
        body += ['<div class="charts">', *_charts(figures, currency), "</div>"]
    body += _all_models(report)
    if figures.warnings:
        body += ['<section id="warnings"><h2>Warnings</h2><ul class="warnings">',
                 *(f"<li>{esc(w)}</li>" for w in figures.warnings), "</ul></section>"]
    generated = report.context.generated_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body.append(
        f"<footer><p>{figures.records:,} records of the period, made by wavespeed-export "
        f"{esc(report.context.tool_version)} at {esc(generated)}. Exact amounts: the CSV files and the workbook of "
        "this pack.</p></footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="wavespeed-export {esc(report.context.tool_version)}">\n'
        f"<title>{esc(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def _currency_section(figures: Figures, c: CurrencyFigures) -> list[str]:
    code = esc(c.currency)
    return [
        f'<section class="currency" id="currency-{code}">',
        f"<h2>This period ({code})</h2>",
        *_headline(figures, c),
        f"<h3>Top models ({c.model_count:,} model{'s' if c.model_count != 1 else ''})</h3>",
        *_top_models(figures, c),
        *_top_keys(c),
        "</section>",
    ]


def _figure(key: str, label: str, value: str, note: str) -> str:
    return (
        f'<div><dt>{esc(label)}</dt><dd data-figure="{esc(key)}">{esc(value)}</dd>'
        f'<dd class="note">{esc(note)}</dd></div>'
    )


def _headline(figures: Figures, c: CurrencyFigures) -> list[str]:
    spend_note = f"usage {money(c.usage_micros)} less {money(c.refunded_micros)} refunded tasks; {c.tasks:,} tasks"
    if c.change_micros is None or figures.previous_label is None or c.previous_spend_micros is None:
        change = _figure("change", "Change vs previous period", _DASH, "no earlier period in the books")
    else:
        ratio = _DASH if c.change_ratio is None else percent(c.change_ratio, signed=True)
        change = _figure(
            "change", f"Change vs {figures.previous_label}", signed_money(c.change_micros),
            f"{ratio}; {figures.previous_label}: {money(c.previous_spend_micros)}",
        )
    rollforward = c.rollforward
    if rollforward is None or rollforward.closing_micros is None:
        closing = _figure("closing", "Closing credit balance", _DASH, "roll-forward not available")
    else:
        opening = _DASH if rollforward.opening_micros is None else money(rollforward.opening_micros)
        closing = _figure("closing", "Closing credit balance", money(rollforward.closing_micros),
                          f"opening {opening} ({rollforward.opening_source})")
    if c.runway_days is None:
        why = "needs the closing balance" if c.closing_micros is None else "spend under 0.01 a day: no rate to run down at"
        runway = _figure("runway", "Runway", _DASH, why)
    else:
        runway = _figure("runway", "Runway", f"{c.runway_days:,} days",
                         f"at {money(c.average_daily_micros)} a day (average over {c.days} days)")
    return [
        '<dl class="headline">',
        _figure("spend", "AI spend this period", money(c.spend_micros), spend_note),
        *([_figure("spend_with_late", "AI spend with late changes", money(c.spend_with_late_micros),
                   f"this period's {money(c.spend_micros)} plus {signed_money(c.late_spend_micros)} "
                   "of late changes to closed periods")] if c.shows_late_spend else []),
        change,
        _figure("topups", "Top-ups", _DASH if c.topups_micros is None else money(c.topups_micros), c.topups_note),
        closing,
        runway,
        "</dl>",
    ]


def _top_models(figures: Figures, c: CurrencyFigures) -> list[str]:
    """The Summary's table: top models, Other, refunded tasks, and the total = AI spend (it foots)."""
    change_head = f"vs {figures.previous_label}" if figures.previous_label else "Change"
    heads = ["Model", "Spend", "Share", "Tasks", "Unit cost"] + ([change_head, "Change %"] if c.compares else [])
    rows = []
    cents = c.table_cents()
    for line, line_cents in zip(c.models, cents):
        cells = [line.label, _cents(line_cents), percent(line.share), f"{line.tasks:,}", price(line.unit_cost)]
        if c.compares:
            cells += [_signed(line.change_micros), _DASH if line.change_ratio is None else percent(line.change_ratio, signed=True)]
        rows.append(_row(cells, "other" if line.other else ""))
    if c.refunded_micros:
        cells = ["Refunded tasks", _cents(cents[-1]), "", "", ""]
        rows.append(_row(cells + ([_signed(c.refunded_change_micros), ""] if c.compares else []), "refunds"))
    total = ["AI spend", _cents(sum(cents)), "", f"{c.tasks:,}", ""]
    if c.compares:
        total += [_signed(c.change_micros), _DASH if c.change_ratio is None else percent(c.change_ratio, signed=True)]
    rows.append(_row(total, "total"))
    return _table(f"top-models-{esc(c.currency)}", heads, rows)


def _top_keys(c: CurrencyFigures) -> list[str]:
    """The Summary's by-API-key table (README, "Spend per API key"); nothing when no record names a key."""
    if not c.keys:
        return []
    heads = ["API key", "AI spend", "Share", "Tasks", "Refunded"]
    cents = c.key_cents()
    rows = [
        _row([line.label, _cents(n), percent(line.share), f"{line.tasks:,}", money(line.refunded_micros)],
             "other" if line.other else "")
        for line, n in zip(c.keys, cents)
    ]
    rows.append(_row(["AI spend", _cents(sum(cents)), "", f"{c.tasks:,}", ""], "total"))
    return [
        f"<h3>By API key ({c.key_count:,} key{'s' if c.key_count != 1 else ''})</h3>",
        *_table(f"top-keys-{esc(c.currency)}", heads, rows),
    ]


def _charts(figures: Figures, c: CurrencyFigures) -> list[str]:
    """Spend by model (the table's lines, "Other" included), daily usage, and the books' periods."""
    cents = c.table_cents()
    by_model = [Bar(line.label, line.usage_micros, _cents(n)) for line, n in zip(c.models, cents)]
    daily = [Bar(str(day.day), micros, f"{day.isoformat()}: {money(micros)}") for day, micros in c.daily]
    if len(daily) <= 31:  # a month: days 1, 5, 10, ... under the bars
        labelled = [i for i, (day, _) in enumerate(c.daily) if day.day == 1 or day.day % 5 == 0]
        daily_svg = columns(daily, f"Daily usage ({c.currency})", labelled=labelled)
    else:  # a longer range: the first of each month, labelled by its date
        labelled = [i for i, (day, _) in enumerate(c.daily) if day.day == 1]
        daily = [Bar(day.isoformat()[:7] if day.day == 1 else str(day.day), b.micros, b.value)
                 for (day, _), b in zip(c.daily, daily)]
        daily_svg = columns(daily, f"Daily usage ({c.currency})", slot=max(2, _DAYS_WIDTH // len(daily)), labelled=labelled)
    over_time = [_chart_figure(f"Daily usage ({c.currency})", daily_svg)]
    if c.monthly:
        months = [Bar(label, micros, money(micros)) for label, micros in c.monthly]
        over_time.append(_chart_figure(f"AI spend by period ({c.currency})",
                                       columns(months, f"AI spend by period ({c.currency})", slot=_DAYS_WIDTH // len(months))))
    return [
        _chart_figure(f"Spend by model ({c.currency})", horizontal_bars(by_model, f"Spend by model ({c.currency})")),
        '<div class="stack">', *over_time, "</div>",
    ]


def _chart_figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{esc(caption)}</figcaption>{svg}</figure>"


def _all_models(report: Report) -> list[str]:
    """Every model (the By Model sheet, spend positive): usage, refunded tasks, spend, share, unit cost."""
    frame = report.summaries.by_model.sort_values(["currency", "amount_micros", "model"], kind="stable")
    heads = ["Model", "Currency", "Tasks", "Usage", "Refunded", "Spend", "Share", "Unit cost"]
    rows = [
        _row([
            str(r.model) or "(no model)", str(r.currency), f"{int(r.count):,}", _exact(-int(r.amount_micros)),
            _exact(int(r.refunds_micros)), _exact(-int(r.net_micros)), percent(r.share, places=2), price(r.unit_cost),
        ])
        for r in frame.itertuples(index=False)
    ]
    return [
        '<section id="all-models">',
        "<h2>All models</h2>",
        '<p class="note">Completed records; exact amounts (sub-cent digits kept).</p>',
        *_table("all-models-table", heads, rows),
        "</section>",
    ]


def _table(table_id: str, heads: list[str], rows: list[str]) -> list[str]:
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    return [f'<div class="scroll"><table id="{table_id}">', f"<thead><tr>{head}</tr></thead>", "<tbody>",
            *rows, "</tbody></table></div>"]


def _row(cells: list[str], css: str = "") -> str:
    """A table row; the first cell (a model name) may break after each "/" on a narrow screen."""
    attr = f' class="{css}"' if css else ""
    first, *rest = cells
    return (
        f"<tr{attr}><td>{esc(first).replace('/', '/<wbr>')}</td>"
        + "".join(f"<td>{esc(cell)}</td>" for cell in rest) + "</tr>"
    )


def _cents(cents: int) -> str:
    return money(cents * MICROS_PER_CENT)


def _signed(micros: int | None) -> str:
    return _DASH if micros is None else signed_money(micros)


def _exact(micros: int) -> str:
    """Exact amount with thousands separators: ``1,234.5678``."""
    text = format_micros(micros)
    whole, _, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-')):,}.{frac}"


__all__ = ["REPORT_NAME", "HtmlReportWriter", "render"]
