"""``archai-aml run SCRIPT [args]``: run a project's script on Azure ML (or here, ``--local``).

The project is the folder above ``pipeline/`` (``--project``, else the script's parent when the script
is under a folder named ``pipeline``, else the current folder); SCRIPT is relative to ``pipeline/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from archai_aml.errors import ConfigError
from archai_aml.paths import PIPELINE


def _phase(phase: str, text: str) -> None:
    sys.stderr.write(f"[{phase}] {text}\n")
    sys.stderr.flush()


def _project_and_script(args: argparse.Namespace) -> tuple[Path, str]:
    script = Path(args.script)
    if args.project:
        return Path(args.project).resolve(), args.script
    full = script.resolve()
    for parent in full.parents:
        if parent.name == PIPELINE:
            return parent.parent, full.relative_to(parent).as_posix()
    return Path.cwd().resolve(), args.script


def _run(args: argparse.Namespace) -> int:
    split_script_args(args)
    from archai_aml.executor.run import load_compute, run_local, run_on_azure
    from archai_aml.store import open_store, resolve_store_config

    project, script = _project_and_script(args)
    config, store_config = resolve_store_config(args.config)
    experiment = args.experiment or config.experiment_name
    if args.local:
        result = run_local(project, script, args.args, experiment=experiment, on_phase=_phase)
        return 0 if result.returncode == 0 else 1
    if config.aml is None:
        raise ConfigError("archai-aml run on Azure ML needs --config with an aml: section (or pass --local)")
    if not args.compute or not args.environment:
        raise ConfigError(
            "archai-aml run on Azure ML needs --compute compute.yaml and --environment conda.yaml"
        )
    from archai_aml.workspace.cli import make_ml_client

    with open_store(store_config) as store:
        result = run_on_azure(
            make_ml_client(config.aml), config.aml, store, store_config, project, script, args.args,
            compute=load_compute(args.compute), conda_file=args.environment, experiment=experiment,
            datasets=args.datasets or [], upload_datasets=args.upload_datasets, zipped=args.zip or [],
            concurrency=args.concurrency, progress=not args.no_progress, on_phase=_phase,
            resync=args.resync,
        )  # fmt: skip
    return 0 if result.status == "Completed" else 1


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compute", help="compute YAML (name, size, min_instances, max_instances, tier)")
    p.add_argument("--environment", help="conda file of the job's environment")
    p.add_argument("--experiment", help="experiment name (default: the config's experiment_name)")
    p.add_argument(
        "--datasets", nargs="+", metavar="KIND/NAME", help="data sets under data_blobs/ (working/faces)"
    )
    p.add_argument(
        "--upload-datasets", action=argparse.BooleanOptionalAction, default=True,
        help="sync the data sets to the store before the job (default: yes)",
    )  # fmt: skip
    p.add_argument(
        "--zip", nargs="+", metavar="KIND/NAME", help="data sets to send as one zip (many small files)"
    )
    p.add_argument("--concurrency", type=int, default=8, help="parallel uploads (default 8)")
    p.add_argument(
        "--resync", action="store_true",
        help="ignore the data sets' sync manifests in the store (also unreadable ones): send every file again",
    )  # fmt: skip
    p.add_argument("--project", help="project folder (default: above the script's pipeline/ folder)")
    p.add_argument("--local", action="store_true", help="run the script here with the same paths")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def split_script_args(args: argparse.Namespace) -> None:
    """Take the run options out of what follows SCRIPT; the rest (and all after ``--``) is the script's."""
    rest = list(args.args)
    tail: list[str] = []
    if "--" in rest:
        at = rest.index("--")
        rest, tail = rest[:at], rest[at + 1 :]
    options = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS, allow_abbrev=False)
    _add_options(options)
    _, unknown = options.parse_known_args(rest, namespace=args)
    args.args = [*unknown, *tail]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run", help="run a project script on Azure ML (or --local)", description=__doc__, allow_abbrev=False
    )
    p.add_argument("script", help="the script, under the project's pipeline/ folder")
    p.add_argument(
        "args", nargs=argparse.REMAINDER,
        help="arguments of the script; run options among them are taken out (put the script's after --)",
    )  # fmt: skip
    _add_options(p)
    p.set_defaults(func=_run)
