"""Tiny inline-SVG charts for the self-contained report: lines, interval bars, histograms.

Hand-written rather than matplotlib so the page has no dependencies, no fonts to embed and
no network: each chart is a string of SVG elements placed straight into the HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from itertools import pairwise

import numpy as np

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
W, H, LEFT, RIGHT, TOP, BOTTOM = 460, 300, 56, 16, 30, 44


@dataclass(frozen=True)
class Series:
    name: str
    x: Sequence[float]
    y: Sequence[float]


@dataclass(frozen=True)
class Axes:
    """Maps data coordinates in [x0, x1] x [y0, y1] to the plot area of a W x H chart."""

    x0: float = 0.0
    x1: float = 1.0
    y0: float = 0.0
    y1: float = 1.0

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0 or 1) * (W - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return H - BOTTOM - (y - self.y0) / (self.y1 - self.y0 or 1) * (H - TOP - BOTTOM)


def _frame(axes: Axes, title: str, xlabel: str, ylabel: str, body: str, legend: Sequence[str] = ()) -> str:
    ticks = []
    for i in range(6):
        fx, fy = axes.x0 + i * (axes.x1 - axes.x0) / 5, axes.y0 + i * (axes.y1 - axes.y0) / 5
        ticks.append(f'<text x="{axes.px(fx):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{fx:.2g}</text>')
        ticks.append(f'<text x="{LEFT - 6}" y="{axes.py(fy) + 4:.1f}" text-anchor="end">{fy:.2g}</text>')
        ticks.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{axes.py(fy):.1f}" y2="{axes.py(fy):.1f}" stroke="#eee"/>')
    keys = "".join(f'<rect x="{W - RIGHT - 150}" y="{TOP + 4 + 16 * i}" width="10" height="10" fill="{COLOURS[i % len(COLOURS)]}"/>'
                   f'<text x="{W - RIGHT - 135}" y="{TOP + 13 + 16 * i}">{escape(name)}</text>' for i, name in enumerate(legend))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-size="11" '
            f'font-family="sans-serif" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>'
            f'{"".join(ticks)}<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" fill="none" stroke="#999"/>'
            f'{body}<text x="{W / 2}" y="{H - 8}" text-anchor="middle">{escape(xlabel)}</text>'
            f'<text transform="translate(14 {H / 2}) rotate(-90)" text-anchor="middle">{escape(ylabel)}</text>{keys}</svg>')


def _thin(series: Series, points: int = 300) -> Series:
    """At most `points` points, so a curve over 10,000 thresholds stays a small element."""
    if len(series.x) <= points:
        return series
    idx = np.unique(np.linspace(0, len(series.x) - 1, points).astype(int))
    return Series(series.name, [series.x[i] for i in idx], [series.y[i] for i in idx])


def lines(series: Sequence[Series], title: str, xlabel: str, ylabel: str, *, axes: Axes = Axes(),
          vline: float | None = None, diagonal: bool = False) -> str:
    """Line chart; `vline` marks an operating point, `diagonal` the chance line of a ROC plot."""
    body = []
    if diagonal:
        body.append(f'<line x1="{axes.px(0)}" y1="{axes.py(0)}" x2="{axes.px(1)}" y2="{axes.py(1)}" stroke="#bbb" stroke-dasharray="4"/>')
    if vline is not None:
        body.append(f'<line x1="{axes.px(vline):.1f}" x2="{axes.px(vline):.1f}" y1="{TOP}" y2="{H - BOTTOM}" stroke="#555" stroke-dasharray="3"/>')
    for i, s in enumerate(map(_thin, series)):
        points = " ".join(f"{axes.px(x):.1f},{axes.py(y):.1f}" for x, y in zip(s.x, s.y, strict=True))
        body.append(f'<polyline class="curve" points="{points}" fill="none" stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="2"/>')
    return _frame(axes, title, xlabel, ylabel, "".join(body), [s.name for s in series])


def interval_bars(rows: Sequence[tuple[str, float, float, float, bool]], title: str, *, reference: float | None = None) -> str:
    """Horizontal bars with 95% interval whiskers: (label, value, low, high, highlighted)."""
    height = TOP + BOTTOM + 22 * len(rows)
    left, right = 170, W - RIGHT
    upper = max([0.1, *(r[3] for r in rows)])

    def px(v: float) -> float:
        return left + v / upper * (right - left)

    body = [f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, (label, value, low, high, highlight) in enumerate(rows):
        y = TOP + 22 * i
        colour = COLOURS[1] if highlight else COLOURS[0]
        body.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>'
                    f'<rect class="bar" x="{left}" y="{y + 4}" width="{max(1.0, px(value) - left):.1f}" height="14" fill="{colour}" opacity="0.75"/>'
                    f'<line x1="{px(low):.1f}" x2="{px(high):.1f}" y1="{y + 11}" y2="{y + 11}" stroke="#000"/>'
                    f'<line x1="{px(high):.1f}" x2="{px(high):.1f}" y1="{y + 6}" y2="{y + 16}" stroke="#000"/>')
    bottom = TOP + 22 * len(rows)
    for i in range(6):
        v = upper * i / 5
        body.append(f'<text x="{px(v):.1f}" y="{bottom + 16}" text-anchor="middle">{v:.2g}</text>')
    if reference is not None and reference <= upper:
        body.append(f'<line x1="{px(reference):.1f}" x2="{px(reference):.1f}" y1="{TOP}" y2="{bottom}" stroke="#d62728" stroke-dasharray="4"/>')
    body.append(f'<text x="{(left + right) / 2}" y="{bottom + 34}" text-anchor="middle">attack success rate (red: held-out; dashed: {reference})</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-size="11" '
            f'font-family="sans-serif" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>')


def histogram(groups: Sequence[tuple[str, Sequence[float]]], title: str, *, bins: int = 20, threshold: float = 0.5) -> str:
    """Overlaid score histograms as step lines, each normalised to its own share per bin."""
    edges = np.linspace(0, 1, bins + 1)
    series = []
    for name, values in groups:
        counts, _ = np.histogram(np.asarray(values, dtype=float), bins=edges)
        share = counts / max(1, counts.sum())
        xs = [x for e0, e1 in pairwise(edges) for x in (e0, e1)]
        series.append(Series(f"{name} (n={len(values)})", xs, [s for s in share for _ in (0, 1)]))
    top = max([0.1, *(max(s.y) for s in series if s.y)])
    return lines(series, title, "score", "share of inputs", axes=Axes(y1=float(top)), vline=threshold)
