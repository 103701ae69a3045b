"""What the after-search scripts (train_pareto.py, snp_test.py, export.py, aml.py) share: the common options,
logging, and the configuration loaded the way search.py loads it (``ARCHAI_AML_OUTPUT`` = ``--output``,
``ARCHAI_AML_EXAMPLE_DIR`` = this folder, so ``demo.yaml``'s ``${ARCHAI_AML_OUTPUT}/store`` is the search's
store)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from archai_aml.config import ArchaiAmlConfig, load_config

HERE = Path(__file__).resolve().parent


def add_common(p: argparse.ArgumentParser, *, output_help: str) -> None:
    p.add_argument("--config", type=Path, default=HERE / "demo.yaml", help="the search's archai-aml YAML")
    p.add_argument("--output", type=Path, default=Path("search_output"), help=output_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="debug logging")


def setup_logging(name: str, verbose: bool) -> logging.Logger:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    log = logging.getLogger(name)
    if not verbose:
        log.setLevel(logging.INFO)
        logging.getLogger("archai_aml.pareto").setLevel(logging.INFO)
    return log


def load(config: Path, output: Path) -> ArchaiAmlConfig:
    os.environ.setdefault("ARCHAI_AML_OUTPUT", str(output.resolve()))
    os.environ.setdefault("ARCHAI_AML_EXAMPLE_DIR", str(HERE))
    return load_config(config)
