"""Shared drawing helpers: figures with constrained layout (labels never cut off), labels placed inward,
axis limits that stay fixed over the frames of an animation, and writes that a watcher never sees half done."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: figure size (inches) and resolution of every plot: 640x448 pixels
FIGSIZE = (6.4, 4.48)
DPI = 100


def new_figure(figsize: tuple[float, float] = FIGSIZE, dpi: int = DPI) -> tuple[Figure, Axes]:
    """A figure (matplotlib's object API: no pyplot state, no display) whose constrained layout keeps
    the title, axis labels, tick labels and legend inside it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    return fig, fig.add_subplot()


#: a latency axis whose largest value is more than this many times its smallest is drawn in log scale
LOG_RATIO = 20.0


def log_scale(values: Sequence[float]) -> bool:
    """Whether ``values`` (all positive) spread over more than :data:`LOG_RATIO` times."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_RATIO


def limits(values: Sequence[float], pad: float = 0.08) -> tuple[float, float]:
    """Axis limits around ``values`` with ``pad`` of the range on both sides (a unit span when flat)."""
    lo, hi = min(values), max(values)
    span = hi - lo or max(abs(hi), 1.0) * 0.1
    return lo - pad * span, hi + pad * span


def label_points(ax: Axes, points: Sequence[tuple[float, float, str]], fontsize: float = 7) -> None:
    """Write each label next to its point, on the side of the point that faces the axes' center, so
    that no label leaves the axes."""
    if not points:
        return
    to_axes = ax.transData + ax.transAxes.inverted()  # data -> axes fraction, for any scale
    for x, y, text in points:
        fx, fy = to_axes.transform((x, y))
        right = fx > 0.5
        top = fy > 0.5
        ax.annotate(
            text,
            (x, y),
            textcoords="offset points",
            xytext=(-6 if right else 6, -8 if top else 6),
            ha="right" if right else "left",
            va="top" if top else "bottom",
            fontsize=fontsize,
        )


def short(name: Any, width: int = 8) -> str:
    """A model id shortened for a label (``id_`` dropped)."""
    text = str(name)
    return (text[3:] if text.startswith("id_") else text)[:width]


def literal(fig: Figure) -> Figure:
    """Every text of ``fig`` drawn as written: matplotlib reads ``$...$`` as math text, so a row or
    experiment name holding it would be drawn as math or fail to parse (``ParseException``) when drawn.
    Titles, labels and legends here come from stored data, never math: call this before drawing (per
    artist, not ``rcParams``, which other threads share)."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
    return fig


def save(fig: Figure, path: str | Path, **kwargs: Any) -> Path:
    """Save ``fig`` to ``path`` through a temporary file in the same folder, then rename: a folder being
    watched never shows a half-written image. Its texts are drawn literally (:func:`literal`)."""
    literal(fig)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    fig.savefig(tmp, **kwargs)
    os.replace(tmp, out)
    return out


def wrapped(ax: Axes, text: str, along: str = "x", points: float = 12.0) -> str:
    """``text`` wrapped to the axes' figure width (``along="x"``: titles, x labels) or height (``"y"``),
    for a font of ``points``: constrained layout makes room for long text but never breaks a line."""
    import textwrap

    width, height = ax.get_figure(root=True).get_size_inches()  # type: ignore[union-attr]
    inches = width if along == "x" else height
    return textwrap.fill(text, max(20, int(inches * 72 / (points * 0.62))))


def titled(ax: Axes, title: str, x_label: str, y_label: str) -> None:
    """Title and axis labels, each wrapped so that it fits the figure."""
    ax.set_title(wrapped(ax, title, "x", 12.0))
    ax.set_xlabel(wrapped(ax, x_label, "x", 10.0))
    ax.set_ylabel(wrapped(ax, y_label, "y", 10.0))
