"""Pareto fronts of a search: the non-dominated set (a pure function) and a PNG plot of it.

- :func:`pareto_front` returns the indices of the points no other point dominates, for any number of
  objectives, each maximized or minimized.
- :func:`plot_pareto` draws rows (dicts: search results, ``results.csv`` rows or store rows) as a scatter of
  two columns, colored by iteration when a column is given, with the front as a highlighted step line.
- :func:`plot_experiment` does it for the rows of a live experiment in a store, so a notebook can follow a
  search while it runs: ``plot_experiment(store, "facesyn", x="mean", y="val_iou", path="front.png")``.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``, no pyplot state, no display
needed), so drawing works in threads, scripts and notebooks alike.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from archai_aml.plots._figure import literal
from archai_aml.plots.rows import join_rows
from archai_aml.store.base import Store
from archai_aml.store.rules import as_float

__all__ = ["numeric", "pareto_front", "plot_experiment", "plot_pareto"]

log = logging.getLogger(__name__)


def numeric(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, not a number, NaN or infinite)."""
    f = as_float(value)
    return f if f is not None and math.isfinite(f) else None


def pareto_front(points: Sequence[Sequence[float]], maximize: bool | Sequence[bool] = False) -> list[int]:
    """Indices (ascending) of the non-dominated points.

    ``a`` dominates ``b`` when ``a`` is at least as good in every objective and strictly better in one.
    Points that tie in every objective dominate none of each other, so all of them are kept.

    Args:
        points: one sequence of objective values per point (all of the same length).
        maximize: one flag for all objectives, or one per objective (True: higher is better).
    """
    if not points:
        return []
    width = len(points[0])
    if any(len(p) != width for p in points):
        raise ValueError("pareto_front: every point must have the same number of objectives")
    flags = [bool(maximize)] * width if isinstance(maximize, bool) else [bool(m) for m in maximize]
    if len(flags) != width:
        raise ValueError(f"pareto_front: {len(flags)} maximize flags for {width} objectives")
    # turn everything into minimization
    costs = [[-float(v) if m else float(v) for v, m in zip(p, flags, strict=True)] for p in points]
    if any(math.isnan(v) for c in costs for v in c):
        raise ValueError("pareto_front: NaN in the points (drop missing values first)")

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and any(
            x < y for x, y in zip(a, b, strict=True)
        )

    return [i for i, c in enumerate(costs) if not any(dominates(o, c) for j, o in enumerate(costs) if j != i)]


def plot_pareto(
    rows: Iterable[Mapping[str, Any]],
    x: str,
    y: str,
    path: str | Path,
    *,
    maximize_x: bool = False,
    maximize_y: bool = True,
    iteration: str | None = None,
    label: str | None = None,
    title: str | None = None,
    x_label: str | None = None,
    y_label: str | None = None,
    source: str | None = None,
) -> list[Mapping[str, Any]]:
    """Scatter ``rows`` by columns ``x`` and ``y``, highlight their Pareto front, save a PNG at ``path``.

    ``source`` names a column (``latency_source``) whose ``predicted`` rows are marked with a black ``x``
    and counted in the legend: their latency was predicted, not measured.

    Rows missing either value (None, NaN, not a number) are left out, with a log line saying how many.
    ``iteration`` names a column that colors the points (e.g. the search iteration); ``label`` a column
    written next to each front point (e.g. ``archid``, shortened). Returns the front's rows sorted by ``x``.
    """
    from matplotlib.figure import Figure

    all_rows = list(rows)
    kept = [r for r in all_rows if numeric(r.get(x)) is not None and numeric(r.get(y)) is not None]
    if len(kept) < len(all_rows):
        log.info(
            "plot_pareto: %d of %d rows lack %s or %s, left out",
            len(all_rows) - len(kept),
            len(all_rows),
            x,
            y,
        )
    xs = [numeric(r[x]) or 0.0 for r in kept]
    ys = [numeric(r[y]) or 0.0 for r in kept]
    front = pareto_front(list(zip(xs, ys, strict=True)), maximize=[maximize_x, maximize_y])
    front.sort(key=lambda i: (xs[i], ys[i]))

    fig = Figure(figsize=(7, 5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    colors = [numeric(r.get(iteration)) for r in kept] if iteration else []
    if iteration and kept and all(c is not None for c in colors):
        sc = ax.scatter(
            xs, ys, c=[c or 0.0 for c in colors], cmap="viridis", s=36, alpha=0.85, label="models"
        )
        levels = sorted({c for c in colors if c is not None})
        fig.colorbar(sc, ax=ax, label=iteration, ticks=levels if len(levels) <= 12 else None)
    else:
        ax.scatter(xs, ys, color="tab:blue", s=36, alpha=0.85, label="models")
    predicted = [i for i, r in enumerate(kept) if source and r.get(source) == "predicted"]
    if predicted:
        ax.scatter(
            [xs[i] for i in predicted], [ys[i] for i in predicted], marker="x", color="black", s=40,
            linewidths=1.2, label=f"predicted {x} ({len(predicted)})",
        )  # fmt: skip
    if front:
        fx, fy = [xs[i] for i in front], [ys[i] for i in front]
        ax.step(fx, fy, where="post", color="tab:red", linewidth=1.5, alpha=0.8)
        ax.scatter(fx, fy, facecolors="none", edgecolors="tab:red", s=120, linewidths=2, label="Pareto front")
        if label:
            for i in front:
                ax.annotate(
                    str(kept[i].get(label, ""))[:10], (xs[i], ys[i]), textcoords="offset points",
                    xytext=(5, 5), fontsize=7,
                )  # fmt: skip
    ax.set_xlabel(x_label or f"{x} ({'higher' if maximize_x else 'lower'} is better)")
    ax.set_ylabel(y_label or f"{y} ({'higher' if maximize_y else 'lower'} is better)")
    ax.set_title(title or f"Pareto front: {len(front)} of {len(kept)} models")
    ax.grid(True, alpha=0.3)
    if kept:
        ax.legend(loc="best")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    literal(fig).savefig(out, bbox_inches="tight")
    return [kept[i] for i in front]


def plot_experiment(
    store: Store,
    experiment: str | Sequence[str],
    x: str,
    y: str,
    path: str | Path,
    *,
    maximize_x: bool = False,
    maximize_y: bool = True,
    iteration: str | None = None,
    **kwargs: Any,
) -> list[Mapping[str, Any]]:
    """:func:`plot_pareto` of the rows of a live experiment (one store query per experiment).

    ``experiment`` may be several partitions whose rows share names: the rows are joined by name, the
    first experiment's columns winning. The search example keeps training rows (``val_iou``) in the
    experiment and latency rows (``mean``) in ``<experiment>-latency``, both named ``id_<archid>``::

        plot_experiment(store, ["facesyn", "facesyn-latency"], x="mean", y="val_iou", path="front.png")
    """
    names = [experiment] if isinstance(experiment, str) else list(experiment)
    joined = join_rows(store.query(name) for name in names)
    return plot_pareto(
        list(joined.values()), x, y, path, maximize_x=maximize_x, maximize_y=maximize_y, iteration=iteration,
        label="name", **kwargs,
    )  # fmt: skip
