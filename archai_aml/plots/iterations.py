"""A search iteration by iteration: one PNG per iteration and two animated GIFs.

- :func:`figure_iteration` / :func:`plot_iterations`: metric against latency of every model evaluated up
  to an iteration; that iteration's new models in full color, earlier ones fading with their age, and the
  Pareto front of everything seen so far highlighted (red step line, circled, labeled).
- :func:`animate_iterations`: those frames as a GIF, one frame per iteration.
- :func:`animate_pareto`: only the Pareto models, one frame per iteration, earlier fronts as fading lines.

Every frame of a search shares the same axis limits (from all its models), so the animation does not
jump; latencies that span more than :data:`~archai_aml.plots._figure.LOG_RATIO` times get a log axis. GIFs are written by matplotlib's ``PillowWriter``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archai_aml.plots._figure import (
    FIGSIZE,
    label_points,
    limits,
    literal,
    log_scale,
    new_figure,
    save,
    short,
    titled,
)
from archai_aml.plots.data import SearchRows
from archai_aml.plots.pareto import numeric

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["animate_iterations", "animate_pareto", "figure_iteration", "plot_iterations"]

NEW = (0.12, 0.47, 0.71)  # tab:blue
OLD = (0.45, 0.50, 0.58)  # a gray blue, fading with age
FRONT = "tab:red"


def _xy(data: SearchRows, row: dict[str, Any]) -> tuple[float, float]:
    return numeric(row[data.x]) or 0.0, numeric(row[data.y]) or 0.0


def _limits(data: SearchRows) -> tuple[tuple[float, float], tuple[float, float]]:
    rows = data.plottable()
    if not rows:
        return (0.0, 1.0), (0.0, 1.0)
    xs, ys = zip(*(_xy(data, r) for r in rows), strict=True)
    if log_scale(xs):
        lo, hi = limits([math.log10(x) for x in xs], 0.12)
        return (10**lo, 10**hi), limits(ys, 0.12)
    return limits(xs, 0.12), limits(ys, 0.12)


def _axes(fig: Figure, data: SearchRows) -> Axes:
    """Axes with the limits (and scale) every frame of ``data`` shares."""
    ax = fig.add_subplot()
    (x0, x1), (y0, y1) = _limits(data)
    if log_scale([_xy(data, r)[0] for r in data.plottable()]):
        ax.set_xscale("log")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    return ax


def _fade(age: int, fade: float) -> float:
    """Opacity of a model evaluated ``age`` iterations ago."""
    return max(0.12, 0.7 * fade ** (age - 1))


def _draw_iteration(fig: Figure, data: SearchRows, iteration: int, fade: float) -> list[dict[str, Any]]:
    ax = _axes(fig, data)
    seen = data.plottable(iteration)
    new = [r for r in seen if r["iteration"] == iteration]
    old = [r for r in seen if r["iteration"] < iteration]
    front = data.front(iteration)
    if old:
        xy = [_xy(data, r) for r in old]
        colors = [(*OLD, _fade(iteration - int(r["iteration"]), fade)) for r in old]
        ax.scatter([p[0] for p in xy], [p[1] for p in xy], s=30, c=colors, label="earlier iterations")
    if new:
        xy = [_xy(data, r) for r in new]
        ax.scatter(
            [p[0] for p in xy], [p[1] for p in xy], s=42, color=NEW, edgecolors="black", linewidths=0.5,
            label=f"iteration {iteration}: {len(new)} new",
        )  # fmt: skip
    predicted = [r for r in seen if r.get("latency_source") == "predicted"]
    if predicted:
        pxy = [_xy(data, r) for r in predicted]
        ax.scatter(
            [p[0] for p in pxy], [p[1] for p in pxy], marker="x", s=40, color="black", linewidths=1.2,
            label=f"latency predicted: {len(predicted)}",
        )  # fmt: skip
    if front:
        fxy = [_xy(data, r) for r in front]
        ax.step([p[0] for p in fxy], [p[1] for p in fxy], where="post", color=FRONT, linewidth=1.5, alpha=0.8)
        ax.scatter(
            [p[0] for p in fxy], [p[1] for p in fxy], s=130, facecolors="none", edgecolors=FRONT,
            linewidths=2, label=f"Pareto front: {len(front)}",
        )  # fmt: skip
        label_points(ax, [(x, y, short(r["name"])) for (x, y), r in zip(fxy, front, strict=True)])
    last = data.iterations[-1] if data.rows else iteration
    titled(
        ax,
        f"{data.title}: iteration {iteration}/{last}, {len(seen)} models so far",
        data.x_label,
        data.y_label,
    )
    ax.grid(True, alpha=0.3)
    if seen:
        fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return front


def figure_iteration(
    data: SearchRows, iteration: int, *, fade: float = 0.55
) -> tuple[Figure, list[dict[str, Any]]]:
    """The figure of ``iteration`` and the rows of the Pareto front up to it (sorted by ``x``).

    ``fade``: the opacity factor per iteration of age of earlier models."""
    fig, ax = new_figure()
    fig.delaxes(ax)
    front = _draw_iteration(fig, data, iteration, fade)
    return literal(fig), front


def plot_iterations(
    data: SearchRows, folder: str | Path, iterations: Iterable[int] | None = None, *, fade: float = 0.55
) -> list[Path]:
    """``iteration_<i>.png`` in ``folder`` for each of ``iterations`` (default: all); returns the paths."""
    out = []
    for it in data.iterations if iterations is None else iterations:
        fig, _ = figure_iteration(data, it, fade=fade)
        out.append(save(fig, Path(folder) / f"iteration_{it}.png"))
    return out


def _draw_front(fig: Figure, data: SearchRows, iteration: int) -> None:
    ax = _axes(fig, data)
    for earlier in range(1, iteration):
        pts = [_xy(data, r) for r in data.front(earlier)]
        if pts:
            alpha = _fade(iteration - earlier, 0.6)
            ax.step(
                [p[0] for p in pts], [p[1] for p in pts], where="post", color=OLD, alpha=alpha, linewidth=1
            )
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=20, color=OLD, alpha=alpha)
    front = data.front(iteration)
    if front:
        pts = [_xy(data, r) for r in front]
        new = [r["iteration"] == iteration for r in front]
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color=FRONT, linewidth=1.8)
        ax.scatter(
            [p[0] for p in pts], [p[1] for p in pts], s=70, color=[NEW if n else FRONT for n in new],
            edgecolors="black", linewidths=0.6, zorder=3,
        )  # fmt: skip
        label_points(ax, [(x, y, short(r["name"])) for (x, y), r in zip(pts, front, strict=True)])
    added = sum(1 for r in front if r["iteration"] == iteration)
    titled(
        ax,
        f"{data.title}: Pareto front after iteration {iteration}/{data.iterations[-1]}: "
        f"{len(front)} models, {added} new (blue)",
        data.x_label,
        data.y_label,
    )
    ax.grid(True, alpha=0.3)


def _animate(data: SearchRows, path: str | Path, draw: Any, fps: int, dpi: int) -> Path:
    from matplotlib.animation import PillowWriter

    if not data.iterations:
        raise ValueError(f"{data.title}: no models to animate")
    fig, ax = new_figure(FIGSIZE, dpi)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.gif")
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(tmp), dpi):
        for it in data.iterations:
            fig.clear()
            draw(fig, data, it)
            literal(fig)
            writer.grab_frame()
    os.replace(tmp, out)
    return out


def animate_iterations(
    data: SearchRows, path: str | Path, *, fps: int = 1, dpi: int = 80, fade: float = 0.55
) -> Path:
    """A GIF with one frame per iteration (the frames of :func:`figure_iteration`)."""
    return _animate(data, path, lambda fig, d, it: _draw_iteration(fig, d, it, fade), fps, dpi)


def animate_pareto(data: SearchRows, path: str | Path, *, fps: int = 1, dpi: int = 80) -> Path:
    """A GIF of the Pareto models only, one frame per iteration: the front after that iteration (its new
    members in blue) over the earlier fronts, fading."""
    return _animate(data, path, _draw_front, fps, dpi)
