"""``archai-aml run SCRIPT [args]``: run a project's script on Azure ML (or here, ``--local``); ``--sweep
sweep.yaml`` runs a hyperparameter sweep of it (:mod:`.sweep`), ``--instances N --distribution pytorch|mpi
--processes-per-instance K`` a distributed job; ``archai-aml run best JOB`` prints a sweep's best trial.

The project is the folder above ``pipeline/`` (``--project``, else the script's parent when the script
is under a folder named ``pipeline``, else the current folder); SCRIPT is relative to ``pipeline/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Literal

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


def _best(args: argparse.Namespace) -> int:
    """``archai-aml run best JOB``: the best trial of a sweep, as JSON."""
    import json

    from archai_aml.executor.sweep import best_trial

    if len(args.args) != 1:
        raise ConfigError("usage: archai-aml run best JOB [--local] [--project DIR]")
    project = Path(args.project).resolve() if args.project else Path.cwd()
    if args.local:
        result = best_trial(args.args[0], outputs_root=project / "outputs")
    else:
        from archai_aml.store import resolve_store_config
        from archai_aml.workspace.cli import make_ml_client

        config, _ = resolve_store_config(args.config)
        if config.aml is None:
            raise ConfigError(
                "archai-aml run best on Azure ML needs --config with an aml: section (or --local)"
            )
        client = make_ml_client(config.aml)
        uri = client.workspaces.get(client.workspace_name).mlflow_tracking_uri
        result = best_trial(args.args[0], ml_client=client, tracking_uri=uri)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _run(args: argparse.Namespace) -> int:
    split_script_args(args)
    if args.script == "best":
        return _best(args)
    from archai_aml.executor.run import distributed_launcher, load_compute, run_local, run_on_azure
    from archai_aml.executor.sweep import load_sweep
    from archai_aml.store import open_store, resolve_store_config

    project, script = _project_and_script(args)
    config, store_config = resolve_store_config(args.config)
    experiment = args.experiment or config.experiment_name
    sweep = load_sweep(args.sweep) if args.sweep else None
    distributed = args.instances > 1 or args.processes_per_instance > 1 or args.distribution is not None
    if sweep is not None and distributed:
        raise ConfigError("--sweep with --instances/--distribution: run one or the other")
    if args.local and sweep is not None:
        from archai_aml.executor.run import new_job_name
        from archai_aml.executor.sweep_local import run_sweep_local, trial_table

        name = new_job_name(script)
        results = run_sweep_local(project, script, args.args, sweep, name=name, on_phase=_phase)
        sys.stdout.write(trial_table(results, sweep.primary_metric) + "\n")
        _phase("download", f"sweep {name}: outputs/{name}/sweep.json (archai-aml run best {name} --local)")
        return 0 if any(r.status == "Completed" for r in results) else 1
    if args.local:
        launcher = (
            distributed_launcher(args.instances, args.processes_per_instance, args.distribution or "pytorch")
            if distributed
            else None
        )
        result = run_local(
            project, script, args.args, experiment=experiment, on_phase=_phase, launcher=launcher
        )
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
            resync=args.resync, sweep=sweep, **_distribution_options(args, distributed),
        )  # fmt: skip
    return 0 if result.status == "Completed" else 1


def _distribution_options(args: argparse.Namespace, distributed: bool) -> dict[str, Any]:
    if not distributed:
        return {}
    from archai_aml.executor.jobs import distribution

    kind: Literal["mpi", "pytorch"] = "mpi" if args.distribution == "mpi" else "pytorch"
    return {"instance_count": args.instances, "distribution": distribution(kind, args.processes_per_instance)}


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
    p.add_argument(
        "--sweep", help="sweep YAML (search space, sampling, metric, goal, limits, early termination)"
    )
    p.add_argument("--instances", type=int, default=1, help="nodes of a distributed job (default 1)")
    p.add_argument("--distribution", choices=["pytorch", "mpi"], help="distributed training launcher")
    p.add_argument("--processes-per-instance", type=int, default=1, help="processes per node (default 1)")


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
