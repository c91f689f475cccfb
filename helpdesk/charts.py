"""The funnel's charts as plain geometry for a server-rendered SVG (no script, no CDN).

The templates draw what these return; colours and line patterns come from
``static/helpdesk/helpdesk.css`` (classes, so the page's CSP needs no inline style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from helpdesk.selectors import STAGES, Funnel, week_label

WIDTH = 720
BARS_WIDTH = 520
LABEL_WIDTH = 160
BAR_HEIGHT = 26
BAR_GAP = 10
SHOWN_OUTCOMES = ["expired", "locked", "revoked"]


@dataclass
class Bar:
    name: str
    label: str
    value: int
    percent: float
    y: int
    width: float
    text_x: float
    outcome: bool


def bars(data: Funnel) -> dict:
    """One horizontal bar per stage, then the expired, locked and revoked, against issued."""
    rows = [(n, label, v, p, False) for n, label, v, p in data.total.stages]
    rows += [
        (n, label, v, p, True) for n, label, v, p in data.total.outcomes if n in SHOWN_OUTCOMES
    ]
    plot = BARS_WIDTH - LABEL_WIDTH - 110
    top = max(data.total["issued"], 1)
    items = []
    y = 10
    for index, (name, label, value, percent, outcome) in enumerate(rows):
        if index == len(STAGES):
            y += BAR_GAP * 2  # a gap between the stages and the outcomes
        width = plot * value / top
        items.append(Bar(name, label, value, percent, y, width, LABEL_WIDTH + width + 6, outcome))
        y += BAR_HEIGHT + BAR_GAP
    return {
        "width": WIDTH,
        "height": y + 4,
        "label_x": LABEL_WIDTH - 8,
        "x": LABEL_WIDTH,
        "bar_height": BAR_HEIGHT,
        "bars": items,
    }


def nice_max(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** int(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return value


@dataclass
class Series:
    index: int
    name: str
    label: str
    points: str
    dots: list[tuple[float, float]]


def weekly(data: Funnel) -> dict:
    """A line per stage across the weeks of the period."""
    left, right, top, bottom = 60, 30, 20, 50
    height = 300
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    weeks = data.weeks
    peak = nice_max(max((row["issued"] for _week, row in weeks), default=0))
    step = plot_w / max(len(weeks) - 1, 1)

    def x(i: int) -> float:
        return round(left + i * step, 1)

    def y(value: int) -> float:
        return round(top + plot_h - plot_h * value / peak, 1)

    series = []
    for index, (name, label) in enumerate(STAGES):
        dots = [(x(i), y(row[name])) for i, (_week, row) in enumerate(weeks)]
        series.append(Series(index, name, str(label), " ".join(f"{a},{b}" for a, b in dots), dots))
    ticks = [(y(peak * k // 4), peak * k // 4) for k in range(5)]
    every = max(1, math.ceil(len(weeks) / 12))
    labels = [
        (x(i), week_label(week)[5:]) for i, (week, _row) in enumerate(weeks) if i % every == 0
    ]
    first, last = data.since.isocalendar()[0], data.until.isocalendar()[0]
    return {
        "width": WIDTH,
        "height": height,
        "years": str(first) if first == last else f"{first}–{last}",
        "left": left,
        "right": WIDTH - right,
        "top": top,
        "bottom": top + plot_h,
        "label_y": top + plot_h + 18,
        "ticks": ticks,
        "labels": labels,
        "series": series,
    }
