"""Pareto fronts: the non-dominated set on hand-made points (both directions, ties, 3 objectives), and the
PNG plots from rows and from a live experiment in a real store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from archai_aml.plots import numeric, pareto_front, plot_experiment, plot_pareto
from archai_aml.store import Store


def test_front_minimize_both() -> None:
    pts = [(1, 5), (2, 3), (3, 4), (4, 1), (5, 5), (2, 6)]
    # (3,4) is dominated by (2,3); (5,5) by everything before; (2,6) by (1,5)
    assert pareto_front(pts) == [0, 1, 3]


def test_front_mixed_directions() -> None:
    # x = latency (minimize), y = IoU (maximize)
    pts = [(10.0, 0.50), (12.0, 0.60), (11.0, 0.40), (20.0, 0.61), (9.0, 0.30), (15.0, 0.55)]
    assert pareto_front(pts, maximize=[False, True]) == [0, 1, 3, 4]
    # flipping both directions gives another front
    assert pareto_front(pts, maximize=[True, False]) == [2, 3, 4, 5]
    # maximize both
    assert pareto_front(pts, maximize=True) == [3]


def test_front_ties_and_duplicates() -> None:
    pts = [(1, 1), (1, 1), (1, 2), (0, 3)]
    # identical points dominate none of each other; (1,2) is dominated by (1,1) (equal x, smaller y)
    assert pareto_front(pts) == [0, 1, 3]
    assert pareto_front([(2, 2)]) == [0]
    assert pareto_front([]) == []
    # equal in one objective, better in the other: dominated
    assert pareto_front([(1, 2), (1, 3)], maximize=True) == [1]


def test_front_three_objectives_and_errors() -> None:
    pts = [(1, 1, 5), (2, 2, 1), (2, 2, 6), (0, 3, 3)]
    assert pareto_front(pts) == [0, 1, 3]
    with pytest.raises(ValueError, match="same number"):
        pareto_front([(1, 2), (1,)])
    with pytest.raises(ValueError, match="maximize flags"):
        pareto_front([(1, 2)], maximize=[True])
    with pytest.raises(ValueError, match="NaN"):
        pareto_front([(1, float("nan"))])


def test_numeric() -> None:
    assert numeric("0.5") == 0.5 and numeric(3) == 3.0
    assert numeric(None) is None and numeric("x") is None and numeric(float("nan")) is None
    assert numeric(True) is None and numeric(float("inf")) is None


def _png_is_a_plot(path: Path) -> None:
    assert path.stat().st_size > 5000
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert img.shape[0] > 200 and img.shape[1] > 300
    # a real plot has many colours, and the front's red markers
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50
    red = (img[..., 0] > 180) & (img[..., 1] < 80) & (img[..., 2] < 80)
    assert red.sum() > 50


def test_plot_pareto_writes_png_and_returns_front(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"archid": "a", "latency": 10.0, "val_iou": 0.5, "iteration": 0},
        {"archid": "b", "latency": 12.0, "val_iou": 0.6, "iteration": 0},
        {"archid": "c", "latency": 11.0, "val_iou": 0.4, "iteration": 1},
        {"archid": "d", "latency": 20.0, "val_iou": 0.61, "iteration": 1},
        {"archid": "e", "latency": None, "val_iou": 0.9, "iteration": 1},  # failed: left out
        {"archid": "f", "latency": "nan", "val_iou": 0.9, "iteration": 1},
    ]
    out = tmp_path / "sub" / "pareto.png"
    front = plot_pareto(rows, "latency", "val_iou", out, iteration="iteration", label="archid")
    assert [r["archid"] for r in front] == ["a", "b", "d"]
    _png_is_a_plot(out)


def test_plot_experiment_joins_partitions_of_a_store(store: Store, tmp_path: Path) -> None:
    for name, iou, mean in [("id_a", 0.5, 3.0), ("id_b", 0.7, 5.0), ("id_c", 0.4, 4.0)]:
        store.merge("exp", name, {"status": "complete", "val_iou": iou})
        store.merge("exp-latency", name, {"status": "complete", "mean": mean})
    store.merge("exp", "id_d", {"status": "training"})  # no metric yet: left out
    out = tmp_path / "live.png"
    front = plot_experiment(store, ["exp", "exp-latency"], x="mean", y="val_iou", path=out)
    assert [r["name"] for r in front] == ["id_a", "id_b"]
    assert front[0]["status"] == "complete"
    _png_is_a_plot(out)
