"""After the search: how the Pareto models did when fully trained and when tested on the target.

- :func:`figure_full_training`: validation metric after partial training against the same metric after
  full training (``final_val_iou``), one point per model, the diagonal for reference, and the rank
  correlations (Spearman; Kendall's tau with its bootstrap interval, from 5 models) of the two in the title:
  whether partial training ranked the models right.
- :func:`figure_target_f1`: F1 on the target against its latency, with the latency's standard deviation
  as error bars (the runner's ``stdev`` column is a percentage of ``mean``); the models still on the
  Pareto front of these two measures in color, the ones that left it in gray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archai_aml.pareto.rank import rank_agreement
from archai_aml.plots._figure import label_points, limits, literal, new_figure, save, short, titled
from archai_aml.plots.data import F1_COLUMNS, SearchRows
from archai_aml.plots.pareto import numeric, pareto_front

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "figure_full_training",
    "figure_target_f1",
    "plot_full_training",
    "plot_target_f1",
    "spearman",
    "target_f1_key",
]


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):  # ties share their mean rank
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation of two equally long sequences (None under 2 points or a constant one)."""
    if len(a) != len(b):
        raise ValueError("spearman: sequences of different lengths")
    if len(a) < 2:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    return cov / (va * vb) ** 0.5 if va and vb else None


def figure_full_training(data: SearchRows) -> tuple[Figure, list[dict[str, Any]]]:
    """Partial (``data.y``) against full (``data.full_key``) training, for the rows that have both."""
    rows = data.with_full_training()
    if not rows:
        raise ValueError(f"{data.title}: no model has both {data.y} and {data.full_key}")
    fig, ax = new_figure()
    part = [numeric(r[data.y]) or 0.0 for r in rows]
    full = [numeric(r[data.full_key]) or 0.0 for r in rows]
    lo, hi = limits(part + full, 0.12)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.plot([lo, hi], [lo, hi], color="0.6", linestyle="--", linewidth=1, label="full = partial")
    ax.scatter(
        part, full, s=60, color="tab:green", edgecolors="black", linewidths=0.6, label="model", zorder=3
    )
    epochs = sorted({e for e in (numeric(r.get("final_epochs")) for r in rows) if e is not None})
    label_points(ax, [(x, y, short(r["name"])) for x, y, r in zip(part, full, rows, strict=True)])
    rho = spearman(part, full)
    trained = f" ({', '.join(f'{e:g}' for e in epochs)} epochs)" if epochs else ""
    agreement = rank_agreement(
        {str(r["name"]): p for r, p in zip(rows, part, strict=True)},
        {str(r["name"]): f for r, f in zip(rows, full, strict=True)},
    )
    if agreement.judged and agreement.kendall_ci is not None:
        low, high = agreement.kendall_ci
        tau = f"Kendall tau {agreement.kendall_tau:.2f} [{low:.2f}, {high:.2f}] (90 % bootstrap)"
    else:
        tau = f"Kendall tau: cannot be judged on {len(rows)} models (5 needed)"
    titled(
        ax,
        f"{data.title}: full vs partial training of {len(rows)} models"
        + (f", rank correlation {rho:.2f}" if rho is not None else "")
        + f"\n{tau}",
        f"{data.y} after partial training",
        f"{data.full_key} after full training{trained}",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return literal(fig), rows


def target_f1_key(rows: Sequence[Mapping[str, Any]]) -> str:
    """The first of :data:`F1_COLUMNS` that some row has."""
    for key in F1_COLUMNS:
        if any(numeric(r.get(key)) is not None for r in rows):
            return key
    raise ValueError(f"no row has an F1 column ({', '.join(F1_COLUMNS)})")


def figure_target_f1(data: SearchRows, f1_key: str | None = None) -> tuple[Figure, list[dict[str, Any]]]:
    """F1 on the target against latency (``data.latency_key`` with ``data.stdev_key`` error bars); returns
    the figure and the rows still on the front."""
    candidates = data.with_target()
    key = f1_key or target_f1_key(candidates)
    rows = [
        r
        for r in candidates
        if numeric(r.get(key)) is not None and numeric(r.get(data.latency_key)) is not None
    ]
    if not rows:
        raise ValueError(f"{data.title}: no model has both {key} and {data.latency_key}")
    lat = [numeric(r[data.latency_key]) or 0.0 for r in rows]
    f1 = [numeric(r[key]) or 0.0 for r in rows]
    err = [m * (numeric(r.get(data.stdev_key)) or 0.0) / 100.0 for m, r in zip(lat, rows, strict=True)]
    on = set(pareto_front(list(zip(lat, f1, strict=True)), maximize=[False, True]))
    fig, ax = new_figure()
    ax.set_xlim(
        *limits(
            [m - e for m, e in zip(lat, err, strict=True)] + [m + e for m, e in zip(lat, err, strict=True)],
            0.12,
        )
    )
    ax.set_ylim(*limits(f1, 0.15))
    for group, color, label in ((sorted(on), "tab:purple", "on the front"), (
        [i for i in range(len(rows)) if i not in on], "0.6", "left the front"
    )):  # fmt: skip
        if group:
            ax.errorbar(
                [lat[i] for i in group], [f1[i] for i in group], xerr=[err[i] for i in group], fmt="o",
                color=color, ecolor=color, elinewidth=1.2, capsize=4, markersize=7,
                label=f"{label} ({len(group)})",
            )  # fmt: skip
    label_points(ax, [(lat[i], f1[i], short(rows[i]["name"])) for i in range(len(rows))])
    titled(
        ax,
        f"{data.title}: F1 on the target of {len(rows)} fully trained models",
        f"latency on the target, {data.latency_key} ± stdev (ms)",
        f"{key} on the target (higher is better)",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return literal(fig), sorted((rows[i] for i in on), key=lambda r: numeric(r[data.latency_key]) or 0.0)


def plot_full_training(data: SearchRows, path: str | Path) -> Path:
    """:func:`figure_full_training` saved as a PNG."""
    fig, _ = figure_full_training(data)
    return save(fig, path)


def plot_target_f1(data: SearchRows, path: str | Path, f1_key: str | None = None) -> Path:
    """:func:`figure_target_f1` saved as a PNG."""
    fig, _ = figure_target_f1(data, f1_key)
    return save(fig, path)
