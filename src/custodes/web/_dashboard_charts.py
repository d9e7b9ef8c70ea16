"""Bar charts as inline SVG, drawn on the server: no chart library, no script needed to see them.

Each bar segment carries a ``<title>`` (browsers show it on hover) and each chart a text
alternative, so the numbers are there for screen readers too. Colours are presentation
attributes, which the pages' Content-Security-Policy allows (it forbids inline styles).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

__all__ = ["OTHERS", "OTHERS_COLOR", "PALETTE", "Chart", "LegendItem", "stacked_bars"]

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
)
"""Series colours in order (Tableau 10 without its grey, which marks the others)."""
OTHERS = "(others)"
"""The name of the series that sums the smaller ones."""
OTHERS_COLOR = "#bab0ac"

_WIDTH, _HEIGHT = 760, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 10, 12, 30


@dataclass(frozen=True, slots=True)
class LegendItem:
    """One series: its name, colour and total."""

    name: str
    color: str
    total: int


@dataclass(frozen=True, slots=True)
class Chart:
    """A drawn chart: the SVG markup and its legend."""

    svg: Markup
    legend: tuple[LegendItem, ...]
    total: int


def stacked_bars(
    *,
    label: str,
    days: Sequence[date],
    series: Mapping[str, Sequence[int]],
    colors: Mapping[str, str] | None = None,
    top: int = len(PALETTE),
) -> Chart:
    """Draw one bar per day, stacking the series (the ``top`` largest; the rest as OTHERS).

    ``series`` values are aligned with ``days``; ``colors`` pins a series' colour.
    """
    stacked = _top(series, top)
    palette = dict(zip(stacked, PALETTE, strict=False))
    palette.update({name: color for name, color in (colors or {}).items() if name in stacked})
    if OTHERS in stacked and OTHERS not in series:
        palette[OTHERS] = OTHERS_COLOR
    heights = [sum(values[i] for values in stacked.values()) for i in range(len(days))]
    scale = _nice(max(heights, default=0))
    parts = [_open(label), *_axis(scale), *_bars(days, stacked, palette, scale), "</svg>"]
    legend = tuple(LegendItem(n, palette[n], sum(v)) for n, v in stacked.items())
    # Every name and label in the markup went through escape(); the rest are numbers.
    return Chart(Markup("".join(parts)), legend, sum(heights))  # noqa: S704


def _top(series: Mapping[str, Sequence[int]], top: int) -> dict[str, Sequence[int]]:
    ranked = sorted(series.items(), key=lambda item: -sum(item[1]))
    kept = dict(ranked[:top])
    rest = ranked[top:]
    if rest:
        length = len(rest[0][1])
        kept[OTHERS] = [sum(values[i] for _, values in rest) for i in range(length)]
    return kept


def _nice(peak: int) -> int:
    """The smallest of 1, 2, 4, 5 x 10^k that is at least ``peak`` (at least 1)."""
    if peak <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(peak)))
    return next(m * power for m in (1, 2, 4, 5, 10) if m * power >= peak)


def _open(label: str) -> str:
    text = escape(label)
    return (
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{text}" xmlns="http://www.w3.org/2000/svg"><title>{text}</title>'
    )


def _axis(scale: int) -> list[str]:
    plot = _HEIGHT - _TOP - _BOTTOM
    steps = next(n for n in (4, 5, 2, 1) if scale % n == 0)  # whole-number ticks
    out = []
    for step in range(steps + 1):
        value = scale * step // steps
        y = _HEIGHT - _BOTTOM - plot * step / steps
        shown = f"{value:,}"
        out.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{shown}</text>'
        )
    return out


def _bars(
    days: Sequence[date],
    stacked: Mapping[str, Sequence[int]],
    palette: Mapping[str, str],
    scale: int,
) -> list[str]:
    if not days:
        return [f'<text class="empty" x="{_WIDTH / 2}" y="{_HEIGHT / 2}">no events yet</text>']
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    slot = plot_w / len(days)
    width = min(max(slot * 0.78, 1.0), 48.0)  # a few days need no wide slabs
    every = max(1, math.ceil(len(days) / 10))
    out = []
    for i, day in enumerate(days):
        x = _LEFT + i * slot + (slot - width) / 2
        base = float(_HEIGHT - _BOTTOM)
        for name, values in stacked.items():
            n = values[i]
            if n <= 0:
                continue
            h = plot_h * n / scale
            base -= h
            tip = escape(f"{day.isoformat()} · {name}: {n:,}")
            out.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{width:.1f}" height="{h:.1f}" '
                f'fill="{escape(palette[name])}"><title>{tip}</title></rect>'
            )
        if i % every == 0:
            out.append(
                f'<text class="day" x="{x + width / 2:.1f}" y="{_HEIGHT - _BOTTOM + 16}" '
                f'text-anchor="middle">{day:%m-%d}</text>'
            )
    return out
