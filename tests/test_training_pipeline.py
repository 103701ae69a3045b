"""start_training_pipeline: rows, ArchConfig blobs, pending.json, a real azure-ai-ml pipeline, no secrets."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from archai_aml.config import AzureMLConfig, StoreConfig, WorkspaceConfig
from archai_aml.errors import JobError
from archai_aml.pipelines import COMPLETED, LocalJobRunner, build_training_pipeline, start_training_pipeline
from archai_aml.pipelines.training import fill_placeholders, model_id_for
from archai_aml.store import Store
from archai_aml.workspace.environment import prepare_environment
from tests.pipeline_helpers import expected_metric, make_config, make_models

ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONN = (
    "DefaultEndpointsProtocol=https;AccountName=acct;"
    f"AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
)
SAS = "sv=2022-11-02&ss=bt&srt=sco&sp=rwdlacu&se=2030-01-01T00:00:00Z&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789%3D"


def dump(pipeline_job) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    pipeline_job.dump(out)
    return out.getvalue()


def test_placeholders_fill_known_names_only() -> None:
    cmd = "python t.py --data ${{inputs.data}} --id {model_id} --e {epochs} --keep {other} {{model_id}}"
    out = fill_placeholders(cmd, {"model_id": "id_x", "epochs": "2"})
    assert out == "python t.py --data ${{inputs.data}} --id id_x --e 2 --keep {other} {{model_id}}"


def test_model_ids_are_valid_azure_ml_names() -> None:
    assert model_id_for("113c4c") == "id_113c4c"
    odd = model_id_for("L=3, H=8/x")
    assert odd.startswith("id_l_3__h_8_x_") and all(c.islower() or c.isdigit() or c == "_" for c in odd)
    assert model_id_for("L=3, H=8/x") != model_id_for("L=3, H=8?x")


def test_pipeline_structure_on_azure_ml(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path, StoreConfig(backend="azure", account_name="acct", managed_identity_client_id="cid")
    )
    cfg.aml = AzureMLConfig(
        workspace=WorkspaceConfig(subscription_id="s", resource_group="g", workspace_name="w")
    )
    job = build_training_pipeline("desc", cfg, cfg.store, ["id_a", "id_b"], 3, "train_exp_1")
    assert job.name == "train_exp_1" and job.settings.continue_on_step_failure is True
    assert sorted(job.jobs) == ["id_a", "id_b"]
    node = job.jobs["id_b"]
    assert node.compute == "gpu-cluster"
    # the content-hashed version workspace setup creates (a wheel of this checkout in its build context)
    version = prepare_environment(cfg.aml.environment).version
    assert node.environment == f"archai-aml:{version}" and len(version) == 16
    assert all(n.environment == node.environment for n in job.jobs.values())
    assert node.code == str(cfg.training.code_dir.resolve())
    assert node.command.endswith("--model-id id_b --epochs 3") and "${{inputs.data}}" in node.command
    assert node.outputs["output"].path == "azureml://datastores/models/paths/exp/id_b"
    assert job.inputs["data"]._data.type == "uri_folder" and job.inputs["data"].mode == "download"
    env = node.environment_variables
    assert env["ARCHAI_AML_STORE_TABLE_URL"] == "https://acct.table.core.windows.net"
    assert env["ARCHAI_AML_STORE_CLIENT_ID"] == "cid"
    assert env["ARCHAI_AML_MODEL_ID"] == "id_b" and env["ARCHAI_AML_BATCH"] == "train_exp_1"
    assert type(node.identity).__name__ == "UserIdentityConfiguration"


@pytest.mark.parametrize(
    "secret_config",
    [
        StoreConfig(backend="azure", connection_string=SecretStr(CONN)),
        StoreConfig(backend="azure", account_name="acct", sas_token=SecretStr(SAS)),
    ],
    ids=["connection-string", "sas-token"],
)
def test_no_secret_in_pipeline_yaml(tmp_path: Path, secret_config: StoreConfig) -> None:
    cfg = make_config(tmp_path, secret_config)
    text = dump(build_training_pipeline("d", cfg, secret_config, ["id_a"], 1, "b1"))
    assert "id_a" in text and "ARCHAI_AML_STORE_TABLE" in text
    for secret in (ACCOUNT_KEY, CONN, SAS, "sig=", "AccountKey", "SharedAccessSignature"):
        assert secret not in text


def test_secret_in_user_env_is_refused(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path, StoreConfig(backend="azure", connection_string=SecretStr(CONN)), env={"K": ACCOUNT_KEY}
    )
    with pytest.raises(Exception, match="holds a store secret"):
        build_training_pipeline("d", cfg, cfg.store, ["id_a"], 1, "b1")


def test_start_training_pipeline_runs_locally(
    tmp_path: Path, store: Store, store_config: StoreConfig
) -> None:
    cfg = make_config(tmp_path, store_config)
    runner = LocalJobRunner.from_config(cfg, store_config)
    models = make_models(3)
    job, ids = start_training_pipeline("d", runner, store, models, cfg, 2, tmp_path / "out")
    assert ids == ["id_m000", "id_m001", "id_m002"]
    # no secret in what was submitted, whatever the backend
    text = dump(job)
    secret = getattr(store_config, "connection_string", None)  # the azure backend's field only
    if secret is not None:
        assert secret.get_secret_value() not in text
        assert "AccountKey" not in text
    pending = json.loads((tmp_path / "out" / "pending.json").read_text())
    assert [m["id"] for m in pending["models"]] == ids and pending["batch"] == job.name
    assert runner.wait(job.name, timeout=60) == COMPLETED
    for arch, model_id in zip(models, ids, strict=True):
        row = store.get("exp", model_id)
        assert row is not None
        assert row["status"] == "complete" and row["batch"] == job.name and row["epochs"] == 2.0
        assert row["val_iou"] == pytest.approx(expected_metric(model_id))
        assert row["job_id"] == f"{job.name}_{model_id}" and row["pipeline_id"] == job.name
        blob = json.loads(store.download_bytes("exp", model_id, f"{model_id}.json"))
        assert blob == arch.metadata["config"].to_dict()
        # the job saw the same ArchConfig, and its output went to the mapped datastore folder
        out = cfg.training.local_root / "datastores" / "models" / "exp" / model_id
        assert json.loads((out / "arch_seen.json").read_text()) == blob


def test_rows_start_as_preparing_and_submission_failure_marks_them(tmp_path: Path, store: Store) -> None:
    cfg = make_config(tmp_path, store.config or StoreConfig(), command="exit 0")
    runner = LocalJobRunner.from_config(cfg)
    models = make_models(2)
    start_training_pipeline("d", runner, store, models, cfg, 1, tmp_path, batch_id="b_same")
    with pytest.raises(JobError, match="already submitted"):
        start_training_pipeline("d", runner, store, models, cfg, 1, tmp_path, batch_id="b_same")
    row = store.get("exp", "id_m000")
    assert row is not None and row["status"] == "failed to start" and "already submitted" in row["error"]
