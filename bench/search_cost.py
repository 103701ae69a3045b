"""What a search costs per candidate, today's way against the cost-aware way, side by side in one process.

On the face-segmentation space (examples/face_segmentation), the procedural data set, one seed, the
embedded store and the onnxruntime ``cpu`` target (one runner process per search, one intra-op thread),
with the same candidates:

(a) today's way: every candidate trained ``tr_epochs`` and measured on the fleet (one round of
    :class:`~archai_aml.search.ContinuingSuccessiveHalving` with ``init_budget=1``: exactly what Archai's
    searches do per iteration, with :class:`~archai_aml.evaluators.RemoteAzureBenchmarkEvaluator`);
(b) the cost-aware way: :class:`~archai_aml.predict.PredictedLatencyEvaluator` (spot checks 10 %) and
    successive halving from ``tr_epochs / 4``, doubling, three rounds (16 -> 8 -> 4 models), continuing each
    promoted model from its checkpoint; its front is measured before it is reported.
    Epochs: 16 x 1/4 + 8 x 1/4 + 4 x 1/2 = 8 = half of (a)'s 16 (a promoted model trains only the
    missing epochs).

The predictor of (b) starts from the rows of a *history* partition: ``--history`` other models of the same
space (another seed, no candidate among them), measured on the same runner host before both searches,
standing for the measurements earlier searches left in the store. Their device items are reported apart
(``device_items_history``), not in (b)'s. The predictor's held-out figures compare its predictions, from the
history alone, with (a)'s measurements of the candidates (models it never saw).

Latency: each runner is a process of its own, as a fleet machine is (a runner thread inside the search's
process measured the search's own Python work too: its timing loop waits for the GIL). Both searches
optimize, and the predictor learns, ``--latency-column`` (default ``min``: the fastest of the runner's
timed runs; ``median`` and ``mean`` are in the rows too). ``latency_repeat_spread`` reports how far the
same models measured in (a) and again in (b) differ, per column: the noise floor of every latency figure
here. Fronts: each model at the highest budget it reached; hypervolumes in one normalized space, the range
of every model either search reported, reference point 1.1 (minimization after normalization).

Sizes (reduced for the 10 minutes the issue allows here): ``--candidates`` 16, ``--history`` 32, images of
64 px, ``--train-length`` 1024 training images (64 steps of 16 per epoch, as demo.yaml) and 64 validation
images, ``tr_epochs`` 1, ``--iterations`` 50 timed runs per benchmark round, ``--benchmark-runs`` 3 runs
per model (the runner's ``min`` is the fastest inference of all, ``median`` the median of their medians:
within one run the timed inferences agree, between runs minutes apart the same model moved by up to 60 %
on this host).

    python bench/search_cost.py [--candidates 16] [--history 32] [--latency-column min]

Prints a table, then as its last line the JSON figures: device_items_a, device_items_b, epochs_a, epochs_b,
hypervolume_ratio, predictor_within_10pct, predictor_kendall_tau, partial_full_kendall_tau, wall_s_a,
wall_s_b (plus device_items_history, models_a, models_b, the predictor's counts, latency_column and
latency_repeat_spread). A device item is one runner work item (a model's conversion, a benchmark run).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
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
    "python train.py --data ${{{{inputs.data}}}} --output ${{{{outputs.output}}}} --model-id {{model_id}} "
    "--experiment {{experiment}} --epochs {{epochs}} --image-size 64 --train-length {train_length} "
    "--val-length 64 --batch-size 16 --lr 0.01 --threads 1 --no-mlflow --no-progress"
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


def final_points(results: Any, iou: str, lat: str) -> dict[str, tuple[Any, float, float]]:
    """archid -> (model, metric, latency) at the highest budget each model reached (its last round):
    what the search knows of it. A model's lower-budget rows are not candidates of its front."""
    out: dict[str, tuple[Any, float, float]] = {}
    for it in results.results:  # rounds in order: a later budget replaces an earlier one
        for m, a, b in zip(it["models"], it[iou], it[lat], strict=True):
            if math.isfinite(float(a)) and math.isfinite(float(b)):
                out[str(m.archid)] = (m, float(a), float(b))
    return out


def non_dominated(points: dict[str, tuple[Any, float, float]]) -> dict[str, tuple[Any, float, float]]:
    """The points no other point beats on both (metric higher, latency lower)."""
    return {
        k: p
        for k, p in points.items()
        if not any(q[1] >= p[1] and q[2] <= p[2] and (q[1] > p[1] or q[2] < p[2]) for q in points.values())
    }


def repeat_spread(store: Any, first: str, second: str, columns: tuple[str, ...]) -> dict[str, Any]:
    """For the models measured in both partitions (the same ONNX, measured twice on the same runner
    host, minutes apart): the median and largest |second / first - 1| of each latency column."""
    rows_a = {str(r["name"]): r for r in store.query(first) if r.get("status") == "complete"}
    out: dict[str, Any] = {}
    pairs = [
        (rows_a[str(r["name"])], r)
        for r in store.query(second)
        if r.get("status") == "complete"
        and str(r["name"]) in rows_a
        and r.get("latency_source") != "predicted"
    ]
    out["models"] = len(pairs)
    for col in columns:
        rel = sorted(
            abs(float(b[col]) / float(a[col]) - 1)
            for a, b in pairs
            if a.get(col) is not None and b.get(col) is not None
        )
        if rel:
            out[col] = {"median": round(rel[len(rel) // 2], 4), "max": round(rel[-1], 4),
                        "within_10pct": round(sum(x <= 0.10 for x in rel) / len(rel), 4)}  # fmt: skip
    return out


def run_runner(config: Any, partition: str, stop_event: Any, answer: Any) -> None:
    """One runner on the cpu target (one intra-op thread) in its own process, as a fleet machine is: in the
    search's process its timing loop would wait for the search's own Python work (the GIL), which adds
    milliseconds to sub-millisecond inferences. Puts (work items done, device id) on ``answer``."""
    logging.basicConfig(level=logging.WARNING)
    for name in ("archai", "archai_aml.ort"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from archai_aml.runner import Runner, RunnerSettings
    from archai_aml.store import open_store
    from archai_aml.targets import get_target

    store = open_store(config.store)
    settings = RunnerSettings.from_config(config, experiment=partition, benchmark_only=True)
    r = Runner(store, get_target("cpu", intra_op_num_threads=1, progress=False), settings)
    t = threading.Thread(target=r.run, daemon=True)
    t.start()
    stop_event.wait()
    r.stop()
    t.join(timeout=120)
    r.target.close()
    answer.put((len(r.done), r.device_id))
    store.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", type=int, default=16)
    p.add_argument("--history", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--train-length", type=int, default=1024, help="training images (demo.yaml: 1024)")
    p.add_argument("--iterations", type=int, default=50, help="timed runs per benchmark round")
    p.add_argument(
        "--benchmark-runs", type=int, default=3,
        help="benchmark runs per model (separate work items, minutes apart: median of their medians)",
    )  # fmt: skip
    p.add_argument(
        "--latency-column", choices=("mean", "median", "min"), default="min",
        help="the runner's latency figure both searches optimize and the predictor learns",
    )  # fmt: skip
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
    from archai_aml.search import ContinuingSuccessiveHalving
    from archai_aml.store import open_store

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="search_cost_"))
    redirect_archai_log(tmp)
    os.environ["ARCHAI_AML_OUTPUT"] = str(tmp)
    os.environ["ARCHAI_AML_EXAMPLE_DIR"] = str(EXAMPLE)
    config = load_config(EXAMPLE / "demo.yaml")
    config.training.command = COMMAND.format(train_length=args.train_length)
    config.target.benchmark_iterations = args.iterations
    config.target.max_benchmark_runs = args.benchmark_runs
    col = args.latency_column
    Path(config.training.data).mkdir(parents=True, exist_ok=True)
    space_kw = {"depths": (2, 3), "channels": (8, 16, 24)}
    shape = tuple(config.target.input_shape)
    store = open_store(config.store)

    spawn = multiprocessing.get_context("spawn")

    def runner(partition: str) -> tuple[Any, Any, Any]:
        stop_event, answer = spawn.Event(), spawn.Queue()
        proc = spawn.Process(target=run_runner, args=(config, partition, stop_event, answer), daemon=True)
        proc.start()
        return proc, stop_event, answer

    def stop(proc: Any, stop_event: Any, answer: Any) -> tuple[int, str]:
        stop_event.set()
        done, device_id = answer.get(timeout=180)
        proc.join(timeout=60)
        return int(done), str(device_id)

    def fleet(partition: str) -> RemoteAzureBenchmarkEvaluator:
        return RemoteAzureBenchmarkEvaluator(
            shape,
            store,
            partition,
            col,
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
    fleet_proc = runner("cost-history")
    hist_fleet = fleet("cost-history")
    for m in history:
        hist_fleet.send(m)
    hist_fleet.fetch_all()
    items_history, device = stop(*fleet_proc)
    log.info(
        "history: %d models measured in %.0f s (%d device items)",
        len(history),
        time.monotonic() - t0,
        items_history,
    )

    # ---- (a) today's way
    t0 = time.monotonic()
    fleet_proc = runner("cost-a-latency")
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
    items_a, _ = stop(*fleet_proc)
    wall_a = time.monotonic() - t0
    epochs_a = sum(float(row.get("epochs_spent") or 0) for row in store.query("cost-a"))

    # ---- predictor held-out figures: history only, against (a)'s measurements of the candidates
    predictor = LatencyPredictor.from_store(store, "cost-history", "cpu", device, min_rows=12, metric_key=col)
    measured_a = {
        str(row["name"]): float(row[col]) for row in store.query("cost-a-latency") if row.get(col) is not None
    }
    from archai_aml.predict import graph_features

    preds: dict[str, float] = {}
    bands: dict[str, Any] = {}
    for name in measured_a:
        feats = graph_features(store.download_bytes("cost-a-latency", name, "model.onnx"))
        bands[name] = predictor.predict(feats)
        preds[name] = bands[name].median
    history_rows = predictor.rows
    within = sum(abs(preds[n] / measured_a[n] - 1) <= 0.10 for n in measured_a) / max(len(measured_a), 1)
    # is the band honest? the share of measurements inside the 10 %-90 % band (about 0.8 if calibrated),
    # and how the models the evaluator would trust (band within its 10 % confidence) fared
    coverage = sum(bands[n].low <= measured_a[n] <= bands[n].high for n in measured_a) / max(
        len(measured_a), 1
    )
    confident = [n for n in measured_a if bands[n].relative_uncertainty <= 0.10]
    confident_within = (
        sum(abs(preds[n] / measured_a[n] - 1) <= 0.10 for n in confident) / len(confident)
        if confident
        else None
    )
    pred_rank = rank_agreement(preds, measured_a, partial_name="predicted", full_name="measured")

    # ---- (b) predictor + successive halving with continuation
    t0 = time.monotonic()
    fleet_proc = runner("cost-b-latency")
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
    # fronts: each model at the highest budget it reached; (b)'s front models still predicted (none
    # after measure_front, unless a lower-budget row had hidden one) are measured now and counted below
    pts_a = final_points(results_a, "val_iou", "latency_ms")
    pts_b = final_points(results_b, "val_iou", "latency_ms")
    for _ in range(len(pts_b)):
        todo = [p[0] for k, p in non_dominated(pts_b).items() if latency_b.sources.get(k) == "predicted"]
        if not todo:
            break
        for k, v in latency_b.measure(todo).items():
            pts_b[k] = (pts_b[k][0], pts_b[k][1], math.nan if v is None else float(v))
        pts_b = {k: p for k, p in pts_b.items() if math.isfinite(p[2])}
    items_b, _ = stop(*fleet_proc)
    wall_b = time.monotonic() - t0
    front_a, front_b = non_dominated(pts_a), non_dominated(pts_b)
    fa = [(p[1], p[2]) for p in front_a.values()]
    fb = [(p[1], p[2]) for p in front_b.values()]
    # one normalized space for both: the range of every model either search reported (not only of the
    # fronts: a front that defines the range itself sits on its bounds and its hypervolume swings)
    every = [(p[1], p[2]) for p in [*pts_a.values(), *pts_b.values()]]
    i_lo, i_hi = min(p[0] for p in every), max(p[0] for p in every)
    l_lo, l_hi = min(p[1] for p in every), max(p[1] for p in every)

    def norm(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [
            ((i_hi - i) / ((i_hi - i_lo) or 1.0), (lat - l_lo) / ((l_hi - l_lo) or 1.0)) for i, lat in points
        ]

    hv_a, hv_b = hypervolume(norm(fa)), hypervolume(norm(fb))
    front_b_sources = [latency_b.sources.get(k) for k in front_b]
    spread = repeat_spread(store, "cost-a-latency", "cost-b-latency", ("mean", "median", "min"))
    figures: dict[str, Any] = {
        "device_items_a": items_a,
        "device_items_b": items_b,
        "epochs_a": round(epochs_a, 3),
        "epochs_b": round(epochs_b, 3),
        "hypervolume_ratio": round(hv_b / hv_a, 4) if hv_a > 0 else None,
        "predictor_within_10pct": round(within, 4),
        "predictor_band_coverage": round(coverage, 4),
        "predictor_confident": len(confident),
        "predictor_confident_within_10pct": None if confident_within is None else round(confident_within, 4),
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
        "latency_column": col,
        "benchmark_iterations": args.iterations,
        "benchmark_runs": args.benchmark_runs,
        "latency_repeat_spread": spread,
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
    print(f"predictor on {history_rows} history rows, held out on (a)'s {len(measured_a)} measured candidates: "
          f"{100 * within:.0f} % within ±10 %; {pred_rank.summary()}")  # fmt: skip
    print(f"predictor band (10 %-90 %) holds {100 * coverage:.0f} % of the measurements; {len(confident)} "
          f"confident (band within ±10 %), of which {figures['predictor_confident_within_10pct']} within ±10 %")  # fmt: skip
    print(f"(b): {figures['predicted_b']} latencies predicted, {figures['spot_checks_b']} spot checks, "
          f"trusted at the end: {latency_b.trusted}; front all measured: {figures['front_b_all_measured']}")  # fmt: skip
    for event in latency_b.drift_events:
        print(f"(b) drift: {event}")
    print(f"partial vs full: {partial_full.summary()}")
    for c in ("mean", "median", "min"):
        if c in spread:
            print(f"same model measured in (a) and again in (b), {spread['models']} models, column {c!r}: "
                  f"median |b/a - 1| {spread[c]['median']:.3f}, max {spread[c]['max']:.3f}, "
                  f"within ±10 %: {100 * spread[c]['within_10pct']:.0f} %")  # fmt: skip
    for low, high, agreement in search_b.rank_agreements:
        print(f"(b) budgets {low:g} -> {high:g}: {agreement.summary()}")
    store.close()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
