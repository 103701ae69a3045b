"""What a search costs per candidate, today's way against the cost-aware way, side by side in one process.

On the face-segmentation space (examples/face_segmentation), the procedural data set, one seed, the
embedded store and the onnxruntime ``cpu`` target (one in-process runner thread), with the same candidates:

(a) today's way: every candidate trained ``tr_epochs`` and measured on the fleet (one round of
    :class:`~archai_aml.search.ContinuingSuccessiveHalving` with ``init_budget=1``: exactly what Archai's
    searches do per iteration, with :class:`~archai_aml.evaluators.RemoteAzureBenchmarkEvaluator`);
(b) the cost-aware way: :class:`~archai_aml.predict.PredictedLatencyEvaluator` (spot checks 10 %) and
    successive halving from ``tr_epochs / 4``, doubling, continuing each promoted model from its checkpoint;
    its front is measured before it is reported.

The predictor of (b) starts from the rows of a *history* partition: ``--history`` other models of the same
space (another seed, no candidate among them), measured on the same runner before both searches, standing
for the measurements earlier searches left in the store. Their device items are reported apart
(``device_items_history``), not in (b)'s. The predictor's held-out figures compare its predictions, from the
history alone, with (a)'s measurements of the candidates (models it never saw).

Sizes (reduced for the 10 minutes the issue allows here): ``--candidates`` 6, ``--history`` 24, images of
64 px, 512 training and 64 validation images, ``tr_epochs`` 1, 20 benchmark iterations per model.

    python bench/search_cost.py [--candidates 6] [--history 24]

Prints a table, then as its last line the JSON figures: device_items_a, device_items_b, epochs_a, epochs_b,
hypervolume_ratio, predictor_within_10pct, predictor_kendall_tau, partial_full_kendall_tau, wall_s_a,
wall_s_b (plus device_items_history, models_a, models_b, and the predictor's counts).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "face_segmentation"
sys.path.insert(0, str(EXAMPLE))
sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench.search_cost")

COMMAND = (
    "python train.py --data ${{inputs.data}} --output ${{outputs.output}} --model-id {model_id} "
    "--experiment {experiment} --epochs {epochs} --image-size 64 --train-length 512 --val-length 64 "
    "--batch-size 16 --lr 0.01 --threads 1 --no-mlflow --no-progress"
)


def hypervolume(points: list[tuple[float, float]]) -> float:
    """2-D hypervolume of minimization points (already normalized) against the reference (1.1, 1.1)."""
    ref = 1.1
    pts = sorted(p for p in points if p[0] < ref and p[1] < ref)
    volume, best_y = 0.0, ref
    for x, y in pts:
        if y < best_y:
            volume += (ref - x) * (best_y - y)
            best_y = y
    return volume


def front_points(results: Any, iou: str, lat: str) -> list[tuple[float, float]]:
    front = results.get_pareto_frontier()
    values = front["evaluation_results"]
    return [
        (float(a), float(b))
        for a, b in zip(values[iou], values[lat], strict=True)
        if math.isfinite(float(a)) and math.isfinite(float(b))
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", type=int, default=6)
    p.add_argument("--history", type=int, default=24)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.INFO)
    warnings.filterwarnings("ignore")
    for name in ("archai", "archai_aml.ort"):
        logging.getLogger(name).setLevel(logging.ERROR)

    import torch
    from archai.discrete_search.api import SearchObjectives
    from search_space import SegmentationSearchSpace

    from archai_aml.archai_log import redirect_archai_log
    from archai_aml.config import load_config
    from archai_aml.evaluators import AmlPartialTrainingEvaluator, RemoteAzureBenchmarkEvaluator
    from archai_aml.pareto.rank import rank_agreement
    from archai_aml.predict import LatencyPredictor, PredictedLatencyEvaluator
    from archai_aml.runner import Runner, RunnerSettings
    from archai_aml.search import ContinuingSuccessiveHalving
    from archai_aml.store import open_store
    from archai_aml.targets import get_target

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="search_cost_"))
    redirect_archai_log(tmp)
    os.environ["ARCHAI_AML_OUTPUT"] = str(tmp)
    os.environ["ARCHAI_AML_EXAMPLE_DIR"] = str(EXAMPLE)
    config = load_config(EXAMPLE / "demo.yaml")
    config.training.command = COMMAND
    config.target.benchmark_iterations = 20
    Path(config.training.data).mkdir(parents=True, exist_ok=True)
    space_kw = {"depths": (2, 3), "channels": (8, 16, 24)}
    shape = tuple(config.target.input_shape)
    store = open_store(config.store)

    def runner(partition: str) -> tuple[Runner, threading.Thread]:
        settings = RunnerSettings.from_config(config, experiment=partition, benchmark_only=True)
        r = Runner(store, get_target("cpu", intra_op_num_threads=1, progress=False), settings)
        t = threading.Thread(target=r.run, daemon=True)
        t.start()
        return r, t

    def stop(r: Runner, t: threading.Thread) -> int:
        r.stop()
        t.join(timeout=120)
        r.target.close()
        return len(r.done)

    def fleet(partition: str) -> RemoteAzureBenchmarkEvaluator:
        return RemoteAzureBenchmarkEvaluator(
            shape,
            store,
            partition,
            "mean",
            overwrite=False,
            max_retries=600,
            retry_interval=0.2,
            progress=False,
        )

    def training(experiment: str, tr_epochs: float) -> AmlPartialTrainingEvaluator:
        cfg = config.model_copy(deep=True)
        cfg.experiment_name = experiment
        return AmlPartialTrainingEvaluator(
            cfg, tmp / experiment, tr_epochs=tr_epochs, timeout_seconds=900, store=store,
            search_space=SegmentationSearchSpace(seed=args.seed, **space_kw), progress=False,
        )  # fmt: skip

    # ---- history: other models of the space, measured before (earlier searches' rows)
    t0 = time.monotonic()
    probe = SegmentationSearchSpace(seed=args.seed, **space_kw)
    candidates = {str(probe.random_sample().archid) for _ in range(args.candidates)}
    hist_space = SegmentationSearchSpace(seed=args.seed + 1000, **space_kw)
    history = []
    while len(history) < args.history:
        m = hist_space.random_sample()
        if str(m.archid) not in candidates and all(h.archid != m.archid for h in history):
            history.append(m)
    r, t = runner("cost-history")
    hist_fleet = fleet("cost-history")
    for m in history:
        hist_fleet.send(m)
    hist_fleet.fetch_all()
    items_history = stop(r, t)
    device = r.device_id
    log.info(
        "history: %d models measured in %.0f s (%d device items)",
        len(history),
        time.monotonic() - t0,
        items_history,
    )

    # ---- (a) today's way
    t0 = time.monotonic()
    r, t = runner("cost-a-latency")
    # latency first (both searches): Archai fetches in the order objectives were added, so the runner
    # measures before the training jobs start on this same CPU, not next to them (as search.py does)
    obj_a = SearchObjectives()
    obj_a.add_objective("latency_ms", fleet("cost-a-latency"), higher_is_better=False, compute_intensive=True)
    obj_a.add_objective("val_iou", training("cost-a", 1.0), higher_is_better=True, compute_intensive=True)
    search_a = ContinuingSuccessiveHalving(
        SegmentationSearchSpace(seed=args.seed, **space_kw), obj_a, None, str(tmp / "search-a"),
        num_iters=1, init_num_models=args.candidates, init_budget=1.0, budget_multiplier=2, seed=args.seed,
    )  # fmt: skip
    results_a = search_a.search()
    items_a = stop(r, t)
    wall_a = time.monotonic() - t0
    epochs_a = sum(float(row.get("epochs_spent") or 0) for row in store.query("cost-a"))

    # ---- predictor held-out figures: history only, against (a)'s measurements of the candidates
    predictor = LatencyPredictor.from_store(store, "cost-history", "cpu", device, min_rows=12)
    measured_a = {
        str(row["name"]): float(row["mean"])
        for row in store.query("cost-a-latency")
        if row.get("mean") is not None
    }
    from archai_aml.predict import graph_features

    preds: dict[str, float] = {}
    for name in measured_a:
        feats = graph_features(store.download_bytes("cost-a-latency", name, "model.onnx"))
        preds[name] = predictor.predict(feats).median
    within = sum(abs(preds[n] / measured_a[n] - 1) <= 0.10 for n in measured_a) / max(len(measured_a), 1)
    pred_rank = rank_agreement(preds, measured_a, partial_name="predicted", full_name="measured")

    # ---- (b) predictor + successive halving with continuation
    t0 = time.monotonic()
    r, t = runner("cost-b-latency")
    latency_b = PredictedLatencyEvaluator(
        fleet("cost-b-latency"), predictor, spot_check_fraction=0.10, seed=args.seed
    )
    obj_b = SearchObjectives()
    obj_b.add_objective("latency_ms", latency_b, higher_is_better=False, compute_intensive=True)
    obj_b.add_objective("val_iou", training("cost-b", 1.0), higher_is_better=True, compute_intensive=True)
    search_b = ContinuingSuccessiveHalving(
        SegmentationSearchSpace(seed=args.seed, **space_kw), obj_b, None, str(tmp / "search-b"),
        num_iters=3, init_num_models=args.candidates, init_budget=0.25, budget_multiplier=2, seed=args.seed,
    )  # fmt: skip
    results_b = search_b.search()
    items_b = stop(r, t)
    wall_b = time.monotonic() - t0
    epochs_b = sum(float(row.get("epochs_spent") or 0) for row in store.query("cost-b"))

    # ---- figures
    iou_a = {
        str(a): float(v)
        for a, v in zip(results_a.results[0]["archid"], results_a.results[0]["val_iou"], strict=True)
    }
    first_b = {
        str(a): float(v)
        for a, v in zip(results_b.results[0]["archid"], results_b.results[0]["val_iou"], strict=True)
    }
    partial_full = rank_agreement(first_b, iou_a, partial_name="val_iou@0.25 (b)", full_name="val_iou@1 (a)")
    fa, fb = (
        front_points(results_a, "val_iou", "latency_ms"),
        front_points(results_b, "val_iou", "latency_ms"),
    )
    both = fa + fb
    i_lo, i_hi = min(p[0] for p in both), max(p[0] for p in both)
    l_lo, l_hi = min(p[1] for p in both), max(p[1] for p in both)

    def norm(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [
            ((i_hi - i) / ((i_hi - i_lo) or 1.0), (lat - l_lo) / ((l_hi - l_lo) or 1.0)) for i, lat in points
        ]

    hv_a, hv_b = hypervolume(norm(fa)), hypervolume(norm(fb))
    front_b_sources = [
        latency_b.sources.get(str(m.archid)) for m in results_b.get_pareto_frontier()["models"]
    ]
    figures: dict[str, Any] = {
        "device_items_a": items_a,
        "device_items_b": items_b,
        "epochs_a": round(epochs_a, 3),
        "epochs_b": round(epochs_b, 3),
        "hypervolume_ratio": round(hv_b / hv_a, 4) if hv_a > 0 else None,
        "predictor_within_10pct": round(within, 4),
        "predictor_kendall_tau": None if pred_rank.kendall_tau is None else round(pred_rank.kendall_tau, 4),
        "partial_full_kendall_tau": None
        if partial_full.kendall_tau is None
        else round(partial_full.kendall_tau, 4),
        "wall_s_a": round(wall_a, 1),
        "wall_s_b": round(wall_b, 1),
        "device_items_history": items_history,
        "models_a": args.candidates,
        "models_b": len({str(a) for it in results_b.results for a in it["archid"]}),
        "predicted_b": sum(1 for s in latency_b.sources.values() if s == "predicted"),
        "spot_checks_b": len(latency_b.spot_checks),
        "predictor_trusted_b": latency_b.trusted,
        "front_b_all_measured": all(s == "measured" for s in front_b_sources),
    }
    rows = [
        ("candidates", args.candidates, figures["models_b"]),
        ("device work items", items_a, items_b),
        ("epochs trained", figures["epochs_a"], figures["epochs_b"]),
        ("wall seconds", figures["wall_s_a"], figures["wall_s_b"]),
        ("front size", len(fa), len(fb)),
        ("front hypervolume (normalized)", round(hv_a, 4), round(hv_b, 4)),
    ]
    print(f"{'':34} {'(a) today':>12} {'(b) cost-aware':>15}")
    for label, a, b in rows:
        print(f"{label:34} {a!s:>12} {b!s:>15}")
    print(f"history: {args.history} models, {items_history} device items (not counted in (b))")
    print(f"predictor on {predictor.rows} history rows, held out on (a)'s {len(measured_a)} measured candidates: "
          f"{100 * within:.0f} % within ±10 %; {pred_rank.summary()}")  # fmt: skip
    print(f"(b): {figures['predicted_b']} latencies predicted, {figures['spot_checks_b']} spot checks, "
          f"trusted at the end: {latency_b.trusted}; front all measured: {figures['front_b_all_measured']}")  # fmt: skip
    for event in latency_b.drift_events:
        print(f"(b) drift: {event}")
    print(f"partial vs full: {partial_full.summary()}")
    for low, high, agreement in search_b.rank_agreements:
        print(f"(b) budgets {low:g} -> {high:g}: {agreement.summary()}")
    store.close()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
