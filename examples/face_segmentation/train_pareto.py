"""Fully train the Pareto models of a finished search in one training pipeline.

    python examples/face_segmentation/train_pareto.py --config examples/face_segmentation/demo.yaml \
        --output demo_output --epochs 5

The front comes from ``<output>/pareto.json`` (``--from-store``: from the status table, the non-dominated
models of val_iou against latency). Each model is trained by the configuration's training command
(``--command`` to use another) for ``--epochs`` epochs in the partition ``<experiment>-final``, on this
machine (LocalJobRunner) or, with an ``aml:`` section, on Azure ML; ``final_val_iou`` and ``final_epochs``
are then written to the search's row of every model. Run it again to resume: finished models are skipped.

Then it measures whether partial training ranked the front as full training does (Kendall's tau, Spearman's
rho, 90 % bootstrap intervals; fewer than 5 models cannot be judged) and writes it to ``pareto.json``
(``rank_agreement``), ``results.csv`` (a ``final_val_iou`` column) and ``rank_agreement.csv``, with a warning
below ``search.min_rank_tau``.
The library does the work: :func:`archai_aml.pareto.full_training.train_pareto`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
        finals = {
            m.archid: (store.get(config.experiment_name, m.model_id) or {}).get("final_val_iou")
            for m in front
        }
    write_rank(args.output, result, finals)
    log.info("pipelines launched: %s", ", ".join(result.pipelines) or "none")
    return 1 if result.failed else 0


def write_rank(output: Path, result: Any, finals: dict[str, Any]) -> None:
    """The rank agreement into pareto.json, results.csv (final_val_iou) and rank_agreement.csv."""
    if result.rank is None:
        return
    figures = result.rank.as_dict()
    pareto = output / "pareto.json"
    if pareto.is_file():
        doc = json.loads(pareto.read_text(encoding="utf-8"))
        for entry in doc.get("models", []):
            if finals.get(entry.get("archid")) is not None:
                entry["final_val_iou"] = finals[entry["archid"]]
        doc["rank_agreement"] = {**figures, "warning": result.rank_warning}
        pareto.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    results = output / "results.csv"
    if results.is_file():
        with results.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows:
            for row in rows:
                value = finals.get(row["archid"])
                row["final_val_iou"] = "" if value is None else value
            with results.open("w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    with (output / "rank_agreement.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["partial", "full", "models", "judged", "kendall_tau", "kendall_low", "kendall_high",
                         "spearman_rho", "spearman_low", "spearman_high"])  # fmt: skip
        r = result.rank
        kci, sci = r.kendall_ci or ("", ""), r.spearman_ci or ("", "")
        writer.writerow([r.partial, r.full, r.n, r.judged, "" if r.kendall_tau is None else r.kendall_tau,
                         kci[0], kci[1], "" if r.spearman_rho is None else r.spearman_rho, sci[0], sci[1]])  # fmt: skip


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


if __name__ == "__main__":
    sys.exit(main())
