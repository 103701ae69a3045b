"""The Azure ML runner job: what is submitted to a real MLClient (its operations are autospecs of the real
operation classes answering like the service, archai_aml.testing.mlclient): compute, instance count, one
process per node, the command, the store environment without secrets (checked in the job's YAML dump)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from pydantic import SecretStr

from archai_aml.config import load_config
from archai_aml.errors import ConfigError
from archai_aml.runner.azureml import submit_runner_job
from archai_aml.testing.mlclient import FakeJobs, FakeWorkspace

ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LWZvci10ZXN0cw=="


def config(**store: Any) -> Any:
    return load_config(
        {
            "experiment_name": "facesyn",
            "store": store
            or {
                "backend": "azure",
                "account_name": "acct",
                "table_name": "status",
                "container_name": "models",
            },
            "aml": {
                "workspace": {"subscription_id": "sub", "resource_group": "rg", "workspace_name": "ws"},
                "cpu_cluster": {"name": "cpu-cluster", "max_instances": 8},
                "environment": {"name": "archai-aml", "version": "3"},
                "identity_client_id": "11111111-2222-3333-4444-555555555555",
            },
            "target": {"f1_onnx_images": 500, "f1_1k_images": 100, "f1_10k_images": 1000},
        }
    )


@pytest.fixture
def client() -> tuple[Any, FakeJobs]:
    ws = FakeWorkspace()
    return ws.client, ws.jobs


def test_submits_n_device_less_runners_on_the_cpu_cluster(client: tuple[Any, FakeJobs]) -> None:
    ml, jobs = client
    cfg = config()
    answer = submit_runner_job(cfg, instances=4, ml_client=ml)
    (job, kwargs) = jobs.submitted[0]
    assert (
        answer is not job and answer.studio_url == jobs.records[answer.name].url
    )  # the service's new object
    assert kwargs == {"experiment_name": "facesyn"}
    assert job.compute == "cpu-cluster"
    assert job.resources.instance_count == 4
    assert job.distribution.process_count_per_instance == 1
    assert job.environment == "archai-aml:3"
    argv = shlex.split(job.command)
    assert argv[:4] == ["archai-aml", "runner", "--target", "cpu"]
    assert "--no-device-work" in argv and argv[argv.index("--experiment") + 1] == "facesyn"
    assert argv[argv.index("--f1-sizes") + 1] == "500,100,1000"
    env = job.environment_variables
    assert env["ARCHAI_AML_STORE_TABLE_URL"] == "https://acct.table.core.windows.net"
    assert env["ARCHAI_AML_STORE_BLOB_URL"] == "https://acct.blob.core.windows.net"
    assert env["ARCHAI_AML_STORE_CLIENT_ID"] == "11111111-2222-3333-4444-555555555555"
    assert job.identity.client_id == "11111111-2222-3333-4444-555555555555"


def test_no_secret_reaches_the_job_definition(client: tuple[Any, FakeJobs]) -> None:
    ml, jobs = client
    cfg = config(
        backend="azure",
        account_name="acct",
        connection_string=f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY}",
        sas_token="sv=2024&sig=abcdef",
    )
    assert isinstance(cfg.store.connection_string, SecretStr)
    submit_runner_job(cfg, instances=2, ml_client=ml)
    dump = jobs.submitted[0][0]._to_yaml()  # what azure-ai-ml sends and `az ml job show` prints
    assert "ARCHAI_AML_STORE_TABLE_URL" in dump
    for secret in (ACCOUNT_KEY, "AccountKey", "sig=abcdef"):
        assert secret not in dump


def test_refuses_what_cannot_work(client: tuple[Any, FakeJobs]) -> None:
    ml, jobs = client
    only_conn = config(backend="azure", connection_string=f"AccountName=a;AccountKey={ACCOUNT_KEY}")
    with pytest.raises(ConfigError, match="connection string"):
        submit_runner_job(only_conn, instances=1, ml_client=ml)
    with pytest.raises(ConfigError, match="max_instances"):
        submit_runner_job(config(), instances=9, ml_client=ml)
    with pytest.raises(ConfigError, match="azure store"):
        submit_runner_job(config(backend="embedded"), instances=1, ml_client=ml)
    assert jobs.submitted == []
