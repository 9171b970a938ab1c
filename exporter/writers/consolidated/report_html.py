"""The consolidated report.html: the accounts side by side, one self-contained page.

Per currency: AI spend per account with its share and the change vs the account's previous
period (from the books), the total (the sum of the accounts), a bar chart of spend per account,
then each account's top models. The figures are :mod:`.figures`'; the style, tables and charts
are one account's report.html's (:mod:`..html_report`, :mod:`..svg`).
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from ...report import Consolidated
from ..figures import money, percent, signed_money
from ..html_report import _STYLE, REPORT_NAME, _row, _table
from ..svg import Bar, esc, horizontal_bars
from .figures import CurrencyTotal, change_ratio, side_by_side, top_models

_DASH = "–"


def write_report(consolidated: Consolidated, folder: Path) -> list[Path]:
    path = folder / REPORT_NAME
    path.write_text(render(consolidated), encoding="utf-8")
    return [path]


def render(consolidated: Consolidated) -> str:
    names = ", ".join(account.name for account in consolidated.accounts)
    body = [
        "<header>",
        "<h1>WaveSpeedAI spend by account</h1>",
        (f'<p class="meta"><span>Period <b>{esc(consolidated.label)}</b></span> '
         f"<span>{len(consolidated.accounts)} accounts: <b>{esc(names)}</b></span></p>"),
        ('<p class="note">Each account\'s period in its own time zone. A total is the exact sum of the '
         "accounts, rounded to the cent like each account's figure (its own report's), so it may differ by a "
         "cent from the sum of the rounded figures. Each account's own pack holds its full report.</p>"),
        "</header>",
    ]
    currencies = side_by_side(consolidated)
    if not currencies:
        body.append("<p><b>No completed records in this period.</b></p>")
    for total in currencies:
        body += _currency_section(total)
    generated = consolidated.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body.append(f"<footer><p>Made by wavespeed-export {esc(consolidated.tool_version)} from the accounts' exports "
                f"of {esc(generated)}. Exact amounts: the CSV files of this pack.</p></footer>")
    title = f"WaveSpeedAI spend by account {consolidated.label}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="wavespeed-export {esc(consolidated.tool_version)}">\n'
        f"<title>{esc(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )


def _currency_section(total: CurrencyTotal) -> list[str]:
    code = esc(total.currency)
    heads = ["Account", "AI spend", "Share", "Tasks", "Top-ups", "Previous", "Change", "Change %"]
    rows = []
    for line in total.lines:
        f = line.figures
        label = f"{line.account} ({line.tz_name}{', vs ' + line.previous_label if line.previous_label else ''})"
        rows.append(_row([label, money(f.spend_micros), percent(total.share(line)), f"{f.tasks:,}",
                          _money(f.topups_micros), _money(f.previous_spend_micros), _signed(f.change_micros),
                          _ratio(f.change_micros, f.previous_spend_micros)]))
    rows.append(_row([f"Total ({len(total.lines)} accounts)", money(total.spend_micros),
                      "100.0%" if total.spend_micros else _DASH, f"{total.tasks:,}", _money(total.topups_micros),
                      _money(total.previous_spend_micros), _signed(total.change_micros),
                      _ratio(total.change_micros, total.previous_spend_micros)], "total"))
    bars = [Bar(line.account, line.figures.spend_micros, money(line.figures.spend_micros)) for line in total.lines]
    out = [f'<section class="currency" id="currency-{code}">', f"<h2>AI spend by account ({code})</h2>",
           *_table(f"accounts-{code}", heads, rows),
           '<div class="charts">',
           (f"<figure><figcaption>AI spend by account ({code})</figcaption>"
            f"{horizontal_bars(bars, f'AI spend by account ({total.currency})')}</figure>"),
           "</div>",
           f"<h2>Top models per account ({code})</h2>"]
    for line in total.lines:
        model_rows = [_row([model.label, money(model.usage_micros), percent(model.share), f"{model.tasks:,}",
                            _signed(model.change_micros)], "other" if model.other else "")
                      for model in top_models(line.figures)]
        out += [f"<h3>{esc(line.account)}</h3>",
                *_table(f"top-models-{esc(line.account)}-{code}", ["Model", "Usage", "Share", "Tasks", "Change"],
                        model_rows)]
    return [*out, "</section>"]


def _money(micros: int | None) -> str:
    return _DASH if micros is None else money(micros)


def _signed(micros: int | None) -> str:
    return _DASH if micros is None else signed_money(micros)


def _ratio(change: int | None, previous: int | None) -> str:
    ratio = change_ratio(change, previous)
    return _DASH if ratio is None else percent(ratio, signed=True)


__all__ = ["render", "write_report"]
