"""examples/face_segmentation/aml.py on a real MLClient whose operations are autospecs of the real operation
classes answering like the service (archai_aml.testing.mlclient): the workspace set up, the configuration the
job reads (secrets as ${VAR} names), the submitted pipeline node by node, no secret in its YAML."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from archai_aml.config import load_config
from archai_aml.errors import ConfigError
from archai_aml.launcher import config_for_job, secret_fields
from archai_aml.testing.mlclient import FakeWorkspace as Workspace
from tests.test_workspace import ACCOUNT_KEY, write_conda

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "face_segmentation"
sys.path.insert(0, str(EXAMPLE))

import aml  # noqa: E402

CONNECTION = f"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"


def write_config(tmp_path: Path, store: str | None = None) -> Path:
    store = store or (
        "  backend: azure\n  account_name: acct1\n  connection_string: ${MODEL_STORAGE_CONNECTION_STRING}\n"
    )
    path = tmp_path / "faces.yaml"
    path.write_text(
        f"""experiment_name: faces
store:
{store}aml:
  workspace: {{subscription_id: "${{AZ_SUB}}", resource_group: rg, workspace_name: ws}}
  training_cluster: {{name: gpu-a100}}
  cpu_cluster: {{name: cpu-d4, size: Standard_D4s_v3, max_instances: 2}}
  environment: {{name: archai-env, version: "3", image: "img:1", conda_file: {write_conda(tmp_path)}}}
  identity_client_id: {CLIENT_ID}
training:
  code_dir: ${{ARCHAI_AML_EXAMPLE_DIR}}
  data: data
  epochs: 1
search:
  local_runners: 2
"""
    )
    return path


def launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, config: Path | None = None, ws: Any = None
) -> Any:
    monkeypatch.setenv("MODEL_STORAGE_CONNECTION_STRING", CONNECTION)
    monkeypatch.setenv("AZ_SUB", "sub-123")
    monkeypatch.setenv("ARCHAI_AML_OUTPUT", str(tmp_path / "out"))  # restored after the test
    monkeypatch.setenv("ARCHAI_AML_EXAMPLE_DIR", str(EXAMPLE))
    ws = ws or Workspace()
    jobs = ws.jobs
    argv = ["--config", str(config or write_config(tmp_path)), "--output", str(tmp_path / "out"), *args]
    rc = aml.main(argv, ml_client=ws.client)
    return rc, ws, jobs


def test_secret_fields_are_found_in_the_models() -> None:
    assert set(secret_fields()) == {("store", "connection_string"), ("store", "sas_token")}


def test_search_pipeline_node_by_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    rc, ws, jobs = launch(tmp_path, monkeypatch)
    assert rc == 0
    # the workspace was set up: both clusters, the environment and the two datastores created
    assert {type(e).__name__ for e in ws.creates()} >= {"AmlCompute", "Environment", "AzureBlobDatastore"}
    ((job, kwargs),) = jobs.submitted
    assert kwargs == {"experiment_name": "faces"} and job.experiment_name == "faces"
    assert list(job.jobs) == ["prepare_data", "search"]
    assert job.settings.continue_on_step_failure is False
    prep, search = job.jobs["prepare_data"], job.jobs["search"]
    data_uri = "azureml://datastores/datasets/paths/faces/prepared"
    assert (
        prep.outputs["data"].path == data_uri and "prepare_data.py --output ${{outputs.data}}" in prep.command
    )
    assert "search.py --config ${{inputs.config}}" in search.command
    for node in (prep, search):
        assert node.compute == "cpu-d4" and node.environment == "archai-env:3"
        assert (
            type(node.identity).__name__ == "ManagedIdentityConfiguration"
            and node.identity.client_id == CLIENT_ID
        )
        assert (
            node.environment_variables["ARCHAI_AML_STORE_TABLE_URL"] == "https://acct1.table.core.windows.net"
        )
        assert Path(str(node.code)).resolve() == EXAMPLE
    job_config = tmp_path / "out" / "aml" / "search.yaml"
    assert Path(search.inputs["config"]._data.path) == job_config  # the parent's input, bound to the node
    text = io.StringIO()
    job.dump(text)
    dumped = text.getvalue()
    assert "${{parent.jobs.prepare_data.outputs.data}}" in dumped  # the search waits for the prepared data
    assert ACCOUNT_KEY not in dumped and "AccountKey" not in dumped and CONNECTION not in dumped
    # the configuration the job reads: the secret as its ${VAR} name, the rest resolved, pointed at the job
    uploaded = job_config.read_text()
    assert ACCOUNT_KEY not in uploaded and "${MODEL_STORAGE_CONNECTION_STRING:-}" in uploaded
    raw = yaml.safe_load(uploaded)
    assert raw["aml"]["workspace"]["subscription_id"] == "sub-123"
    assert raw["training"]["data"] == data_uri and raw["search"]["local_runners"] == 0
    assert raw["training"]["code_dir"] == "${ARCHAI_AML_EXAMPLE_DIR}"
    in_job = load_config(raw, env={"ARCHAI_AML_EXAMPLE_DIR": "/job/code"})  # the job has no secret
    assert in_job.store.connection_string is None and in_job.store.account_name == "acct1"
    assert in_job.store.managed_identity_client_id == CLIENT_ID
    assert str(in_job.training.code_dir) == "/job/code"
    (record,) = [r for r in jobs.records.values() if r.parent is None]
    assert capsys.readouterr().out.strip() == record.url  # the service's studio URL of the submitted job


def test_test_mode_submits_only_data_preparation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rc, _, jobs = launch(tmp_path, monkeypatch, "--test", "--source", "azureml:faces:1")
    assert rc == 0
    ((job, _),) = jobs.submitted
    assert list(job.jobs) == ["prepare_data"]
    prep = job.jobs["prepare_data"]
    assert prep.command.endswith("--source ${{inputs.source}}")
    assert job.inputs["source_data"].path == "azureml:faces:1"


def test_a_literal_secret_is_refused_before_anything_is_submitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    literal = write_config(
        tmp_path, f"  backend: azure\n  account_name: acct1\n  connection_string: {CONNECTION}\n"
    )
    ws = Workspace()
    with pytest.raises(ConfigError, match="store.connection_string: a secret must be given as"):
        launch(tmp_path, monkeypatch, config=literal, ws=ws)
    only_key = write_config(
        tmp_path, "  backend: azure\n  connection_string: ${MODEL_STORAGE_CONNECTION_STRING}\n"
    )
    with pytest.raises(ConfigError, match="does not load without its secrets"):
        launch(tmp_path, monkeypatch, config=only_key, ws=ws)
    # refused before the workspace was touched and before anything was submitted
    assert ws.creates() == [] and ws.compute.calls == [] and ws.jobs.submitted == []


def test_config_for_job_keeps_the_job_variables() -> None:
    text, names = config_for_job(
        "experiment_name: e\nstore: {backend: azure, account_name: a, sas_token: '${SAS}'}\n"
        "training: {data: '${ARCHAI_AML_OUTPUT}/data', command: 'python train.py ${{inputs.data}} --x ${X:-3}'}\n",
        {"SAS": "sv=2022&sig=SECRETSIG0123456789"},
    )
    assert names == ["SAS"] and "SECRETSIG" not in text
    raw = yaml.safe_load(text)
    assert raw["store"]["sas_token"] == "${SAS:-}" and raw["training"]["data"] == "${ARCHAI_AML_OUTPUT}/data"
    assert raw["training"]["command"] == "python train.py ${{inputs.data}} --x 3"


def test_prepare_data_step(tmp_path: Path) -> None:
    import numpy as np
    import prepare_data
    from PIL import Image

    from archai_aml.data import open_dataset

    assert prepare_data.main(["--output", str(tmp_path / "proc")]) == 0
    assert len(open_dataset(str(tmp_path / "proc"), split="val", length=3, image_size=16)) == 3
    src = tmp_path / "faces"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(src / f"{i:06d}.png")
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(src / f"{i:06d}_seg.png")
    (src / "notes.txt").write_text("not an image")
    assert prepare_data.main(["--output", str(tmp_path / "copy"), "--source", str(src), "--length", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == [
        "000000.png", "000000_seg.png", "000001.png", "000001_seg.png",
    ]  # fmt: skip
