"""The executor's jobs and lifecycle: real azure-ai-ml objects checked field by field, MLClient faked only at
its last network hop (archai_aml.testing.mlclient: autospecs of the real operation classes); the local path
runs a real script in a subprocess."""

from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml.sweep import Choice, Uniform

from archai_aml import cli
from archai_aml.config import AzureMLConfig, ClusterConfig, WorkspaceConfig
from archai_aml.errors import ConfigError
from archai_aml.executor import (
    data_uri,
    distribution,
    early_termination,
    load_compute,
    run_local,
    run_on_azure,
    script_job,
    sweep_job,
)
from archai_aml.executor.sync import DATA_PARTITION
from archai_aml.store import open_store
from archai_aml.testing.azurite import Azurite
from archai_aml.testing.mlclient import FakeJobs
from archai_aml.testing.mlclient import FakeWorkspace as Workspace

SCRIPT = """\
import json, os, sys
from archai_aml.paths import outputs_dir, pipeline_dir, working_data
faces = working_data("faces")
names = sorted(p.name for p in faces.iterdir())
(outputs_dir() / "result.json").write_text(json.dumps({"files": names, "args": sys.argv[1:]}))
print("read", len(names), "files from", faces)
print("pipeline", pipeline_dir())
print("tracking", os.environ["MLFLOW_TRACKING_URI"])
"""


def make_project(root: Path) -> Path:
    (root / "pipeline").mkdir(parents=True)
    (root / "pipeline" / "train.py").write_text(SCRIPT)
    faces = root / "data_blobs" / "working" / "faces"
    faces.mkdir(parents=True)
    for i in range(5):
        (faces / f"{i}.txt").write_text(str(i))
    (root / "conda.yaml").write_text("name: t\ndependencies:\n  - python=3.11\n")
    (root / "compute.yaml").write_text("name: gpu-x\nsize: Standard_NC24ads_A100_v4\nmax_instances: 2\n")
    return root


AML = AzureMLConfig(workspace=WorkspaceConfig(subscription_id="s", resource_group="g", workspace_name="w"))


def workspace(statuses: list[Any]) -> tuple[Workspace, FakeJobs]:
    """A fake workspace whose next job goes through ``statuses`` and writes ``artifacts/outputs/model.onnx``."""
    ws = Workspace()
    ws.jobs.next_statuses = statuses
    ws.jobs.default_files["artifacts/outputs/model.onnx"] = b"onnx"
    return ws, ws.jobs


def test_script_job_fields() -> None:
    job = script_job(
        "train.py", ["--lr", "${{inputs.lr}}", "--note", "two words"], code="/p/pipeline", compute="gpu-x",
        environment="env:abc", experiment="exp", data={"working": data_uri("models", DATA_PARTITION, "working")},
        extra_inputs={"lr": 0.01}, instance_count=3, distribution=distribution("mpi", 2), name="train_1",
    )  # fmt: skip
    assert shlex.split(job.command)[:2] == ["env", "ARCHAI_AML_DATA_WORKING=${{inputs.data_working}}"]
    assert job.command.endswith("python train.py --lr ${{inputs.lr}} --note 'two words'")
    data = job.inputs["data_working"]._data
    assert (data.type, data.path, data.mode) == (
        "uri_folder",
        "azureml://datastores/models/paths/data_blobs/working",
        "ro_mount",
    )
    assert (job.compute, job.environment, job.experiment_name, job.name) == (
        "gpu-x",
        "env:abc",
        "exp",
        "train_1",
    )
    assert job.resources.instance_count == 3
    assert (
        type(job.distribution).__name__ == "MpiDistribution"
        and job.distribution.process_count_per_instance == 2
    )
    env = job.environment_variables
    assert env["ARCHAI_AML_OUTPUTS"] == "outputs" and env["ARCHAI_AML_DATA_RAW"] == "data_blobs/raw"
    assert type(distribution("pytorch", 4)).__name__ == "PyTorchDistribution"
    with pytest.raises(ConfigError, match="mpi or pytorch"):
        distribution("horovod")  # type: ignore[arg-type]


def test_sweep_job_fields() -> None:
    base = script_job(
        "train.py", ["--lr", "${{inputs.lr}}", "--depth", "${{inputs.depth}}"], code="/p", compute="gpu-x",
        environment="env:1", experiment="exp", extra_inputs={"lr": 0.01, "depth": 2},
    )  # fmt: skip
    sweep = sweep_job(
        base, {"lr": Uniform(min_value=1e-4, max_value=1e-1), "depth": Choice([2, 4, 8])},
        primary_metric="val_iou", goal="maximize", sampling="bayesian", max_total_trials=8,
        max_concurrent_trials=4, policy=early_termination("median", evaluation_interval=1, delay_evaluation=2),
        timeout_s=3600,
    )  # fmt: skip
    # the documented SDK v2 pattern (command(...)(**space).sweep(...)): a Sweep that jobs.create_or_update
    # submits as a SweepJob
    assert type(sweep).__name__ == "Sweep" and type(sweep._to_job()).__name__ == "SweepJob"
    assert sweep.compute == "gpu-x" and sweep.experiment_name == "exp"
    assert sweep.sampling_algorithm == "bayesian"
    assert (sweep.objective.primary_metric, sweep.objective.goal) == ("val_iou", "maximize")
    assert (sweep.limits.max_total_trials, sweep.limits.max_concurrent_trials, sweep.limits.timeout) == (
        8,
        4,
        3600,
    )
    assert type(sweep.early_termination).__name__ == "MedianStoppingPolicy"
    assert sweep.early_termination.delay_evaluation == 2
    assert sweep.search_space["depth"].values == [2, 4, 8] and sweep.search_space["lr"].max_value == 0.1
    bandit = early_termination("bandit", slack_factor=0.2, evaluation_interval=1)
    assert bandit.slack_factor == 0.2
    with pytest.raises(ConfigError, match="not inputs of the job"):
        sweep_job(
            base,
            {"wd": Uniform(0, 1)},
            primary_metric="m",
            goal="minimize",
            max_total_trials=2,
            max_concurrent_trials=1,
        )
    with pytest.raises(ConfigError, match="max_concurrent_trials"):
        sweep_job(
            base,
            {"lr": Uniform(0, 1)},
            primary_metric="m",
            goal="minimize",
            max_total_trials=2,
            max_concurrent_trials=3,
        )


def test_run_on_azure_syncs_creates_compute_and_environment_runs_and_downloads(
    tmp_path: Path, azurite: Azurite
) -> None:
    project = make_project(tmp_path / "proj")
    store_config = azurite.store_config(container_name="execrun")
    ws, jobs = workspace(["Running", "Completed"])
    phases: list[tuple[str, str]] = []
    with open_store(store_config) as store:
        result = run_on_azure(
            ws.client, AML, store, store_config, project, "train.py", ["--epochs", "2"],
            compute=load_compute(project / "compute.yaml"), conda_file=project / "conda.yaml", experiment="exp",
            datasets=["working/faces"], progress=False, on_phase=lambda p, t: phases.append((p, t)),
            poll_interval_s=0, job_name="train_abc",
        )  # fmt: skip
        assert sorted(store.list_blobs(DATA_PARTITION, "working", pattern=r"^faces/")) == [
            f"faces/{i}.txt" for i in range(5)
        ]
        # a second run sends nothing and reuses compute and environment
        ws.compute.items["gpu-x"].size = "Standard_NC24ads_A100_v4"
        jobs.next_statuses = ["Completed"]
        again = run_on_azure(
            ws.client, AML, store, store_config, project, "train.py", compute=load_compute(project / "compute.yaml"),
            conda_file=project / "conda.yaml", experiment="exp", datasets=["working/faces"], progress=False,
            on_phase=lambda p, t: None, poll_interval_s=0, job_name="train_def",
        )  # fmt: skip
    assert result.status == "Completed" and result.synced[0].uploaded and again.synced[0].uploaded == []
    (cluster,) = ws.compute.created
    assert (cluster.name, cluster.size, cluster.max_instances) == ("gpu-x", "Standard_NC24ads_A100_v4", 2)
    (env,) = ws.environments.created  # the second run found the same content-hashed version
    assert env.name == "exp-env" and env.build is not None and env.image is None
    job, kwargs = jobs.submitted[0]
    assert kwargs == {"experiment_name": "exp"} and job.name == "train_abc"
    assert (job.compute, job.environment) == ("gpu-x", f"exp-env:{env.version}")
    assert Path(job.code) == project / "pipeline"
    assert job.inputs["data_working"]._data.path == "azureml://datastores/models/paths/data_blobs/working"
    assert job.command.endswith("python train.py --epochs 2")
    assert ("stream", "train_abc") in jobs.calls and ("download", "train_abc") in jobs.calls
    assert (
        project / "outputs" / "train_abc" / "artifacts" / "outputs" / "model.onnx"
    ).read_bytes() == b"onnx"
    assert [p for p, _ in phases] == ["sync", "compute", "compute", "run", "run", "run", "download"]
    assert "5 sent" in phases[0][1] and "Completed" in phases[5][1]
    assert not any(azurite.account_key in str(v) for v in job.environment_variables.values())


def test_ctrl_c_cancels_the_job_and_a_differing_compute_is_refused(tmp_path: Path) -> None:
    from azure.ai.ml.entities import AmlCompute

    project = make_project(tmp_path / "proj")
    from archai_aml.config import StoreConfig

    store_config = StoreConfig(path=tmp_path / "store")
    ws, jobs = workspace(["Running", KeyboardInterrupt()])
    with open_store(store_config) as store:
        with pytest.raises(KeyboardInterrupt):
            run_on_azure(
                ws.client, AML, store, store_config, project, "train.py", compute=ClusterConfig(name="gpu-x"),
                conda_file=project / "conda.yaml", experiment="exp", progress=False, poll_interval_s=0,
                job_name="train_x", on_phase=lambda p, t: None,
            )  # fmt: skip
        assert ("begin_cancel", "train_x") in jobs.calls and ("download", "train_x") not in jobs.calls
        other = Workspace(
            compute={"gpu-x": AmlCompute(name="gpu-x", size="Standard_D2s_v3", max_instances=4)}
        )
        with pytest.raises(ConfigError, match="gpu-x exists with other settings"):
            run_on_azure(
                other.client, AML, store, store_config, project, "train.py", compute=ClusterConfig(name="gpu-x"),
                conda_file=project / "conda.yaml", experiment="exp", progress=False,
            )  # fmt: skip
        with pytest.raises(ConfigError, match="need the azure store backend"):
            run_on_azure(
                other.client, AML, store, store_config, project, "train.py", compute=ClusterConfig(name="gpu-x"),
                conda_file=project / "conda.yaml", experiment="exp", datasets=["working/faces"],
            )  # fmt: skip
    assert other.compute.created == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: gpu-x\nmax_instances: 0\n")
    with pytest.raises(ConfigError, match="max_instances"):
        load_compute(bad)


def test_local_run_uses_the_same_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path / "proj")
    out = io.StringIO()
    result = run_local(
        project, "train.py", ["--epochs", "1"], experiment="exp", job_name="local_1", stdout=out
    )
    assert result.returncode == 0 and result.status == "Completed"
    import json

    written = json.loads((project / "outputs" / "local_1" / "result.json").read_text())
    assert written == {"files": [f"{i}.txt" for i in range(5)], "args": ["--epochs", "1"]}
    text = out.getvalue()
    assert f"from {project / 'data_blobs' / 'working' / 'faces'}" in text
    assert f"pipeline {project / 'pipeline'}" in text and (project / "outputs" / "local_1").as_uri() in text
    assert (project / "outputs" / "local_1" / "logs" / "std_log.txt").read_text() == text
    # the CLI: archai-aml run pipeline/train.py --local, project found above pipeline/
    code = cli.main(
        ["run", str(project / "pipeline" / "train.py"), "--local", "--experiment", "e", "--", "--x"]
    )
    assert code == 0
    runs = sorted(p.name for p in (project / "outputs").iterdir())
    assert len(runs) == 2 and runs[0] == "local_1"
    err = capsys.readouterr().err
    assert "[run]" in err and "[download]" in err
    (project / "pipeline" / "fail.py").write_text("import sys; sys.exit(3)\n")
    assert run_local(project, "fail.py", experiment="e", stdout=io.StringIO()).returncode == 3
    with pytest.raises(ConfigError, match="not in"):
        run_local(project, "none.py", experiment="e")
    assert sys.executable


def test_run_options_after_the_script_are_taken_out_and_the_rest_is_the_scripts() -> None:
    from archai_aml.cli import build_parser
    from archai_aml.executor.cli import split_script_args

    argv = ["run", "pipeline/t.py", "--epochs", "2", "--compute", "c.yaml", "--no-upload-datasets"]
    args = build_parser().parse_args([*argv, "--datasets", "working/a", "raw/b", "--", "--compute", "x"])
    split_script_args(args)
    assert (args.script, args.args, args.compute) == (
        "pipeline/t.py",
        ["--epochs", "2", "--compute", "x"],
        "c.yaml",
    )
    assert args.upload_datasets is False and args.datasets == ["working/a", "raw/b"] and args.local is False


# ------------------------------------------------------------------ job states, failures, cancel (issue 22)
def _run(ws: Workspace, project: Path, tmp_path: Path, phases: list[tuple[str, str]], **kwargs: Any) -> Any:
    from archai_aml.config import StoreConfig

    store_config = StoreConfig(path=tmp_path / "store")
    with open_store(store_config) as store:
        return run_on_azure(
            ws.client, AML, store, store_config, project, "train.py", compute=ClusterConfig(name="gpu-x"),
            conda_file=project / "conda.yaml", experiment="exp", progress=False, poll_interval_s=0,
            on_phase=lambda p, t: phases.append((p, t)), **kwargs,
        )  # fmt: skip


def test_not_responding_is_not_final_the_run_goes_on_to_completed(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    ws, jobs = workspace(["Running", "NotResponding", "Running", "Completed"])
    phases: list[tuple[str, str]] = []
    result = _run(ws, project, tmp_path, phases, job_name="train_nr")
    assert result.status == "Completed" and result.error is None
    texts = [t for p, t in phases if p == "run"]
    assert any(t.startswith("train_nr: NotResponding (Azure ML has no heartbeat") for t in texts)
    assert texts[-1] == "train_nr: Completed" and ("download", "train_nr") in jobs.calls


def test_paused_is_not_final_and_says_it_waits_for_someone(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    ws, jobs = workspace(["Paused", "Paused", "Running", "Completed"])
    phases: list[tuple[str, str]] = []
    result = _run(ws, project, tmp_path, phases, job_name="train_p")
    assert result.status == "Completed"
    (paused,) = [t for p, t in phases if "Paused" in t]
    assert "paused by a user" in paused and "https://ml.azure.com/runs/train_p" in paused
    assert [c for c in jobs.calls if c[0] == "get"] == [("get", "train_p")] * 4  # polled on through Paused


def test_a_failed_job_ends_in_a_typed_error_naming_it_and_its_studio_page(tmp_path: Path) -> None:
    from archai_aml.errors import JobFailedError

    project = make_project(tmp_path / "proj")
    ws, jobs = workspace(["Running", "Failed"])
    phases: list[tuple[str, str]] = []
    result = _run(ws, project, tmp_path, phases, job_name="train_f")
    assert result.status == "Failed" and isinstance(result.error, JobFailedError)
    assert result.error.job_name == "train_f" and result.error.studio_url == jobs.records["train_f"].url
    assert "Azure ML job train_f failed" in str(result.error) and "User process exited" in str(result.error)
    assert ("run", str(result.error)) in phases and (
        "download",
        "train_f",
    ) in jobs.calls  # logs still fetched


def test_ctrl_c_waits_for_the_cancel_a_bounded_time_and_says_so(tmp_path: Path) -> None:
    import time

    project = make_project(tmp_path / "proj")
    ws, jobs = workspace(["Running", KeyboardInterrupt()])
    jobs.cancel_seconds = None  # the service never confirms
    phases: list[tuple[str, str]] = []
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(ws, project, tmp_path, phases, job_name="train_h", cancel_wait_s=0.3)
    finally:
        jobs.release()
    assert 0.3 <= time.monotonic() - start < 30
    texts = [t for p, t in phases if p == "run"]
    assert "interrupted: canceling train_h (waiting up to 0.3 s for Azure ML to confirm)" in texts
    assert texts[-1].startswith(
        "train_h: cancel not confirmed after 0.3 s; it may still run: https://ml.azure"
    )
    ws, jobs = workspace(["Running", KeyboardInterrupt()])
    jobs.cancel_seconds = 0.2  # confirmed within the wait
    phases.clear()
    with pytest.raises(KeyboardInterrupt):
        _run(ws, project, tmp_path, phases, job_name="train_c", cancel_wait_s=10)
    assert phases[-1] == ("run", "train_c canceled") and jobs.status("train_c") == "Canceled"
