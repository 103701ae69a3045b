"""AzureMLJobRunner on a real MLClient whose ``jobs`` operations are replaced by a recording object."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr

from archai_aml.config import AzureMLConfig, ClusterConfig, EnvironmentConfig, StoreConfig, WorkspaceConfig
from archai_aml.errors import JobError
from archai_aml.pipelines import start_training_pipeline
from archai_aml.pipelines.azureml import AzureMLJobRunner, azure_credential, inside_azureml_job
from archai_aml.store import open_store
from tests.pipeline_helpers import make_config, make_models


class RecordingJobs:
    """Stands in for ``MLClient.jobs`` only: records calls, answers like the service would."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.fail = fail
        self.status = "Running"

    def create_or_update(self, job: Any, **kwargs: Any) -> Any:
        self.calls.append(("create_or_update", job, kwargs))
        if self.fail:
            raise RuntimeError("ComputeNotFound: gpu-cluster")
        return job

    def get(self, name: str) -> Any:
        self.calls.append(("get", name, {}))
        return SimpleNamespace(name=name, status=self.status, studio_url=f"https://ml.azure.com/runs/{name}")

    def list(self, parent_job_name: str | None = None) -> list[Any]:
        self.calls.append(("list", parent_job_name, {}))
        return [SimpleNamespace(name="child1", display_name="id_m000", status="Completed")]

    def begin_cancel(self, name: str) -> Any:
        self.calls.append(("begin_cancel", name, {}))
        return SimpleNamespace(result=lambda: None)


class NeverUsedCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("the tests must not reach Azure")


def aml_config() -> AzureMLConfig:
    return AzureMLConfig(
        workspace=WorkspaceConfig(subscription_id="sub", resource_group="rg", workspace_name="ws"),
        training_cluster=ClusterConfig(name="gpu-a100"),
        environment=EnvironmentConfig(name="archai-env", version="7"),
        identity_client_id="11111111-2222-3333-4444-555555555555",
    )


def runner_with(jobs: RecordingJobs) -> AzureMLJobRunner:
    runner = AzureMLJobRunner.from_config(aml_config(), credential=NeverUsedCredential())
    assert type(runner.ml_client).__name__ == "MLClient"
    runner.ml_client._jobs = jobs  # MLClient.jobs is a read-only property over _jobs
    return runner


def test_submission_is_what_azure_ml_needs(tmp_path: Path) -> None:
    account = StoreConfig(backend="azure", account_name="acct", sas_token=SecretStr("sv=1&sig=SECRETSIG1234"))
    cfg = make_config(tmp_path, account)
    cfg.aml = aml_config()
    jobs = RecordingJobs()
    runner = runner_with(jobs)
    with open_store(StoreConfig(path=tmp_path / "s")) as store:
        job, ids = start_training_pipeline(
            "desc", runner, store, make_models(2), cfg, 4, tmp_path, store_config=account
        )
        assert store.get("exp", "id_m001")["pipeline_id"] == job.name  # type: ignore[index]
    kind, submitted, kwargs = jobs.calls[0]
    assert kind == "create_or_update" and kwargs == {"experiment_name": "exp"}
    assert submitted.display_name == submitted.name == job.name and submitted.name.startswith("train_exp_")
    assert submitted.settings.continue_on_step_failure is True
    for model_id in ids:
        node = submitted.jobs[model_id]
        assert node.compute == "gpu-a100" and node.environment == "archai-env:7"
        assert node.outputs["output"].path == f"azureml://datastores/models/paths/exp/{model_id}"
        assert type(node.identity).__name__ == "ManagedIdentityConfiguration"
        assert node.identity.client_id == "11111111-2222-3333-4444-555555555555"
        assert node.environment_variables["ARCHAI_AML_STORE_BLOB_URL"] == "https://acct.blob.core.windows.net"
    text = io.StringIO()
    submitted.dump(text)
    assert "SECRETSIG1234" not in text.getvalue() and "sig=" not in text.getvalue()
    assert runner.studio_url(job.name) == f"https://ml.azure.com/runs/{job.name}"


def test_status_nodes_cancel_delegate_to_ml_client() -> None:
    jobs = RecordingJobs()
    runner = runner_with(jobs)
    jobs.status = "Failed"
    assert runner.status("p1") == "Failed"
    assert runner.node_statuses("p1") == {"id_m000": "Completed"}
    runner.cancel("p1")
    assert [c[0] for c in jobs.calls] == ["get", "list", "begin_cancel"]
    assert jobs.calls[1][1] == "p1" and jobs.calls[2][1] == "p1"


def test_refused_submission_is_a_job_error_and_rows_say_so(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, StoreConfig(path=tmp_path / "s"))
    cfg.aml = aml_config()
    runner = runner_with(RecordingJobs(fail=True))
    with open_store(cfg.store) as store:
        with pytest.raises(JobError, match="ComputeNotFound"):
            start_training_pipeline("d", runner, store, make_models(1), cfg, 1, tmp_path)
        row = store.get("exp", "id_m000")
    assert row is not None and row["status"] == "failed to start" and "ComputeNotFound" in row["error"]


def test_credential_choice() -> None:
    inside = {"AZUREML_RUN_ID": "run1", "OBO_ENDPOINT": "http://127.0.0.1:1/obo"}
    assert inside_azureml_job(inside) and not inside_azureml_job({"AZUREML_RUN_ID": "r"})
    assert type(azure_credential(env=inside)).__name__ == "AzureMLOnBehalfOfCredential"
    assert type(azure_credential(env={})).__name__ == "DefaultAzureCredential"
    assert type(azure_credential("cid", env={})).__name__ == "DefaultAzureCredential"
