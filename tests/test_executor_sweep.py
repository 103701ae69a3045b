"""Sweeps and distributed training through ``archai-aml run``: run here for real (trials as processes with the
early-termination policy on their MLflow metrics; torchrun processes with gloo on the CPU), submitted to Azure
ML through the job helpers (a real MLClient whose last hop records), and the best trial reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from azure.ai.ml import PyTorchDistribution
from azure.ai.ml.entities import Command, CommandJob
from azure.ai.ml.sweep import Choice, Objective, SweepJob
from mlflow import MlflowClient

from archai_aml.config import StoreConfig
from archai_aml.executor.run import load_compute, run_on_azure
from archai_aml.executor.sweep import SweepConfig, best_trial, load_sweep
from archai_aml.executor.sweep_local import run_sweep_local, sample, trial_table
from archai_aml.store import open_store
from tests.test_executor_run import AML, make_project, workspace

REPO = Path(__file__).resolve().parents[1]

# a real (tiny) training: least squares by gradient descent; the learning rate decides how fast the loss falls
SWEEP_SCRIPT = """\
import argparse, json, os, time
import numpy as np
import mlflow
p = argparse.ArgumentParser(); p.add_argument("--lr", type=float); p.add_argument("--epochs", type=int, default=8)
a = p.parse_args()
started = time.time()
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 3)); w_true = np.array([1.0, -2.0, 0.5]); y = x @ w_true
w = np.zeros(3)
for epoch in range(a.epochs):
    w -= a.lr * 2 * x.T @ (x @ w - y) / len(y)
    mlflow.log_metric("loss", float(np.mean((x @ w - y) ** 2)), step=epoch)
    time.sleep(0.4)
out = os.environ["ARCHAI_AML_OUTPUTS"]
open(os.path.join(out, "span.json"), "w").write(json.dumps([started, time.time()]))
"""

DDP_SCRIPT = """\
import json, os
import torch, torch.distributed as dist
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
ddp = torch.nn.parallel.DistributedDataParallel(model)
g = torch.Generator().manual_seed(100 + rank)  # each rank its own data
x, y = torch.randn(8, 4, generator=g), torch.randn(8, 1, generator=g)
local = torch.autograd.grad(((model(x) - y) ** 2).mean(), model.weight)[0]
ddp.zero_grad()
((ddp(x) - y) ** 2).mean().backward()  # DDP averages the gradients over the ranks
peers = [None] * world
dist.all_gather_object(peers, {"rank": rank, "pid": os.getpid()})
out = {"rank": rank, "world": world, "peers": peers, "grad": model.weight.grad.flatten().tolist(),
       "local": local.flatten().tolist(), "env": {k: os.environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}}
open(os.path.join(os.environ["ARCHAI_AML_OUTPUTS"], f"rank_{rank}.json"), "w").write(json.dumps(out))
dist.destroy_process_group()
"""

SWEEP = {
    "search_space": {"lr": {"type": "choice", "values": [0.1, 0.12, 0.0005, 0.13]}},
    "sampling": "grid",
    "primary_metric": "loss",
    "goal": "minimize",
    "max_total_trials": 4,
    "max_concurrent_trials": 2,
    "early_termination": {
        "type": "bandit",
        # 3.0: the good rates stay within 4x of each other at every step (0.27 vs 0.11 at the last), whichever
        # of them has reported first; the bad one (about 5 throughout) falls outside it by step 7
        "slack_factor": 3.0,
        "evaluation_interval": 1,
        "delay_evaluation": 2,
    },
}


def project_with(tmp_path: Path) -> Path:
    project = make_project(tmp_path / "proj")
    (project / "pipeline" / "fit.py").write_text(SWEEP_SCRIPT)
    (project / "pipeline" / "ddp.py").write_text(DDP_SCRIPT)
    (project / "sweep.yaml").write_text(yaml.safe_dump(SWEEP))
    return project


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "archai_aml.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=400)  # fmt: skip


def test_local_sweep_runs_trials_stops_one_early_and_reports_the_best(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    config = load_sweep(project / "sweep.yaml")
    results = run_sweep_local(
        project, "fit.py", ["--epochs", "8"], config, name="fit_sweep", env={"PYTHONPATH": str(REPO)}
    )
    table = trial_table(results, "loss")
    print("\n" + table)
    assert [r.params["lr"] for r in results] == [0.1, 0.12, 0.0005, 0.13]  # grid order
    status = {r.params["lr"]: r.status for r in results}
    assert status[0.0005] == "Stopped" and {status[0.1], status[0.12], status[0.13]} == {"Completed"}, table
    stopped = next(r for r in results if r.status == "Stopped")
    assert 3 <= stopped.steps < 8  # evaluated from step 2 on, stopped before its last epoch
    spans = [
        json.loads((Path(r.outputs or "") / "span.json").read_text())
        for r in results
        if r.status == "Completed"
    ]
    for start, _ in spans:  # never more than max_concurrent_trials at once
        assert sum(s <= start < e for s, e in spans) <= 2
    best = best_trial("fit_sweep", outputs_root=project / "outputs")
    assert best["params"] == {"lr": 0.13} and best["metric"] == min(
        r.metric for r in results if r.metric is not None
    )
    assert best["outputs"].endswith("trial_3") and (best["primary_metric"], best["goal"]) == (
        "loss",
        "minimize",
    )
    runs = MlflowClient(f"sqlite:///{project / 'outputs' / 'fit_sweep' / 'mlruns' / 'mlflow.db'}").search_runs(
        [MlflowClient(f"sqlite:///{project / 'outputs' / 'fit_sweep' / 'mlruns' / 'mlflow.db'}").get_experiment_by_name("fit_sweep").experiment_id]
    )  # fmt: skip
    assert sorted(r.data.params["lr"] for r in runs) == ["0.0005", "0.1", "0.12", "0.13"]
    done = cli("run", "best", "fit_sweep", "--local", "--project", str(project), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["params"] == {"lr": 0.13}


def test_random_sampling_is_seeded_and_within_bounds() -> None:
    config = SweepConfig.model_validate({**SWEEP, "sampling": "random", "max_total_trials": 6, "early_termination": None,
        "search_space": {"lr": {"type": "uniform", "min_value": 0.01, "max_value": 0.1}, "n": {"type": "randint", "upper": 3},
                         "act": {"type": "choice", "values": ["relu", "gelu"]}}})  # fmt: skip
    first, again = sample(config), sample(config)
    assert first == again and len(first) == 6 and len({t["lr"] for t in first}) == 6
    assert all(0.01 <= t["lr"] <= 0.1 and t["n"] in (0, 1, 2) and t["act"] in ("relu", "gelu") for t in first)
    with pytest.raises(ValueError, match="grid sampling needs choice parameters only"):
        SweepConfig.model_validate({**config.model_dump(), "sampling": "grid"})


def test_local_distributed_run_is_two_gloo_processes_whose_gradients_agree(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    done = cli("run", "ddp.py", "--local", "--distribution", "pytorch", "--processes-per-instance", "2",
               "--project", str(project), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (job,) = [p for p in (project / "outputs").iterdir() if p.name.startswith("ddp_")]
    ranks = [json.loads((job / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2] and [r["env"]["RANK"] for r in ranks] == ["0", "1"]
    assert ranks[0]["peers"] == ranks[1]["peers"] and [p["rank"] for p in ranks[0]["peers"]] == [0, 1]
    assert ranks[0]["peers"][0]["pid"] != ranks[0]["peers"][1]["pid"]  # two processes saw each other
    grad0, grad1 = torch.tensor(ranks[0]["grad"]), torch.tensor(ranks[1]["grad"])
    mean_local = (torch.tensor(ranks[0]["local"]) + torch.tensor(ranks[1]["local"])) / 2
    assert torch.allclose(grad0, grad1) and torch.allclose(grad0, mean_local, atol=1e-6)
    assert not torch.allclose(grad0, torch.tensor(ranks[0]["local"]))  # the all-reduce changed them


def test_azure_sweep_and_distributed_jobs_are_submitted_through_the_helpers(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    config = load_sweep(project / "sweep.yaml")
    ws, jobs = workspace(["Completed", "Completed"])
    common = {"compute": load_compute(project / "compute.yaml"), "conda_file": project / "conda.yaml", "experiment": "exp",
              "progress": False, "on_phase": lambda p, t: None, "poll_interval_s": 0}  # fmt: skip
    with open_store(StoreConfig(path=tmp_path / "store")) as store:
        run_on_azure(ws.client, AML, store, StoreConfig(path=tmp_path / "store"), project, "fit.py", ["--epochs", "8"],
                     sweep=config, job_name="fit_sweep_1", **common)  # fmt: skip
        run_on_azure(ws.client, AML, store, StoreConfig(path=tmp_path / "store"), project, "ddp.py", job_name="ddp_1",
                     instance_count=3, distribution=PyTorchDistribution(process_count_per_instance=2), **common)  # fmt: skip
    (sweep, _), (dist_job, _) = jobs.submitted
    assert (sweep.type, sweep.name) == (
        "sweep",
        "fit_sweep_1",
    )  # the command job's .sweep() node, a sweep job
    assert sweep.search_space["lr"].values == [0.1, 0.12, 0.0005, 0.13] and sweep.sampling_algorithm == "grid"
    assert (sweep.objective.primary_metric, sweep.objective.goal) == ("loss", "minimize")
    assert (sweep.limits.max_total_trials, sweep.limits.max_concurrent_trials) == (4, 2)
    policy = sweep.early_termination
    assert (type(policy).__name__, policy.slack_factor, policy.delay_evaluation) == ("BanditPolicy", 3.0, 2)
    # the SDK's sweep node rewrites the trial's inputs into the sweep's own syntax on submission
    assert sweep.trial.command.endswith("python fit.py --epochs 8 --lr ${{search_space.lr}}")
    assert isinstance(dist_job, Command) and dist_job.resources.instance_count == 3
    assert dist_job.distribution.process_count_per_instance == 2 and dist_job.distribution.type == "pytorch"


def test_best_trial_of_an_azure_sweep_from_its_child_jobs_and_mlflow(tmp_path: Path) -> None:
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking)
    experiment = client.create_experiment("exp")
    children = []
    for i, (lr, losses) in enumerate([(0.1, [0.5, 0.2]), (0.2, [0.4, 0.1]), (0.0005, [3.0])]):
        run = client.create_run(experiment)  # an Azure ML job's name is its MLflow run id
        for step, value in enumerate(losses):
            client.log_metric(run.info.run_id, "loss", value, step=step)
        children.append(CommandJob(name=run.info.run_id, command="python fit.py --lr ${{inputs.lr}} --epochs 8",
                                   inputs={"lr": lr, "epochs": 8}, environment="e:1", parent_job_name="sweep_1",
                                   status="Completed" if i < 2 else "Canceled"))  # fmt: skip
    sweep = SweepJob(name="sweep_1", objective=Objective(goal="minimize", primary_metric="loss"),
                     search_space={"lr": Choice([0.1, 0.2, 0.0005])}, sampling_algorithm="grid")  # fmt: skip
    calls: list[Any] = []

    def get(name: str) -> Any:
        calls.append(("get", name))
        return sweep

    def list_children(parent_job_name: str | None = None, **kwargs: Any) -> Any:
        calls.append(("list", parent_job_name))
        return iter(children)

    from unittest.mock import create_autospec

    from azure.ai.ml.operations import JobOperations

    ops = create_autospec(JobOperations, instance=True)
    ops.get.side_effect, ops.list.side_effect = get, list_children
    from azure.ai.ml import MLClient

    from archai_aml.testing.mlclient_online import NeverUsedCredential

    ml = MLClient(
        credential=NeverUsedCredential(), subscription_id="s", resource_group_name="g", workspace_name="w"
    )
    ml._jobs = ops
    best = best_trial("sweep_1", ml_client=ml, tracking_uri=tracking)
    assert calls == [("get", "sweep_1"), ("list", "sweep_1")]
    assert (best["trial"], best["params"], best["metric"]) == (children[1].name, {"lr": 0.2}, 0.1)
    assert best["outputs"] == f"azureml://jobs/{children[1].name}/outputs/artifacts/paths/outputs"


def test_cli_runs_a_local_sweep_prints_the_trial_table_and_the_best(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    small = {**SWEEP, "search_space": {"lr": {"type": "choice", "values": [0.05, 0.2]}}, "max_total_trials": 2,
             "early_termination": None}  # fmt: skip
    (project / "small.yaml").write_text(yaml.safe_dump(small))
    done = cli("run", "fit.py", "--local", "--sweep", str(project / "small.yaml"), "--project", str(project),
               "--", "--epochs", "2", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    header, *rows = done.stdout.strip().splitlines()
    assert header.split()[:3] == ["trial", "params", "status"] and len(rows) == 2
    assert all("Completed" in row and " 2" in row for row in rows)
    (name,) = [p.name for p in (project / "outputs").iterdir()]
    best = cli("run", "best", name, "--local", "--project", str(project), cwd=tmp_path)
    assert best.returncode == 0 and json.loads(best.stdout)["params"] == {"lr": 0.2}
