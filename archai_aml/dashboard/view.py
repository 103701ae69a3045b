"""The front of two objectives a page picks, drawn from a snapshot as :mod:`archai_aml.plots` draws it.

The Pareto front is :meth:`archai_aml.plots.SearchRows.front` of the picked columns (the same
:func:`~archai_aml.plots.pareto_front`), and earlier iterations fade with their age by the opacity rule of
:func:`archai_aml.plots.figure_iteration`. No store request: a view is computed from the cached snapshot.
"""

from __future__ import annotations

from typing import Any

from archai_aml.plots.data import SearchRows
from archai_aml.plots.iterations import _fade

__all__ = ["FADE", "axes_of", "front_view"]

#: Opacity factor per iteration of age (the default of :func:`archai_aml.plots.figure_iteration`).
FADE = 0.55
#: Preferred default axes: latency on x, the partial-training metric on y.
X_FIRST = ("mean", "latency_ms")
Y_FIRST = ("val_iou", "f1_onnx", "f1_1k")


def axes_of(models: list[dict[str, Any]]) -> list[str]:
    """The numeric columns of the models, most common first (ties by name)."""
    seen: dict[str, int] = {}
    for m in models:
        for key in m["values"]:
            seen[key] = seen.get(key, 0) + 1
    return sorted(seen, key=lambda k: (-seen[k], k))


def _default(axes: list[str], preferred: tuple[str, ...], other: str | None) -> str | None:
    for name in preferred:
        if name in axes and name != other:
            return name
    return next((a for a in axes if a != other), None)


def front_view(
    data: dict[str, Any], x: str | None, y: str | None, *, maximize_x: bool = False, maximize_y: bool = True
) -> dict[str, Any]:
    """Points (name, iteration, both values, opacity, marks, whether on the front) and the front, sorted
    by ``x``, of the models that have both columns. Unknown or missing axes fall back to the defaults."""
    models = data.get("models") or []
    axes = axes_of(models)
    x = x if x in axes else _default(axes, X_FIRST, None)
    y = y if y in axes and y != x else _default(axes, Y_FIRST, x)
    out: dict[str, Any] = {"axes": axes, "x": x, "y": y, "maximize_x": maximize_x, "maximize_y": maximize_y}
    if x is None or y is None:
        return {**out, "points": [], "front": [], "last_iteration": 0}
    rows = [
        {"name": m["name"], "iteration": m["iteration"], x: m["values"].get(x), y: m["values"].get(y), "m": m}
        for m in models
    ]
    search = SearchRows(rows, x=x, y=y, maximize_x=maximize_x, maximize_y=maximize_y)
    plottable = search.plottable()
    front = {r["name"] for r in search.front()}
    last = max((r["iteration"] for r in plottable), default=0)
    points = [
        {
            "name": r["name"],
            "iteration": r["iteration"],
            "status": r["m"]["status"],
            "x": r[x],
            "y": r[y],
            "opacity": 1.0 if r["iteration"] == last else round(_fade(last - r["iteration"], FADE), 3),
            "marks": {k: v for k, v in r["m"]["marks"].items() if k in (x, y)},
            "on_front": r["name"] in front,
        }
        for r in plottable
    ]
    ordered = sorted((p for p in points if p["on_front"]), key=lambda p: (p["x"], p["y"]))
    return {**out, "points": points, "front": [p["name"] for p in ordered], "last_iteration": last}
