"""Fully train the Pareto models of a finished search in one training pipeline.

    python examples/face_segmentation/train_pareto.py --config examples/face_segmentation/demo.yaml \
        --output demo_output --epochs 5

The front comes from ``<output>/pareto.json`` (``--from-store``: from the status table, the non-dominated
models of val_iou against latency). Each model is trained by the configuration's training command
(``--command`` to use another) for ``--epochs`` epochs in the partition ``<experiment>-final``, on this
machine (LocalJobRunner) or, with an ``aml:`` section, on Azure ML; ``final_val_iou`` and ``final_epochs``
are then written to the search's row of every model. Run it again to resume: finished models are skipped.
The library does the work: :func:`archai_aml.pareto.full_training.train_pareto`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _script import add_common, load, setup_logging  # noqa: E402

from archai_aml.pareto import load_front  # noqa: E402
from archai_aml.pareto.full_training import train_pareto  # noqa: E402
from archai_aml.store import open_store  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common(p, output_help="the search's output folder (pareto.json); full-training files go to final/")
    p.add_argument("--epochs", type=float, required=True, help="epochs of full training")
    p.add_argument("--from-store", action="store_true", help="read the front from the status table")
    p.add_argument(
        "--final-experiment", help="partition of the full-training rows (default <experiment>-final)"
    )
    p.add_argument("--command", help="training command instead of training.command (same placeholders)")
    p.add_argument(
        "--timeout", type=float, help="seconds to wait for the pipeline (default training.timeout)"
    )
    args = p.parse_args(argv)
    log = setup_logging("train_pareto", args.verbose)
    config = load(args.config, args.output)
    data = config.training.data
    if config.aml is None and "://" not in data and not data.startswith("azureml:"):
        Path(data).mkdir(parents=True, exist_ok=True)  # an empty folder: the procedural data set
    with open_store(config.store) as store:
        front = load_front(store, config.experiment_name, None if args.from_store else args.output)
        log.info(
            "%d Pareto models of %s to train for %g epochs", len(front), config.experiment_name, args.epochs
        )
        result = train_pareto(
            front, config, store, epochs=args.epochs, output=args.output / "final",
            final_experiment=args.final_experiment, command=args.command, timeout_seconds=args.timeout,
            progress=not args.no_progress,
        )  # fmt: skip
        for m in front:
            row = store.get(config.experiment_name, m.model_id) or {}
            how = (
                "trained now" if m.model_id in result.trained
                else "from an earlier run" if m.model_id in result.copied
                else "already done" if m.model_id in result.skipped
                else f"FAILED: {result.failed.get(m.model_id)}"
            )  # fmt: skip
            log.info("%-16s val_iou %-8s final_val_iou %-8s (%s epochs) %s", m.model_id[:16],
                     _fmt(row.get("val_iou")), _fmt(row.get("final_val_iou")), row.get("final_epochs"), how)  # fmt: skip
    log.info("pipelines launched: %s", ", ".join(result.pipelines) or "none")
    return 1 if result.failed else 0


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


if __name__ == "__main__":
    sys.exit(main())
