"""Multi-objective architecture search for the face-segmentation example (the project's main job).

An Archai ``EvolutionParetoSearch`` over :class:`search_space.SegmentationSearchSpace` with three objectives:

- ``val_iou`` (maximize): partial training of every new model by ``train.py``, through
  :class:`~archai_aml.evaluators.AmlPartialTrainingEvaluator`: one pipeline per iteration, run by the
  ``LocalJobRunner`` on this machine, or on Azure ML when the configuration has an ``aml:`` section;
- ``latency_ms`` (minimize): on-target latency measured by runners through
  :class:`~archai_aml.evaluators.RemoteAzureBenchmarkEvaluator` (benchmark-only rows, in the partition
  ``search.latency_experiment``, default ``<experiment_name>-latency``). ``search.local_runners`` runner
  threads on the ``target.name`` target (the onnxruntime CPU target by default) run for the search's
  lifetime and are stopped at the end; with 0, a runner fleet started elsewhere does the work;
- ``params`` (minimize): the parameter count, computed here.

Everything lives in the store of ``store:`` (the embedded store by default; ``backend: azure`` for an Azure
storage account), so a search that is started again reuses every finished training and measurement.

    python examples/face_segmentation/search.py --config examples/face_segmentation/demo.yaml --output out

Before loading the configuration, ``ARCHAI_AML_OUTPUT`` (the ``--output`` folder) and
``ARCHAI_AML_EXAMPLE_DIR`` (this folder) are set unless already set, so the YAML can place the store and
job folders under the output (``path: ${ARCHAI_AML_OUTPUT}/store``).

Writes to ``--output``: ``results.csv`` (every model: archid, iteration, val_iou, latency_ms, params,
is_pareto), ``pareto.json`` (the front's models with their metrics and ArchConfig), ``pareto.png`` (latency
against IoU, colored by iteration, front highlighted), ``plots/`` (written after every iteration, so it can be
watched while the search runs: ``iteration_<i>.png``, ``search.gif`` over all iterations so far and
``pareto.gif`` of the Pareto models only), ``run.json`` (what this run launched and reused),
``search/`` (Archai's search state CSVs, Pareto architectures and plots per iteration) and
``training/models.json`` (the last training batch).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from archai.discrete_search.api import SearchObjectives  # noqa: E402
from archai.discrete_search.evaluators import TorchNumParameters  # noqa: E402
from search_hooks import IterationPlots, LoggingEvolutionParetoSearch, WorstIfMissing  # noqa: E402
from search_space import SegmentationSearchSpace, config_json  # noqa: E402

from archai_aml.archai_log import redirect_archai_log  # noqa: E402
from archai_aml.config import ArchaiAmlConfig, load_config  # noqa: E402
from archai_aml.errors import ConfigError  # noqa: E402
from archai_aml.evaluators import AmlPartialTrainingEvaluator, RemoteAzureBenchmarkEvaluator  # noqa: E402
from archai_aml.plots import numeric, plot_pareto  # noqa: E402
from archai_aml.runner import Runner, RunnerSettings  # noqa: E402
from archai_aml.store import Store, open_store  # noqa: E402
from archai_aml.targets import get_target, target_kwargs  # noqa: E402

log = logging.getLogger("search")

#: Keys of ``search.space``: the choices of the example search space that a configuration may narrow.
SPACE_KEYS = {"stem_strides", "depths", "channels"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=HERE / "demo.yaml", help="archai-aml YAML configuration")
    p.add_argument("--output", type=Path, default=Path("search_output"), help="folder for the results")
    p.add_argument("--iterations", type=int, help="search iterations (default: search.iterations)")
    p.add_argument("--seed", type=int, help="search seed (default: search.seed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true", help="no per-iteration plots and GIFs")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def prepare_local(config: ArchaiAmlConfig) -> None:
    """Local jobs: the data folder exists (an empty folder means the procedural data set). (``python`` in the
    training command is this interpreter: the LocalJobRunner puts its folder first on the jobs' PATH.)"""
    data = config.training.data
    if "://" not in data and not data.startswith("azureml:"):
        Path(data).mkdir(parents=True, exist_ok=True)


def start_runners(
    store: Store, config: ArchaiAmlConfig, experiment: str, count: int
) -> list[tuple[Runner, threading.Thread]]:
    """``count`` runner threads on the configured target, working on ``experiment`` until stopped."""
    tc = config.target
    started = []
    for i in range(count):
        target = (
            get_target("cpu", intra_op_num_threads=1, progress=False)
            if tc.name == "cpu"
            else get_target(tc.name, progress=False, **target_kwargs(tc))
        )
        benchmark_only = not config.search.target_f1
        settings = RunnerSettings.from_config(config, experiment=experiment, benchmark_only=benchmark_only)
        runner = Runner(store, target, settings)
        thread = threading.Thread(target=runner.run, name=f"runner-{i}", daemon=True)
        thread.start()
        started.append((runner, thread))
    if count:
        log.info("started %d %s runner thread(s) on experiment %s", count, tc.name, experiment)
    return started


def stop_runners(runners: list[tuple[Runner, threading.Thread]]) -> None:
    for runner, _ in runners:
        runner.stop()
    for runner, thread in runners:
        thread.join(timeout=120)
        if thread.is_alive():
            log.warning("runner %s did not stop within 120 s", runner.owner)
        runner.target.close()
    if runners:
        items = sum(len(r.done) for r, _ in runners)
        log.info("stopped %d runner thread(s); they did %d work items", len(runners), items)


def _cell(value: Any) -> Any:
    v = numeric(value)
    return "" if v is None else v


def write_outputs(
    output: Path,
    results: Any,
    space: SegmentationSearchSpace,
    target_f1: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """``results.csv``, ``pareto.json`` and ``pareto.png``; returns the front's rows sorted by latency.
    ``target_f1`` (latency row name -> its row, with ``search.target_f1``) adds the float model's F1 on the
    CPU (``f1_onnx``) and the quantized model's on the target (``f1_1k``)."""
    df = results.get_search_state_df()
    rows: list[dict[str, Any]] = []
    for rec in df.to_dict("records"):
        rows.append(
            {
                "archid": rec["archid"],
                "iteration": int(rec["iteration_num"]) + 1,
                "val_iou": _cell(rec.get("val_iou")),
                "latency_ms": _cell(rec.get("latency_ms")),
                "params": "" if numeric(rec.get("params")) is None else int(rec["params"]),
                "is_pareto": bool(rec.get("is_pareto")),
            }
        )
        if target_f1 is not None:
            f1_row = target_f1.get(f"id_{rec['archid']}", {})
            rows[-1]["f1_onnx"] = _cell(f1_row.get("f1_onnx"))
            rows[-1]["f1_target"] = _cell(f1_row.get("f1_1k"))
    with open(output / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["archid"])
        writer.writeheader()
        writer.writerows(rows)

    front = results.get_pareto_frontier()
    by_id = {r["archid"]: r for r in rows}
    pareto = []
    for model in front["models"]:
        entry = dict(by_id[model.archid])
        entry["arch_config"] = json.loads(config_json(model))
        pareto.append(entry)
    pareto.sort(key=lambda e: e["latency_ms"] if e["latency_ms"] != "" else math.inf)
    (output / "pareto.json").write_text(json.dumps({"models": pareto}, indent=2), encoding="utf-8")
    plot_pareto(
        rows, "latency_ms", "val_iou", output / "pareto.png", iteration="iteration", label="archid",
        title="Face segmentation search: IoU vs. latency (circled: front of these two objectives)",
        x_label="latency (ms, lower is better)", y_label="validation IoU (higher is better)",
    )  # fmt: skip
    return pareto


def format_table(pareto: list[dict[str, Any]]) -> str:
    f1 = any("f1_target" in e for e in pareto)
    head = f"{'archid':<14} {'iter':>4} {'val_iou':>8} {'latency_ms':>11} {'params':>9}"
    head += f" {'f1_onnx':>7} {'f1_1k':>7}" if f1 else ""
    lines = [head, "-" * len(head)]
    for e in pareto:
        iou = f"{e['val_iou']:.3f}" if e["val_iou"] != "" else "-"
        lat = f"{e['latency_ms']:.3f}" if e["latency_ms"] != "" else "-"
        params = f"{int(e['params']):,}" if e["params"] != "" else "-"
        line = f"{e['archid'][:12] + '..':<14} {e['iteration']:>4} {iou:>8} {lat:>11} {params:>9}"
        for key in ("f1_onnx", "f1_target") if f1 else ():
            line += f" {e[key]:>7.3f}" if e.get(key, "") != "" else f" {'-':>7}"
        lines.append(line)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    redirect_archai_log(output)  # archai writes archai.log into the cwd otherwise
    os.environ.setdefault("ARCHAI_AML_OUTPUT", str(output))
    os.environ.setdefault("ARCHAI_AML_EXAMPLE_DIR", str(HERE))
    config = load_config(args.config)
    sc = config.search
    if args.iterations is not None:
        sc.iterations = args.iterations
    if args.seed is not None:
        sc.seed = args.seed
    local = config.aml is None
    if local:
        prepare_local(config)
    latency_experiment = sc.latency_experiment or f"{config.experiment_name}-latency"
    progress = not args.no_progress
    log.info(
        "search %s: %d iterations, store %s, training %s, latency on %s (%s)",
        config.experiment_name, sc.iterations,
        config.store.backend if config.store.backend == "azure" else f"embedded at {config.store.path}",
        "locally" if local else "on Azure ML", config.target.name, latency_experiment,
    )  # fmt: skip

    store = open_store(config.store)
    runners: list[tuple[Runner, threading.Thread]] = []
    try:
        unknown = set(sc.space) - SPACE_KEYS
        if unknown:
            raise ConfigError(f"search.space: unknown keys {sorted(unknown)}; use {sorted(SPACE_KEYS)}")
        narrowed: dict[str, Any] = {k: tuple(v) for k, v in sc.space.items()}
        space = SegmentationSearchSpace(seed=sc.seed, **narrowed)
        training = AmlPartialTrainingEvaluator(
            config,
            output / "training",
            tr_epochs=config.training.epochs,
            timeout_seconds=config.training.timeout_seconds,
            store=store,
            search_space=space,
            progress=progress,
        )
        latency = RemoteAzureBenchmarkEvaluator(
            tuple(config.target.input_shape),
            store,
            latency_experiment,
            "mean",
            overwrite=False,
            max_retries=sc.latency_max_retries,
            retry_interval=sc.latency_poll_interval_s,
            benchmark_only=not sc.target_f1,
            progress=progress,
            allow_simulated_latency=sc.allow_simulated_latency,
        )
        objectives = SearchObjectives()
        # Archai sends every model to every async objective, then calls fetch_all in the order objectives
        # were added; the training pipeline starts in val_iou's fetch_all. When training and runners share
        # this machine, latency goes first so it is measured on an idle CPU (not next to training jobs);
        # otherwise val_iou goes first and the remote fleet measures while the models train.
        iou = ("val_iou", WorstIfMissing(training, "val_iou", True), True)
        lat = ("latency_ms", WorstIfMissing(latency, "latency_ms", False), False)
        latency_first = local and sc.local_runners > 0
        for name, evaluator, higher in (lat, iou) if latency_first else (iou, lat):
            objectives.add_objective(name, evaluator, higher_is_better=higher, compute_intensive=True)
        objectives.add_objective(
            "params", TorchNumParameters(), higher_is_better=False, compute_intensive=False
        )
        runners = start_runners(store, config, latency_experiment, sc.local_runners)
        algo = LoggingEvolutionParetoSearch(
            space,
            objectives,
            str(output / "search"),
            num_iters=sc.iterations,
            init_num_models=sc.init_num_models,
            num_random_mix=sc.num_random_mix,
            max_unseen_population=sc.max_unseen_population,
            mutations_per_parent=sc.mutations_per_parent,
            num_crossovers=sc.num_crossovers,
            save_pareto_model_weights=False,
            seed=sc.seed,
            after_iteration=[
                IterationPlots(output / "plots", store, config.experiment_name, enabled=not args.no_plots)
            ],
        )
        results = algo.search()
    finally:
        stop_runners(runners)
    try:
        on_target = None
        if sc.target_f1:  # the on-target F1 of every measured model (f1_1k: quantized, on the target)
            on_target = {str(r["name"]): r for r in store.query(latency_experiment)}
        pareto = write_outputs(output, results, space, on_target)
        summary: dict[str, Any] = {
            "experiment": config.experiment_name,
            "latency_experiment": latency_experiment,
            "iterations": sc.iterations,
            "models": int(len(results.get_search_state_df())),
            "training_pipelines": list(training.pipelines),
            "runner_items": sum(len(r.done) for r, _ in runners),
            "pareto": [e["archid"] for e in pareto],
            "wall_s": round(time.monotonic() - started, 1),
        }
        (output / "run.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    finally:
        store.close()
    log.info(
        "done in %.1f s: %d models, %d training pipeline(s) launched this run, %d latency items measured",
        summary["wall_s"], summary["models"], len(summary["training_pipelines"]), summary["runner_items"],
    )  # fmt: skip
    log.info(
        "Pareto front of val_iou / latency_ms / params (%d models):\n%s", len(pareto), format_table(pareto)
    )
    log.info(
        "wrote %s, %s, %s and %s/", output / "results.csv", output / "pareto.json", output / "pareto.png",
        output / "plots",
    )  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not args.verbose:
        # A few lines per iteration: this script's own at INFO; per-model chatter (archai's search log,
        # onnxruntime's quantizer, the tracer, the latency-stability notes of a busy machine) hidden.
        log.setLevel(logging.INFO)
        for name in list(logging.root.manager.loggerDict):  # archai's loggers set their own level
            if name == "archai" or name.startswith("archai."):
                logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("archai_aml.ort").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    # SIGTERM (Azure ML cancelling the job, a service manager) stops the search like Ctrl-C: the training
    # evaluator cancels its pipeline and marks the batch's rows canceled, the runner threads stop.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(args)
    except KeyboardInterrupt:
        log.warning(
            "search interrupted: pipeline canceled, runners stopped; run again to resume from the store"
        )
        return 130


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
