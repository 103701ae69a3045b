"""F1 of the fully trained Pareto models on the target: queue them for the runners, collect the scores.

    python examples/face_segmentation/snp_test.py --config examples/face_segmentation/demo.yaml \
        --output demo_output --local-runners 1

Every model of the front that ``train_pareto.py`` trained (its search row has ``final_val_iou``) is queued in
the partition ``<experiment>-target`` as a full (not benchmark-only) row; runners on ``target.name``
convert, quantize, benchmark and score it, and ``f1_1k``, ``f1_10k``, ``f1_1k_f`` (with ``f1_onnx``,
``target_mean_ms``, ``target_stdev``) are written to the search's row. The runners are a fleet started
elsewhere (``archai-aml runner --target qnn --device SERIAL --experiment <experiment>-target``), or
``--local-runners N`` threads here. Run it again to resume: scored models are skipped, queued ones waited for.
The library does the work: :func:`archai_aml.pareto.target_scores.score_on_target`.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _script import add_common, load, setup_logging  # noqa: E402

from archai_aml.pareto import load_front  # noqa: E402
from archai_aml.pareto.target_scores import TARGET_F1, score_on_target, target_experiment_of  # noqa: E402
from archai_aml.runner import Runner, RunnerSettings  # noqa: E402
from archai_aml.store import open_store  # noqa: E402
from archai_aml.targets import get_target  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common(p, output_help="the search's output folder (pareto.json)")
    p.add_argument("--from-store", action="store_true", help="read the front from the status table")
    p.add_argument("--test-experiment", help="partition the runners work on (default <experiment>-target)")
    p.add_argument("--local-runners", type=int, default=0, help="runner threads on target.name here")
    p.add_argument("--retry-interval", type=float, default=10.0, help="seconds between polls")
    p.add_argument("--max-retries", type=int, default=360, help="polls without progress before giving up")
    args = p.parse_args(argv)
    log = setup_logging("snp_test", args.verbose)
    config = load(args.config, args.output)
    experiment = config.experiment_name
    test_exp = args.test_experiment or target_experiment_of(experiment)
    with open_store(config.store) as store:
        front = load_front(store, experiment, None if args.from_store else args.output)
        trained = [
            m.model_id
            for m in front
            if (store.get(experiment, m.model_id) or {}).get("final_val_iou") is not None
        ]
        if len(trained) < len(front):
            log.warning("%d of %d Pareto models are not fully trained yet (train_pareto.py): left out",
                        len(front) - len(trained), len(front))  # fmt: skip
        runners = []
        for i in range(args.local_runners):
            settings = RunnerSettings.from_config(config, experiment=test_exp, benchmark_only=False)
            runner = Runner(store, get_target(config.target.name), settings)
            thread = threading.Thread(target=runner.run, name=f"runner-{i}", daemon=True)
            thread.start()
            runners.append((runner, thread))
        try:
            result = score_on_target(
                store, experiment, trained, config.target.input_shape, test_experiment=test_exp,
                retry_interval=args.retry_interval, max_retries=args.max_retries, progress=not args.no_progress,
            )  # fmt: skip
        finally:
            for runner, _ in runners:
                runner.stop()
            for runner, thread in runners:
                thread.join(timeout=120)
                runner.target.close()
        for model_id in trained:
            row = store.get(experiment, model_id) or {}
            scores = " ".join(f"{c} {_fmt(row.get(c))}" for c in (*TARGET_F1, "f1_onnx"))
            log.info("%-16s final_val_iou %s %s", model_id[:16], _fmt(row.get("final_val_iou")), scores)
        for model_id, error in result.failed.items():
            log.error("%s: %s", model_id, error)
    return 1 if result.failed else 0


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


if __name__ == "__main__":
    sys.exit(main())
