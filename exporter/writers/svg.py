"""Tiny inline-SVG bar charts for the HTML report: no library, no script, nothing fetched.

Geometry is integer arithmetic on micros (a bar's length is ``micros * length // largest``), in a
fixed coordinate system that the browser scales with ``viewBox``. Every piece of text passes
through :func:`esc` (``html.escape`` with ``quote=True``): labels are model names, which the API
controls, and SVG inline in HTML is markup like any other.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from ..display import visible
from ..money import MICROS_PER_CENT
from .figures import money

_LABEL_CHARS = 52  # longer labels are cut with an ellipsis; the full text is the bar's tooltip


def esc(text: object) -> str:
    """Text as it may appear in HTML or SVG, in an element or in a quoted attribute; control
    characters shown as U+FFFD (exporter.display.visible), as in the terminal."""
    return html.escape(visible(str(text)), quote=True)


@dataclass(frozen=True)
class Bar:
    label: str  # category: model, day or period
    micros: int  # the length; negative values are drawn as 0
    value: str  # the amount as people read it


def horizontal_bars(bars: Sequence[Bar], title: str) -> str:
    """One row per bar, first on top: the label above its bar, the value right of the bar.

    Labels above the bars leave the bars the full width, so the chart stays legible when a phone
    or a half-page column shrinks it.
    """
    width, value_w, row_h, top = 420, 70, 34, 4
    bar_w = width - value_w
    height = top * 2 + row_h * max(len(bars), 1)
    largest = max((max(b.micros, 0) for b in bars), default=0)
    parts = [_open(width, height, title)]
    for i, bar in enumerate(bars):
        y = top + i * row_h
        length = max(bar.micros, 0) * bar_w // largest if largest else 0
        parts.append(
            f'<g><title>{esc(bar.label)}: {esc(bar.value)}</title>'
            f'<text x="0" y="{y + 12}" class="label">{esc(_short(bar.label))}</text>'
            f'<rect x="0" y="{y + 16}" width="{max(length, 1)}" height="12" class="bar"/>'
            f'<text x="{length + 5}" y="{y + 26}" class="value">{esc(bar.value)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def columns(bars: Sequence[Bar], title: str, *, slot: int = 14, labelled: Sequence[int] | None = None) -> str:
    """Vertical bars over a zero line, with gridlines at half and full height.

    ``labelled``: the indices of the bars whose label is written under them (default: all).
    """
    left, plot_h, top, bottom = 52, 150, 10, 22
    width = left + slot * max(len(bars), 1) + 4
    height = top + plot_h + bottom
    ceiling = _nice_ceiling(max((max(b.micros, 0) for b in bars), default=0))
    shown = set(range(len(bars)) if labelled is None else labelled)
    parts = [_open(width, height, title)]
    for step in range(3):
        y = top + plot_h - plot_h * step // 2
        parts.append(
            f'<line x1="{left}" x2="{width}" y1="{y}" y2="{y}" class="grid"/>'
            f'<text x="{left - 5}" y="{y + 4}" text-anchor="end" class="axis">{esc(money(ceiling * step // 2))}</text>'
        )
    gap = max(2, slot // 5)
    for i, bar in enumerate(bars):
        x = left + i * slot
        length = max(bar.micros, 0) * plot_h // ceiling if ceiling else 0
        label = (
            f'<text x="{x + slot // 2}" y="{top + plot_h + 16}" text-anchor="middle" class="axis">{esc(bar.label)}</text>'
            if i in shown else ""
        )
        parts.append(
            f'<g><title>{esc(bar.label)}: {esc(bar.value)}</title>'
            f'<rect x="{x + gap // 2}" y="{top + plot_h - length}" width="{slot - gap}" height="{length}" class="bar"/>'
            f"{label}</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _open(width: int, height: int, title: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(title)}" class="chart"><title>{esc(title)}</title>'
    )


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


_STEPS = (10, 12, 15, 20, 25, 30, 40, 50, 60, 80)


def _nice_ceiling(micros: int) -> int:
    """A round top for the axis: the smallest step x 10^k cents at or above ``micros``."""
    if micros <= 0:
        return 0
    magnitude = MICROS_PER_CENT
    while True:
        for step in _STEPS:
            if step * magnitude >= micros:
                return step * magnitude
        magnitude *= 10
