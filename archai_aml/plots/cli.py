"""``archai-aml plot EXPERIMENT``: every plot of a search, drawn from the status table at any time (while
the search runs or long after), or from a search's output folder with ``--search-output``.

The store comes from ``--config`` (its ``store`` section), else the environment, else the embedded default
(:func:`archai_aml.store.resolve_store_config`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def cmd_plot(args: argparse.Namespace) -> int:
    from archai_aml.plots.data import from_output, from_store
    from archai_aml.plots.report import plot_search

    out = Path(args.output or Path("plots") / args.experiment)
    if args.search_output:
        data = from_output(args.search_output, title=args.experiment)
    else:
        from archai_aml.store import open_store, resolve_store_config

        config, store_config = resolve_store_config(getattr(args, "config", None))
        with open_store(store_config) as store:
            data = from_store(
                store,
                args.experiment,
                latency_experiment=args.latency_experiment,
                target_experiment=args.target_experiment,
                metric_key=args.metric or config.training.metric_key,
                latency_key=args.latency_key,
            )
    written = plot_search(data, out)
    if not written:
        sys.stderr.write(
            f"archai-aml plot: no model of {args.experiment!r} has both {data.y} and {data.x} yet: nothing drawn\n"
        )
        return 1
    for path in written:
        sys.stdout.write(f"{path}\n")
    return 0


def register(subparsers: Any) -> None:
    """Add ``plot`` to the ``archai-aml`` parser."""
    help_text = "draw a search's plots (per iteration, GIFs, full training, F1 on the target)"
    p = subparsers.add_parser("plot", help=help_text, description=help_text)
    p.add_argument("experiment", help="the search's experiment (training partition)")
    p.add_argument("--output", "-o", help="folder for the images (default: plots/EXPERIMENT)")
    p.add_argument("--latency-experiment", help="partition of the latency rows (default: EXPERIMENT-latency)")
    p.add_argument("--target-experiment", help="partition of the F1 rows (default: the joined rows with F1)")
    p.add_argument("--metric", help="training metric column (default: the config's training.metric_key)")
    p.add_argument("--latency-key", default="mean", help="latency column (default: mean)")
    p.add_argument("--search-output", type=Path, help="read a search's output folder instead of the store")
    p.set_defaults(func=cmd_plot)
