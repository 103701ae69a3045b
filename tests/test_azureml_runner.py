"""AzureMLJobRunner on a real MLClient whose operations are autospecs of the real operation classes answering like
the service (archai_aml.testing.mlclient: new job objects, JobStatus enums, LROPollers, JobException streams)."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from archai_aml.config import AzureMLConfig, ClusterConfig, EnvironmentConfig, StoreConfig, WorkspaceConfig
from archai_aml.errors import ConfigError, JobError, JobFailedError
from archai_aml.pipelines import build_training_pipeline, start_training_pipeline
from archai_aml.pipelines.azureml import AzureMLJobRunner, azure_credential, inside_azureml_job
from archai_aml.pipelines.training import check_model_ids, model_id_for
from archai_aml.store import open_store
from archai_aml.testing.mlclient import FakeWorkspace, NeverUsedCredential
from tests.pipeline_helpers import make_config, make_models


def aml_config() -> AzureMLConfig:
    return AzureMLConfig(
        workspace=WorkspaceConfig(subscription_id="sub", resource_group="rg", workspace_name="ws"),
        training_cluster=ClusterConfig(name="gpu-a100"),
        environment=EnvironmentConfig(name="archai-env", version="7"),
        identity_client_id="11111111-2222-3333-4444-555555555555",
    )


def runner_and_workspace(**kwargs: Any) -> tuple[AzureMLJobRunner, FakeWorkspace]:
    runner = AzureMLJobRunner.from_config(aml_config(), credential=NeverUsedCredential())
    assert type(runner.ml_client).__name__ == "MLClient"
    ws = FakeWorkspace(runner.ml_client)  # the runner's own MLClient, faked at its operations
    for key, value in kwargs.items():
        setattr(runner, key, value)
    return runner, ws


def test_submission_is_what_azure_ml_needs(tmp_path: Path) -> None:
    account = StoreConfig(backend="azure", account_name="acct", sas_token=SecretStr("sv=1&sig=SECRETSIG1234"))
    cfg = make_config(tmp_path, account)
    cfg.aml = aml_config()
    runner, ws = runner_and_workspace()
    with open_store(StoreConfig(path=tmp_path / "s")) as store:
        job, ids = start_training_pipeline(
            "desc", runner, store, make_models(2), cfg, 4, tmp_path, store_config=account
        )
        assert store.get("exp", "id_m001")["pipeline_id"] == job.name  # type: ignore[index]
    ((submitted, kwargs),) = ws.jobs.submitted
    assert kwargs == {"experiment_name": "exp"}
    assert job is not submitted  # the service's answer is a new object
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
    assert runner.studio_url(job.name) == job.studio_url == ws.jobs.records[job.name].url
    assert job.studio_url.startswith(f"https://ml.azure.com/runs/{job.name}?wsid=/subscriptions/sub/")


def _submitted_pipeline(tmp_path: Path, runner: AzureMLJobRunner, ids: list[str]) -> str:
    cfg = make_config(tmp_path, StoreConfig(backend="azure", account_name="acct"))
    cfg.aml = aml_config()
    job = build_training_pipeline("d", cfg, cfg.store, ids, 1, "train_exp_b1")
    return str(runner.submit(job, experiment_name="exp").name)


def test_status_nodes_cancel_read_the_service_words(tmp_path: Path) -> None:
    runner, ws = runner_and_workspace()
    name = _submitted_pipeline(tmp_path, runner, ["id_m000", "id_m001"])
    ws.jobs.script(name, ["Running", "NotResponding", "Failed"])
    ws.jobs.script(f"{name}_id_m001", ["Failed"])
    # the SDK's job objects carry JobStatus enums, whose str() is "JobStatus.FAILED": the runner says "Failed"
    assert [runner.status(name) for _ in range(3)] == ["Running", "NotResponding", "Failed"]
    assert runner.node_statuses(name) == {"id_m000": "Completed", "id_m001": "Failed"}
    runner.cancel(name)
    assert [c for c in ws.jobs.calls if c[0] == "begin_cancel"] == [("begin_cancel", name)]


def test_cancel_waits_a_bounded_time_and_says_when_azure_ml_did_not_confirm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner, ws = runner_and_workspace(cancel_wait_s=0.3)
    name = _submitted_pipeline(tmp_path, runner, ["id_m000"])
    ws.jobs.cancel_seconds = None  # never confirmed
    start = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING):
            runner.cancel(name)
    finally:
        ws.jobs.release()
    assert 0.3 <= time.monotonic() - start < 30
    assert f"asked Azure ML to cancel {name}; not confirmed after 0.3 s" in caplog.text
    assert ws.jobs.records[name].url in caplog.text
    ws.jobs.cancel_seconds = 0.1
    caplog.clear()
    with caplog.at_level(logging.INFO):
        runner.cancel(name)
    assert f"canceled Azure ML pipeline {name}" in caplog.text


def test_a_failed_stream_ends_in_a_typed_error_with_the_studio_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from azure.ai.ml.exceptions import ErrorCategory, ErrorTarget, JobException

    runner, ws = runner_and_workspace()
    name = _submitted_pipeline(tmp_path, runner, ["id_m000"])
    ws.jobs.script(name, ["Running", "Completed"])
    runner.stream(name)  # a completed job's stream just ends
    assert f"RunId: {name}" in capsys.readouterr().out
    ws.jobs.script(name, ["Running", "Failed"])
    with pytest.raises(JobFailedError) as caught:
        runner.stream(name)
    assert caught.value.job_name == name and caught.value.studio_url == ws.jobs.records[name].url
    assert f"Azure ML job {name} failed" in str(caught.value) and ws.jobs.records[name].url in str(
        caught.value
    )
    assert isinstance(caught.value, JobError) and isinstance(caught.value.__cause__, JobException)

    def interrupted(job_name: str) -> None:
        # stream_logs_until_completion's `except KeyboardInterrupt`: a JobException raised from it
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            message = "The output streaming for the run interrupted.\nBut the run is still executing"
            raise JobException(
                message=message, target=ErrorTarget.JOB, no_personal_data_message=message,
                error_category=ErrorCategory.USER_ERROR,
            ) from exc  # fmt: skip

    runner.ml_client.jobs.stream.side_effect = interrupted
    with pytest.raises(KeyboardInterrupt):
        runner.stream(name)


def test_refused_submission_is_a_job_error_and_rows_say_so(tmp_path: Path) -> None:
    from azure.core.exceptions import HttpResponseError

    cfg = make_config(tmp_path, StoreConfig(path=tmp_path / "s"))
    cfg.aml = aml_config()
    runner, ws = runner_and_workspace()
    ws.jobs.refuse = HttpResponseError("ComputeNotFound: gpu-cluster")
    with open_store(cfg.store) as store:
        with pytest.raises(JobError, match="ComputeNotFound"):
            start_training_pipeline("d", runner, store, make_models(1), cfg, 1, tmp_path)
        row = store.get("exp", "id_m000")
    assert row is not None and row["status"] == "failed to start" and "ComputeNotFound" in row["error"]


def test_model_ids_are_lower_case_so_node_names_are_the_ids(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from archai.discrete_search.api.archai_model import ArchaiModel

    models = make_models(2)
    upper, lower = (
        ArchaiModel(arch=m.arch, archid=a, metadata=m.metadata)
        for m, a in zip(models, ("M0ABC", "m0abc"), strict=True)
    )
    assert model_id_for(lower) == "id_m0abc" and model_id_for(upper).startswith("id_m0abc_")
    cfg = make_config(tmp_path, StoreConfig(path=tmp_path / "s"))
    cfg.aml = aml_config()
    runner, ws = runner_and_workspace()
    with open_store(cfg.store) as store, caplog.at_level(logging.WARNING):
        job, ids = start_training_pipeline("d", runner, store, [upper, lower], cfg, 1, tmp_path)
        assert [store.get("exp", i)["archid"] for i in ids] == ["M0ABC", "m0abc"]  # type: ignore[index]
    ((submitted, _),) = ws.jobs.submitted
    assert sorted(submitted.jobs) == sorted(ids) and len(set(ids)) == 2 and all(i == i.lower() for i in ids)
    assert "to lower case" not in caplog.text  # the SDK renamed nothing
    assert sorted(job.jobs) == sorted(ids)  # and the service's answer has the same node names
    for bad in (["id_ABC"], ["id_a", "id_a"]):
        with pytest.raises(ConfigError, match="model id 'id_"):
            check_model_ids(bad)


def test_credential_choice() -> None:
    inside = {"AZUREML_RUN_ID": "run1", "OBO_ENDPOINT": "http://127.0.0.1:1/obo"}
    assert inside_azureml_job(inside) and not inside_azureml_job({"AZUREML_RUN_ID": "r"})
    assert type(azure_credential(env=inside)).__name__ == "AzureMLOnBehalfOfCredential"
    assert type(azure_credential(env={})).__name__ == "DefaultAzureCredential"
    assert type(azure_credential("cid", env={})).__name__ == "DefaultAzureCredential"
