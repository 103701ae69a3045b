"""The training-side job helper against a real store: training -> complete / failed, CAS, MLflow, env."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest

from archai_aml.config import StoreConfig
from archai_aml.errors import ConfigError
from archai_aml.store import Store, job_environment
from archai_aml.training import TrainingJob, error_text

EXP = "exp1"


def test_rows_go_training_then_complete_with_metrics(store: Store) -> None:
    store.create(EXP, "m1", {"status": "preparing", "batch": "b1", "epochs": 0.5})
    job = TrainingJob(store, EXP, "m1", job_id="job-7", pipeline_id="pipe-3", batch="b1", use_mlflow=False)
    with job:
        row = store.get(EXP, "m1")
        assert row is not None
        assert row["status"] == "training"
        assert (row["job_id"], row["pipeline_id"]) == ("job-7", "pipe-3")
        assert row["node"] and isinstance(row["training_start"], datetime)
        job.report({"val_iou": 0.25, "train_loss": 1.5})
        mid = store.get(EXP, "m1")
        assert mid is not None and mid["val_iou"] == 0.25 and mid["status"] == "training"
        job.report({"val_iou": 0.5})
    row = store.get(EXP, "m1")
    assert row is not None
    assert row["status"] == "complete"
    assert row["val_iou"] == 0.5 and row["train_loss"] == 1.5
    assert isinstance(row["training_time"], float) and row["training_time"] > 0
    assert row["epochs"] == 0.5 and row["batch"] == "b1"  # columns the pipeline wrote are kept
    assert "error" not in row
    assert job.status == "complete"


def test_exception_marks_failed_with_error_and_propagates(store: Store) -> None:
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        with TrainingJob(store, EXP, "m2", use_mlflow=False):
            raise RuntimeError("CUDA out of memory")
    row = store.get(EXP, "m2")
    assert row is not None
    assert row["status"] == "failed"
    assert row["error"] == "RuntimeError: CUDA out of memory"
    assert row["training_time"] >= 0


def test_error_text_is_truncated() -> None:
    text = error_text(ValueError("x" * 10_000), limit=200)
    assert len(text) == 200 and text.startswith("ValueError: xxx") and text.endswith("(truncated)")


def test_a_newer_batch_is_not_overwritten(store: Store) -> None:
    """A late job of an old batch must not clobber the row a newer batch owns."""
    store.create(EXP, "m3", {"status": "training", "batch": "new", "job_id": "new-job"})
    job = TrainingJob(store, EXP, "m3", job_id="old-job", batch="old", use_mlflow=False)
    with job:
        job.report({"val_iou": 0.9})
    row = store.get(EXP, "m3")
    assert row is not None
    assert (row["status"], row["job_id"], row["batch"]) == ("training", "new-job", "new")
    assert "val_iou" not in row
    assert job.superseded


def test_concurrent_reports_keep_every_column(store: Store) -> None:
    job = TrainingJob(store, EXP, "m4", use_mlflow=False)
    with job:

        def report(i: int) -> None:
            job.report({f"metric_{i}": float(i)})

        threads = [threading.Thread(target=report, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    row = store.get(EXP, "m4")
    assert row is not None and row["status"] == "complete"
    assert all(row[f"metric_{i}"] == float(i) for i in range(6))


def test_from_env_opens_the_store_and_downloads_the_arch(tmp_path: Path) -> None:
    config = StoreConfig(backend="embedded", path=tmp_path / "store", table_name="jobenv")
    env = {
        **job_environment(config),
        "AZUREML_RUN_ID": "run-1",
        "AZUREML_ROOT_RUN_ID": "root-1",
        "ARCHAI_AML_EXPERIMENT": EXP,
        "ARCHAI_AML_MODEL_ID": "m5",
    }
    job = TrainingJob.from_env(env=env, use_mlflow=False)
    assert (job.experiment, job.model_id, job.metric_key, job.job_id, job.pipeline_id) == (
        EXP,
        "m5",
        "val_iou",
        "run-1",
        "root-1",
    )
    job.store.upload_bytes(EXP, "m5", "m5.json", b'{"depth": 2}')
    with job:
        path = job.download_arch(tmp_path / "work")
        assert path.read_bytes() == b'{"depth": 2}'
        with pytest.raises(ConfigError, match="no blob"):
            job.download_arch(tmp_path / "work", "absent.json")
        job.report({"val_iou": 0.1})
    from archai_aml.store import open_store

    with open_store(config) as store:
        row = store.get(EXP, "m5")
    assert row is not None and row["status"] == "complete" and row["job_id"] == "run-1"


def test_from_env_without_a_store_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="ARCHAI_AML_STORE"):
        TrainingJob.from_env(experiment=EXP, model_id="m", env={})
    with pytest.raises(ConfigError, match="model id"):
        TrainingJob.from_env(experiment=EXP, env={"ARCHAI_AML_STORE": "/tmp/x"})


def test_mlflow_logs_params_and_metrics_locally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_RUN_ID", "a-remote-run-id-that-does-not-exist-locally")
    config = StoreConfig(backend="embedded", path=tmp_path / "store", table_name="mlf")
    from archai_aml.store import open_store

    with open_store(config) as store:
        job = TrainingJob(store, EXP, "m6", job_id="j", output_dir=tmp_path / "out")
        with job:
            job.log_params({"lr": 0.01})
            job.report({"val_iou": 0.75})
        assert job._mlflow is not None and job._mlflow.run_id
        run_id = job._mlflow.run_id
        row = store.get(EXP, "m6")
    assert row is not None and row["status"] == "complete"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tmp_path / "out" / "mlruns").resolve().as_uri())
    run = client.get_run(run_id)
    assert run.data.metrics["val_iou"] == 0.75
    assert run.data.metrics["training_time"] == pytest.approx(row["training_time"])
    assert run.data.params["lr"] == "0.01" and run.data.params["model_id"] == "m6"
    assert run.info.status == "FINISHED"


def test_sigterm_marks_the_row_failed(tmp_path: Path) -> None:
    """A cancelled job (SIGTERM, as the local executor and Azure ML send) leaves a failed row, not `training`."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from archai_aml.store import open_store

    config = StoreConfig(backend="embedded", path=tmp_path / "store", table_name="sigterm")
    script = (
        "import time\n"
        "from archai_aml.training import TrainingJob\n"
        "with TrainingJob.from_env(experiment='exp1', model_id='m7', use_mlflow=False):\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, **job_environment(config), "AZUREML_RUN_ID": "run-7"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    try:
        with open_store(config) as store:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                row = store.get(EXP, "m7")
                if row is not None and row.get("status") == "training":
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the job never marked its row training")
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=30)
            row = store.get(EXP, "m7")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert row is not None and row["status"] == "failed"
    assert row["error"].startswith("JobTerminatedError: job run-7 received SIGTERM")
    assert "JobTerminatedError" in stderr


@pytest.mark.parametrize(
    "metric", ["PartitionKey", "RowKey", "Timestamp", "etag", "name", "_version", "bad name"]
)
def test_a_metric_the_store_cannot_hold_is_refused_before_anything_is_written(
    store: Store, metric: str
) -> None:
    from archai_aml.errors import InvalidNameError

    store.create("secret", "s1", {"owner": "other"})
    with TrainingJob(store, EXP, "m9", use_mlflow=False) as job:
        before = store.get(EXP, "m9")
        with pytest.raises(InvalidNameError, match=repr(metric).replace("$", r"\$")):
            job.report({"val_iou": 0.5, metric: "secret"})
        assert store.get(EXP, "m9") == before  # not even the good metric of that call
        assert job.metrics == {}
        job.report({"val_iou": 0.5})
    got = store.get("secret", "s1")
    assert got is not None and got["owner"] == "other"
    # a reserved metric key is refused when the job is made, before any training time is spent
    with pytest.raises(InvalidNameError, match="RowKey"):
        TrainingJob(store, EXP, "m10", metric_key="RowKey", use_mlflow=False)
    assert store.get(EXP, "m10") is None
