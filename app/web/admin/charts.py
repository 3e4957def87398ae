"""Charts drawn on the server as SVG (no chart script): coordinates computed here, the
template draws them. Every chart also has its numbers in a table (accessibility)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    line: str
    """`points` of the <polyline>."""
    area: str
    """`points` of the filled <polygon> under the line."""
    y_ticks: list[tuple[float, str]]
    """(y, label) of the horizontal grid lines."""
    x_labels: list[tuple[float, str]]
    """(x, label) under the axis: first, middle and last point."""
    left: int
    right: int
    bottom: int


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 x 10^n at or above `value` (at least 1): round axis ends."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def line_chart(
    values: list[int], labels: list[str], *, width: int = 420, height: int = 220
) -> LineChart:
    """Values left to right (at least one), y from zero to a round maximum."""
    left, right, top, bottom = 56, width - 12, 12, height - 30
    top_value = nice_ceiling(max(values, default=0))
    step = (right - left) / max(len(values) - 1, 1)

    def y_of(value: float) -> float:
        return round(bottom - (bottom - top) * value / top_value, 1)

    xs = [round(left + i * step, 1) for i in range(len(values))]
    coords = [f"{x},{y_of(v)}" for x, v in zip(xs, values, strict=True)]
    area = [f"{xs[0]},{bottom}", *coords, f"{xs[-1]},{bottom}"] if xs else []
    ticks = [(y_of(top_value * k / 4), f"{round(top_value * k / 4):,}") for k in range(5)]
    picks = sorted({0, len(values) // 2, len(values) - 1}) if values else []
    return LineChart(
        width=width,
        height=height,
        line=" ".join(coords),
        area=" ".join(area),
        y_ticks=ticks,
        x_labels=[(xs[i], labels[i]) for i in picks],
        left=left,
        right=right,
        bottom=bottom,
    )


SERIES_COLOURS = ("#0b57d0", "#b3261e", "#146c2e", "#7b3fa0")
"""Line colours in series order; the legend names each line, so colour is never alone."""


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    line: str
    """`points` of its <polyline>."""
    dash: str
    """stroke-dasharray: a second cue besides colour."""


@dataclass(frozen=True)
class MultiLineChart:
    width: int
    height: int
    series: list[Series]
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    left: int
    right: int
    bottom: int


def multi_line_chart(
    series: list[tuple[str, list[int]]],
    labels: list[str],
    *,
    width: int = 640,
    height: int = 240,
) -> MultiLineChart:
    """Several series of the same length on one y axis (zero to a round maximum)."""
    scale = line_chart(
        [max(values) for values in zip(*(v for _, v in series), strict=True)] or [0],
        labels or [""],
        width=width,
        height=height,
    )
    top_value = nice_ceiling(max((max(v, default=0) for _, v in series), default=0))
    top, bottom = 12, scale.bottom
    count = len(labels)
    step = (scale.right - scale.left) / max(count - 1, 1)
    dashes = ("", "6 4", "2 3", "8 3 2 3")

    def points(values: list[int]) -> str:
        return " ".join(
            f"{round(scale.left + i * step, 1)},{round(bottom - (bottom - top) * v / top_value, 1)}"
            for i, v in enumerate(values)
        )

    return MultiLineChart(
        width=width,
        height=height,
        series=[
            Series(name, SERIES_COLOURS[i % 4], points(values), dashes[i % 4])
            for i, (name, values) in enumerate(series)
        ],
        y_ticks=scale.y_ticks,
        x_labels=scale.x_labels,
        left=scale.left,
        right=scale.right,
        bottom=bottom,
    )
