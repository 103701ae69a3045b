"""The ``archai-aml`` console script. Each command group lives beside the code it drives and registers
its sub-commands through a ``register(subparsers)`` function listed in ``_COMMAND_MODULES``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from archai_aml.errors import ArchaiAmlError

_COMMAND_MODULES = (
    "archai_aml.store.cli",
    "archai_aml.runner.cli",
    "archai_aml.workspace.cli",
    "archai_aml.executor.cli",
)


def build_parser(
    prog: str = "archai-aml", modules: Sequence[str] = _COMMAND_MODULES
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="archai-aml: the status store, benchmark runners and Azure ML workspace set-up"
    )
    parser.add_argument("--config", "-c", help="YAML configuration (store, workspace, training, target)")
    parser.add_argument("--log-level", default="WARNING", help="logging level (DEBUG, INFO, WARNING, ...)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in modules:
        importlib.import_module(module_name).register(sub)
    return parser


def main(
    argv: Sequence[str] | None = None, *, prog: str = "archai-aml", modules: Sequence[str] = _COMMAND_MODULES
) -> int:
    parser = build_parser(prog, modules)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except ArchaiAmlError as exc:
        sys.stderr.write(f"archai-aml {args.command}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
