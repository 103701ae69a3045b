"""Run a sweep here: each trial a process of the project's script, at most ``max_concurrent_trials`` at once,
the early-termination policy applied to the primary metric each trial logs through MLflow.

- Sampling: ``grid`` walks the cartesian product of the choices (in order, up to ``max_total_trials``);
  ``random`` draws each parameter (``numpy`` generator seeded with ``seed``); ``bayesian`` is Azure ML only.
- Every trial gets an MLflow run created beforehand in the sweep's store (``outputs/<sweep>/mlruns``), named by
  ``MLFLOW_RUN_ID`` and ``MLFLOW_TRACKING_URI``, so ``mlflow.log_metric`` in the script (or ``start_run()``)
  lands in it; the parameters are its params.
- The policies follow Azure ML's definitions (https://learn.microsoft.com/en-us/azure/machine-learning/how-to-tune-hyperparameters#early-termination):
  at each evaluation step (every ``evaluation_interval`` steps from ``delay_evaluation``), *bandit* stops a
  trial whose metric is not within ``slack_factor`` (``best / (1 + slack_factor)`` when maximizing,
  ``best * (1 + slack_factor)`` when minimizing) or ``slack_amount`` of the best trial's at that step;
  *median* stops one whose best value so far is worse than the median of the other trials' running averages
  at that step; *truncation* stops the worst ``truncation_percentage`` % of the trials that reached it. A
  stopped trial's process group is terminated; its status is ``Stopped``.

``outputs/<sweep>/sweep.json`` keeps the trials (parameters, status, best metric, steps, outputs folder).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from archai_aml.errors import ConfigError
from archai_aml.executor.sweep import RESULT_FILE, SweepConfig, TrialResult
from archai_aml.paths import ProjectPaths

__all__ = ["run_sweep_local", "sample", "trial_table"]

log = logging.getLogger(__name__)


def sample(config: SweepConfig) -> list[dict[str, Any]]:
    """The parameter sets of the trials, in order."""
    names = list(config.search_space)
    if config.sampling == "bayesian":
        raise ConfigError("bayesian sampling runs on Azure ML only: use grid or random with --local")
    if config.sampling == "grid":
        grid = itertools.product(*(config.search_space[n].values or [] for n in names))
        return [
            dict(zip(names, values, strict=True))
            for values in itertools.islice(grid, config.max_total_trials)
        ]
    import numpy as np

    rng = np.random.default_rng(config.seed)
    trials = []
    for _ in range(config.max_total_trials):
        params: dict[str, Any] = {}
        for name in names:
            p = config.search_space[name]
            if p.type == "choice":
                params[name] = (p.values or [])[int(rng.integers(len(p.values or [])))]
            elif p.type == "uniform":
                params[name] = float(rng.uniform(float(p.min_value or 0), float(p.max_value or 0)))
            elif p.type == "loguniform":  # as Azure ML: exp(uniform(min, max))
                params[name] = float(np.exp(rng.uniform(float(p.min_value or 0), float(p.max_value or 0))))
            else:
                params[name] = int(rng.integers(p.upper or 1))
        trials.append(params)
    return trials


@dataclass
class _Trial:
    name: str
    params: dict[str, Any]
    run_id: str
    outputs: Path
    proc: subprocess.Popen[bytes] | None = None
    status: str = "NotStarted"
    history: dict[int, float] = field(default_factory=dict)


def _stop(trial: _Trial, why: str) -> None:
    assert trial.proc is not None
    log.info("early termination: %s stopped (%s)", trial.name, why)
    try:
        os.killpg(trial.proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    trial.proc.wait()
    trial.status = "Stopped"


def _policy_verdicts(
    config: SweepConfig, trials: list[_Trial], evaluated: set[tuple[str, int]]
) -> list[tuple[_Trial, str]]:
    policy = config.early_termination
    if policy is None:
        return []
    out = []
    running = [t for t in trials if t.status == "Running"]
    for trial in running:
        for step in sorted(trial.history):
            if (trial.name, step) in evaluated or step < policy.delay_evaluation:
                continue
            if (step - policy.delay_evaluation) % policy.evaluation_interval:
                continue
            evaluated.add((trial.name, step))
            peers = [t for t in trials if step in t.history]
            value = trial.history[step]
            if policy.type == "bandit":
                at = [t.history[step] for t in peers]
                best = max(at) if config.goal == "maximize" else min(at)
                if policy.slack_factor is not None:
                    limit = (
                        best / (1 + policy.slack_factor)
                        if config.goal == "maximize"
                        else best * (1 + policy.slack_factor)
                    )
                else:
                    amount = policy.slack_amount or 0.0
                    limit = best - amount if config.goal == "maximize" else best + amount
                if config.better(limit, value):
                    out.append((trial, f"step {step}: {value:.4g} outside the slack of the best {best:.4g}"))
                    break
            elif policy.type == "median":
                others = [t for t in peers if t is not trial]
                if not others:
                    continue
                averages = [
                    sum(v for s, v in t.history.items() if s <= step)
                    / len([s for s in t.history if s <= step])
                    for t in others
                ]
                mine = [v for s, v in trial.history.items() if s <= step]
                best_so_far = max(mine) if config.goal == "maximize" else min(mine)
                if config.better(median(averages), best_so_far):
                    out.append(
                        (
                            trial,
                            f"step {step}: best {best_so_far:.4g} worse than the median {median(averages):.4g}",
                        )
                    )
                    break
            else:
                if len(peers) < 2:
                    continue
                ranked = sorted(peers, key=lambda t: t.history[step], reverse=config.goal == "maximize")
                cut = max(1, int(len(ranked) * policy.truncation_percentage / 100))
                if trial in ranked[-cut:]:
                    out.append((trial, f"step {step}: in the worst {policy.truncation_percentage}%"))
                    break
    return out


def run_sweep_local(
    project_root: str | Path, script: str, args: list[str], config: SweepConfig, *, name: str,
    env: dict[str, str] | None = None, poll_s: float = 0.2, on_phase: Callable[[str, str], None] | None = None,
) -> list[TrialResult]:  # fmt: skip
    """Run the sweep's trials; returns them (and writes ``outputs/<name>/sweep.json``)."""
    from mlflow import MlflowClient

    from archai_aml.steps.registry import ensure_experiment

    project = ProjectPaths.of_project(project_root)
    path = project.pipeline / script
    if not path.is_file():
        raise ConfigError(f"script {script} is not in {project.pipeline}")
    root = project.outputs / name
    root.mkdir(parents=True, exist_ok=True)
    tracking = "sqlite:///" + str((root / "mlruns" / "mlflow.db").resolve())
    from archai_aml.steps.registry import mlflow_client

    client: MlflowClient = mlflow_client(tracking)
    experiment = ensure_experiment(client, name, tracking)
    trials: list[_Trial] = []
    for i, params in enumerate(sample(config)):
        run = client.create_run(experiment, run_name=f"{name}_trial_{i}", tags={"sweep": name})
        for k, v in params.items():
            client.log_param(run.info.run_id, k, v)
        trials.append(_Trial(f"{name}_trial_{i}", params, run.info.run_id, root / f"trial_{i}"))
    pending = list(trials)
    evaluated: set[tuple[str, int]] = set()
    started = time.monotonic()
    while pending or any(t.status == "Running" for t in trials):
        while pending and sum(t.status == "Running" for t in trials) < config.max_concurrent_trials:
            trial = pending.pop(0)
            paths = ProjectPaths.of_project(project_root, outputs=trial.outputs)
            paths.outputs.mkdir(parents=True, exist_ok=True)
            child = {**os.environ, **(env or {}), **paths.environment(), "MLFLOW_TRACKING_URI": tracking,
                     "MLFLOW_RUN_ID": trial.run_id, "MLFLOW_EXPERIMENT_ID": experiment}  # fmt: skip
            argv = [a for k, v in trial.params.items() for a in (f"--{k}", str(v))]
            with open(trial.outputs / "std_log.txt", "wb") as out:
                trial.proc = subprocess.Popen([sys.executable, "-u", str(path), *args, *argv], cwd=project.pipeline,
                                              env=child, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            trial.status = "Running"
            if on_phase:
                on_phase("run", f"{trial.name} started: {trial.params}")
        time.sleep(poll_s)
        for trial in trials:
            if trial.status != "Running":
                continue
            trial.history = {
                int(m.step): float(m.value)
                for m in client.get_metric_history(trial.run_id, config.primary_metric)
            }
            assert trial.proc is not None
            code = trial.proc.poll()
            if code is not None:
                trial.status = "Completed" if code == 0 else "Failed"
                if on_phase:
                    on_phase("run", f"{trial.name} {trial.status.lower()} (exit {code})")
        for trial, why in _policy_verdicts(config, trials, evaluated):
            _stop(trial, why)
        if config.timeout_s and time.monotonic() - started > config.timeout_s:
            for trial in trials:
                if trial.status == "Running":
                    _stop(trial, "the sweep's timeout")
            pending.clear()
    results = []
    for trial in trials:
        values = list(trial.history.values()) or [
            m.value for m in client.get_metric_history(trial.run_id, config.primary_metric)
        ]
        best = (max(values) if config.goal == "maximize" else min(values)) if values else None
        results.append(TrialResult(trial=trial.name, params=trial.params, status=trial.status, metric=best,
                                   steps=len(values), outputs=str(trial.outputs)))  # fmt: skip
    document = {"sweep": name, "primary_metric": config.primary_metric, "goal": config.goal,
                "trials": [r.model_dump() for r in results]}  # fmt: skip
    (root / RESULT_FILE).write_text(json.dumps(document, indent=2), encoding="utf-8")
    return results


def trial_table(results: list[TrialResult], metric: str) -> str:
    """A readable table of the trials."""
    rows = [("trial", "params", "status", f"best {metric}", "steps")]
    for r in results:
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.params.items()
        )
        rows.append((r.trial, params, r.status, "-" if r.metric is None else f"{r.metric:.4f}", str(r.steps)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
