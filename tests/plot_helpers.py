"""A small finished search written into a store the way a search, its runners and the after-search
scripts write it: training rows (``val_iou``, ``iteration``, ``batch``, ``training_start``) in the
experiment, latency rows (``mean``, ``stdev``) in ``<experiment>-latency``, and for the final front
``final_val_iou`` (training row) and ``f1_1k`` (latency row)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from archai_aml.store import Store

# name: (iteration, val_iou, latency mean ms, stdev % of mean)
MODELS: dict[str, tuple[int, float, float, float]] = {
    "id_a1": (1, 0.30, 1.0, 5.0),
    "id_a2": (1, 0.40, 2.0, 4.0),
    "id_a3": (1, 0.20, 3.0, 6.0),
    "id_a4": (1, 0.35, 2.5, 3.0),
    "id_b1": (2, 0.45, 1.8, 2.0),  # dominates a2
    "id_b2": (2, 0.10, 4.0, 1.0),
    "id_b3": (2, 0.50, 3.5, 8.0),
    "id_c1": (3, 0.32, 0.8, 5.0),  # dominates a1
    "id_c2": (3, 0.55, 5.0, 2.0),
    "id_c3": (3, 0.25, 4.5, 4.0),
}
#: the front after each iteration (latency min, IoU max), by latency
FRONTS = {
    1: ["id_a1", "id_a2"],
    2: ["id_a1", "id_b1", "id_b3"],
    3: ["id_c1", "id_b1", "id_b3", "id_c2"],
}
#: after the search: full training and F1 on the target of the final front
FINAL = {"id_c1": (0.60, 0.70), "id_b1": (0.75, 0.80), "id_b3": (0.70, 0.78), "id_c2": (0.85, 0.86)}


def write_search(store: Store, experiment: str, *, iterations: bool = True, final: bool = True) -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for name, (it, iou, mean, stdev) in MODELS.items():
        row: dict[str, Any] = {
            "status": "complete",
            "val_iou": iou,
            "epochs": 1.0,
            "batch": f"train_{experiment}_{'zyx'[it - 1]}",
            # batches started in iteration order, but named so that their names do not sort that way
            "training_start": start + timedelta(minutes=10 * it, seconds=len(name)),
        }
        if iterations:
            row["iteration"] = it
        latency: dict[str, Any] = {"status": "complete", "mean": mean, "stdev": stdev, "benchmark_only": True}
        if final and name in FINAL:
            row["final_val_iou"] = FINAL[name][0]
            row["final_epochs"] = 30.0
            latency["f1_1k"] = FINAL[name][1]
        store.create(experiment, name, row)
        store.create(f"{experiment}-latency", name, latency)
    store.create(f"{experiment}-latency", "id_orphan", {"status": "complete", "mean": 0.1})
    store.create(experiment, "id_training", {"status": "training", "batch": "x"})  # no metric yet
