"""The ``archai-aml`` console script. Each command group lives beside the code it drives and registers
its sub-commands through a ``register(subparsers)`` function listed in ``_COMMAND_MODULES``."""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence

from archai_aml.errors import ArchaiAmlError, redact_secrets

log = logging.getLogger(__name__)

_COMMAND_MODULES: tuple[str, ...] = (
    "archai_aml.store.cli",
    "archai_aml.runner.cli",
    "archai_aml.workspace.cli",
    "archai_aml.plots.cli",
    "archai_aml.executor.cli",
    "archai_aml.dashboard.cli",
    "archai_aml.steps.schedule_cli",
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


def _redirect_archai_log(args: argparse.Namespace) -> None:
    """Archai's ``archai.log`` goes under the command's working folder (``--working``), else ``.archai_aml/``
    (next to the default store), never loose in the current directory."""
    from archai_aml.archai_log import redirect_archai_log

    folder = getattr(args, "working", None) or ".archai_aml"
    try:
        redirect_archai_log(folder)
    except (ImportError, OSError) as exc:  # archai missing, or a read-only working directory
        log.debug("archai.log stays where archai puts it: %s", exc)


def error_line(exc: BaseException) -> str:
    """``exc`` as one line without secrets: the project's own messages as they are, others with their type."""
    text = str(exc) if isinstance(exc, ArchaiAmlError) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and not isinstance(exc, ArchaiAmlError):
        text += " (check the path, its permissions and the free space)"
    return " ".join(redact_secrets(text).split())


def main(
    argv: Sequence[str] | None = None, *, prog: str = "archai-aml", modules: Sequence[str] = _COMMAND_MODULES
) -> int:
    parser = build_parser(prog, modules)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _redirect_archai_log(args)
    try:
        return int(args.func(args) or 0)
    except (ArchaiAmlError, OSError, ValueError, re.error) as exc:
        # an error a user can cause or meet (a bad name or value, a full disk, a read-only folder): one line
        # that says what failed, exit code 2; the traceback only at DEBUG
        log.debug("archai-aml %s failed", args.command, exc_info=True)
        sys.stderr.write(f"archai-aml {args.command}: {error_line(exc)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
