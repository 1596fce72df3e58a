"""Chart data of a matplotlib figure, for the `chart` of a run_code result (E2B's shape).

The Python kernel (kernel.py) loads this file by its path the first time a cell shows a figure, so
a kernel that draws nothing never imports matplotlib's modules for it. One axes gives one chart;
a figure of several gives a `composite_chart` whose elements are theirs. What it reads:

- line: each line's label and points; scatter: each point collection's label and points;
- bar: each bar's label (its container's), group (its tick's label) and value;
- for all but pie, the axes' labels, and the units they name at their end ("Time (s)");
- pie: each wedge's label, angle (degrees) and radius;
- box_and_whisker: vertical box plots (matplotlib's boxplot), each box's quartiles, whiskers
  and outliers.

Anything else (images, filled areas, mixed kinds, horizontal box plots) is `unknown`, with no
elements: the figure's PNG still carries it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from matplotlib import dates
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import PathPatch, Rectangle, Wedge
from matplotlib.text import Text

DATE_FORMATTERS = (dates.AutoDateFormatter, dates.DateFormatter, dates.ConciseDateFormatter)
UNIT = re.compile(r"\((.+?)\)\s*$|\[(.+?)\]\s*$")


def figure_chart(figure: Figure) -> dict[str, Any] | None:
    """The figure's chart, or None if it has no axes."""
    axes = figure.get_axes()
    if not axes:
        return None
    if len(axes) == 1:
        return axes_chart(axes[0])
    title = figure._suptitle.get_text() if figure._suptitle is not None else ""
    return {"type": "composite_chart", "title": title, "elements": [axes_chart(ax) for ax in axes]}


def axes_chart(ax: Axes) -> dict[str, Any]:
    artists = [artist for artist in ax.get_children() if is_data_artist(ax, artist)]
    chart: dict[str, Any] = {"type": "unknown", "title": ax.get_title(), "elements": []}
    if not artists:
        return chart
    x_label, y_label = ax.get_xlabel(), ax.get_ylabel()
    chart.update(x_label=x_label, y_label=y_label, x_unit=unit_of(x_label), y_unit=unit_of(y_label))
    if all(isinstance(artist, Wedge) for artist in artists):
        chart.update(type="pie", elements=[pie_slice(wedge) for wedge in artists])
        del chart["x_label"], chart["y_label"], chart["x_unit"], chart["y_unit"]
    elif all(isinstance(artist, Rectangle) for artist in artists):
        chart.update(type="bar", elements=bars(ax))
    elif boxes := box_plots(ax, artists):
        chart.update(type="box_and_whisker", elements=boxes)
    elif all(isinstance(artist, Line2D) for artist in artists):
        lines = [series(ax, label_of(line), line.get_xydata()) for line in artists]
        chart.update(type="line", elements=lines)
        chart.update(axis_ticks(ax))
    elif all(isinstance(artist, PathCollection) for artist in artists):
        points = [series(ax, label_of(group), group.get_offsets()) for group in artists]
        chart.update(type="scatter", elements=points, **axis_ticks(ax))
    return chart


def is_data_artist(ax: Axes, artist: Any) -> bool:
    """Lines, patches and collections the cell drew: not the axes' frame, texts or grid."""
    if isinstance(artist, Text) or artist is ax.patch or not artist.get_visible():
        return False
    if artist in ax.spines.values() or artist in (ax.xaxis, ax.yaxis):
        return False
    return isinstance(artist, Line2D | PathCollection | Rectangle | Wedge | PathPatch)


def unit_of(label: str) -> str | None:
    """The unit an axis label names in parentheses or brackets at its end ("Time (s)": "s"), as E2B's."""
    found = UNIT.search(label)
    return next((group for group in found.groups() if group), None) if found else None


def label_of(artist: Any) -> str:
    """The label the cell gave, not matplotlib's own ('_child0')."""
    label = str(artist.get_label() or "")
    return "" if label.startswith("_") else label


def series(ax: Axes, label: str, xy: Any) -> dict[str, Any]:
    xs = [axis_value(ax.xaxis, float(x)) for x, _ in xy]
    ys = [axis_value(ax.yaxis, float(y)) for _, y in xy]
    return {"label": label, "points": [list(point) for point in zip(xs, ys, strict=True)]}


def axis_value(axis: Any, value: float) -> float | str | None:
    """A date axis' values as ISO text, others as numbers (NaN as None, which JSON carries)."""
    if math.isnan(value):
        return None
    if isinstance(axis.get_major_formatter(), DATE_FORMATTERS):
        return str(dates.num2date(value).isoformat())  # in matplotlib's time zone, UTC unless set
    return value


def axis_ticks(ax: Axes) -> dict[str, Any]:
    ticks: dict[str, Any] = {}
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        ticks[f"{name}_ticks"] = [axis_value(axis, float(tick)) for tick in axis.get_ticklocs()]
        ticks[f"{name}_tick_labels"] = [label.get_text() for label in axis.get_ticklabels()]
        ticks[f"{name}_scale"] = axis.get_scale()
    return ticks


def bars(ax: Axes) -> list[dict[str, Any]]:
    elements = []
    for container in ax.containers:
        horizontal = getattr(container, "orientation", "vertical") == "horizontal"
        axis = ax.yaxis if horizontal else ax.xaxis
        for bar in container:
            center = bar.get_y() + bar.get_height() / 2 if horizontal else bar.get_x() + bar.get_width() / 2
            value = bar.get_width() if horizontal else bar.get_height()
            group = tick_label(axis, center)
            elements.append({"label": label_of(container), "group": group, "value": float(value)})
    return elements


def tick_label(axis: Any, position: float) -> str:
    """The label of the tick nearest `position`, or the position itself if no tick is there."""
    ticks = list(zip(axis.get_ticklocs(), axis.get_ticklabels(), strict=False))
    near = [label.get_text() for tick, label in ticks if abs(float(tick) - position) < 1e-6]
    return near[0] if near and near[0] else f"{position:g}"


def pie_slice(wedge: Wedge) -> dict[str, Any]:
    return {"label": label_of(wedge), "angle": abs(wedge.theta2 - wedge.theta1), "radius": wedge.r}


def box_plots(ax: Axes, artists: list[Any]) -> list[dict[str, Any]]:
    """Vertical box plots as matplotlib draws them: a closed rectangle per box (a line, or a patch
    with patch_artist), a median line across it, whiskers at its middle, outliers as markers."""
    outlines = [box_outline(artist) for artist in artists]
    boxes = [outline for outline in outlines if outline is not None]
    if not boxes or not all(isinstance(a, Line2D | PathPatch) for a in artists):
        return []
    lines = [artist for artist in artists if isinstance(artist, Line2D)]
    drawn = [split(line.get_xydata()) for line in lines if line.get_linestyle() != "None"]
    markers = [split(line.get_xydata()) for line in lines if line.get_linestyle() == "None"]
    elements = []
    for left, right, low, high in boxes:
        middle = (left + right) / 2
        medians = [
            ys[0] for xs, ys in drawn if xs == [left, right] and ys[0] == ys[1] and low <= ys[0] <= high
        ]
        whiskers = [y for xs, ys in drawn if len(xs) == 2 and xs == [middle, middle] for y in ys]
        outliers = [y for xs, ys in markers if xs and all(x == middle for x in xs) for y in ys]
        elements.append(
            {
                "label": tick_label(ax.xaxis, middle),
                "min": min(whiskers, default=low),
                "first_quartile": low,
                "median": medians[0] if medians else None,
                "third_quartile": high,
                "max": max(whiskers, default=high),
                "outliers": outliers,
            }
        )
    return elements


def split(xy: Any) -> tuple[list[float], list[float]]:
    return [float(x) for x, _ in xy], [float(y) for _, y in xy]


def box_outline(artist: Any) -> tuple[float, float, float, float] | None:
    """(left, right, bottom, top) of an artist drawn as a closed axis-aligned rectangle."""
    if isinstance(artist, Line2D):
        xy = artist.get_xydata()
    elif isinstance(artist, PathPatch):
        xy = artist.get_path().vertices
    else:
        return None
    if not 4 <= len(xy) <= 6:  # a patch's path may end with a closing vertex
        return None
    xs, ys = split(xy)
    if len(set(xs)) != 2 or len(set(ys)) != 2:
        return None
    return min(xs), max(xs), min(ys), max(ys)
