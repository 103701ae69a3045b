"""The deploy step: the best model served over real HTTP here (Starlette on uvicorn, 127.0.0.1) and rolled out
blue/green on Azure ML (a real MLClient whose online endpoint/deployment operations are autospec'd stand-ins of
the SDK's, scoring with the real detector), including the rollbacks."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

from archai_aml.errors import DeployError
from archai_aml.steps.deploy import DeploySettings, deploy, post_json, serving, stop_local
from archai_aml.steps.deploy_azure import SCORING_CODE
from archai_aml.steps.register_model import RegisterModelSettings, register_model
from archai_aml.steps.registry import MlflowRegistry
from archai_aml.steps.serving import Detector, request_for, score_payload
from archai_aml.steps.tag_model import TagModelSettings, tag_best_model
from archai_aml.steps.train import TrainSettings, train_local
from archai_aml.testing.mlclient_online import (
    FakeOnline,
    NeverUsedCredential,
    fake_model_operations,
    fake_online_operations,
)
from tests.test_steps_model import prepared


def train_and_register(tmp: Path, tracking: str, data: Path, name: str, epochs: int) -> dict[str, Any]:
    settings = TrainSettings.load(
        {"dataset_version_path": data, "output_path": tmp / name, "tracking_uri": tracking, "epochs": epochs},
        env={"ARCHAI_AML_DATASTORE_FOLDER": str(tmp / "store" / "blobs" / "models")},
    )
    train_local(settings)
    register_model(RegisterModelSettings.load(
        {"model_input_path": tmp / name, "model_metadata_path": tmp / f"{name}-reg", "dataset_version_path": data,
         "tracking_uri": tracking, "register_on_unchanged_data": "true"}, env={},
    ))  # fmt: skip
    return tag_best_model(TagModelSettings.load(
        {"model_metadata_path": tmp / f"{name}-reg", "best_model_metadata_path": tmp / f"{name}-best",
         "tracking_uri": tracking}, env={},
    ))  # fmt: skip


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """v1: the detector trained on 30 generated images (marked best); v2: one epoch, worse (not marked)."""
    tmp = tmp_path_factory.mktemp("deploy")
    tracking = f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}"
    data = prepared(tmp, tracking, images=30)
    good = train_and_register(tmp, tracking, data, "good", epochs=20)
    worse = train_and_register(tmp, tracking, data, "worse", epochs=1)
    assert good["version"] == 1 and worse["version"] == 1  # v2 is worse: the mark stays on v1
    versions = {
        v.version: float(v.tags["mean_average_precision"])
        for v in MlflowRegistry(tracking).model_versions("symbol-detection")
    }
    assert versions[2] < versions[1]
    image = sorted((tmp / "store" / "blobs" / "models" / "data" / "images").glob("*.jpg"))[0]
    return {"tmp": tmp, "tracking": tracking, "image": image, "maps": versions}


@pytest.fixture
def local(models: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    values = {"tracking_uri": models["tracking"], "local_root": tmp_path / "endpoints"}
    yield values
    stop_local(DeploySettings.load(values, env={}))


def test_local_deploy_serves_the_best_model_over_http_and_a_worse_one_leaves_it_serving(
    models: dict[str, Any], local: dict[str, Any]
) -> None:
    first = deploy(
        DeploySettings.load({**local, "smoke_image": models["image"], "smoke_min_boxes": "1"}, env={})
    )
    assert first["version"] == 1 and first["changed"] and first["url"].startswith("http://127.0.0.1:")
    answer = post_json(first["url"] + "/score", request_for(models["image"].read_bytes()))
    (boxes,) = [entry["boxes"] for entry in answer]
    assert boxes and {b["label"] for b in boxes} <= {"bar", "disc", "square"}
    top = max(boxes, key=lambda b: b["score"])
    assert 0.3 <= top["score"] <= 1.0 and 0 <= top["box"]["topX"] < top["box"]["bottomX"] <= 1
    label_file = (
        models["tmp"] / "store" / "blobs" / "models" / "data" / "labels" / (models["image"].stem + ".jsonl")
    )
    truth = {b["label"] for b in json.loads(label_file.read_text())["label"]}
    assert top["label"] in truth  # the most confident detection is a class that is in the image
    # the worse v2: refused, v1 keeps serving (same process, same answers)
    with pytest.raises(DeployError, match=r"version 2 \(mAP .*\) is worse than the serving version 1"):
        deploy(DeploySettings.load({**local, "model_version": "2"}, env={}))
    # forced, but its smoke request must find a box in the data set image, which the 1-epoch model does not
    with pytest.raises(
        DeployError, match="smoke request to symbol-detection:2 failed.*version 1 keeps serving"
    ):
        deploy(DeploySettings.load({**local, "model_version": "2", "allow_worse": "true", "smoke_image": models["image"], "smoke_min_boxes": "1"}, env={}))  # fmt: skip
    still = serving(DeploySettings.load(local, env={}))
    assert still is not None and (still["version"], still["pid"], still["url"]) == (
        1,
        first["pid"],
        first["url"],
    )
    assert post_json(first["url"] + "/score", request_for(models["image"].read_bytes())) == answer
    with pytest.raises(DeployError, match="HTTP 400.*not base64"):
        post_json(first["url"] + "/score", {"input_data": {"columns": ["image"], "data": ["%%%"]}})


def test_local_blue_green_switch_stops_the_old_server(models: dict[str, Any], local: dict[str, Any]) -> None:
    first = deploy(DeploySettings.load({**local, "model_version": "2"}, env={}))  # the worse one first
    second = deploy(DeploySettings.load(local, env={}))  # then the best: it is better, the switch happens
    assert (first["version"], second["version"], second["previous_version"]) == (2, 1, 2)
    assert second["url"] != first["url"]
    with pytest.raises(DeployError, match="did not answer"):
        post_json(first["url"] + "/score", request_for(models["image"].read_bytes()), timeout=5)
    assert deploy(DeploySettings.load(local, env={}))["changed"] is False  # already serving


@pytest.fixture
def azure(models: dict[str, Any], tmp_path: Path) -> Iterator[tuple[MLClient, FakeOnline]]:
    """A workspace holding the two models; its deployments score with the real detector of their model."""
    registry = MlflowRegistry(models["tracking"])
    folders = {v: registry.data_folder(f"models:/symbol-detection/{v}", tmp_path / f"m{v}") for v in (1, 2)}
    detectors = {v: Detector.load(folder) for v, folder in folders.items()}

    def score(deployment: Any, request: dict[str, Any]) -> Any:
        return score_payload(detectors[int(str(deployment.model).rsplit(":", 1)[1])], request)

    ml = MLClient(
        credential=NeverUsedCredential(), subscription_id="sub", resource_group_name="rg", workspace_name="ws"
    )
    ml._models = fake_model_operations({})
    for v in (1, 2):
        ml._models.create_or_update(Model(name="symbol-detection", path=str(folders[v]), type="mlflow_model",
            tags={"mean_average_precision": repr(models["maps"][v]), **({"best_model": "true"} if v == 1 else {})}))  # fmt: skip
    state = FakeOnline(score)
    ml._online_endpoints, ml._online_deployments = fake_online_operations(state)
    yield ml, state


def azure_settings(models: dict[str, Any], **extra: str) -> DeploySettings:
    env = {"DEPLOY_TARGET": "azure", "DEPLOY_ENVIRONMENT": "symbol-serve:3", "DEPLOY_INSTANCE_TYPE": "Standard_F2s_v2",
           "DEPLOY_INSTANCE_COUNT": "2", "ENDPOINT_NAME": "symbols-ep", "ENDPOINT_AUTH_MODE": "aad_token"}  # fmt: skip
    return DeploySettings.load({"smoke_image": models["image"], **extra}, env=env)


def test_azure_deploy_creates_the_endpoint_and_a_blue_deployment_field_by_field(
    models: dict[str, Any], azure: tuple[MLClient, FakeOnline], caplog: pytest.LogCaptureFixture
) -> None:
    ml, state = azure
    result = deploy(azure_settings(models, smoke_min_boxes="1"), ml)
    assert result == {"endpoint": "symbols-ep", "deployment": "blue", "version": 1, "mean_average_precision": models["maps"][1],
                      "previous_deployment": None, "smoke_boxes": result["smoke_boxes"], "changed": True}  # fmt: skip
    assert result["smoke_boxes"] >= 1
    kinds = [kind for kind, _ in state.calls]
    assert kinds == ["endpoints.get", "endpoints.begin_create_or_update", "deployments.begin_create_or_update",
                     "endpoints.invoke", "endpoints.begin_create_or_update"]  # fmt: skip
    endpoint = state.calls[1][1]
    assert isinstance(endpoint, ManagedOnlineEndpoint)
    assert (endpoint.name, endpoint.auth_mode, endpoint.traffic) == ("symbols-ep", "aad_token", {})
    deployment = state.calls[2][1]
    assert isinstance(deployment, ManagedOnlineDeployment)
    assert (deployment.name, deployment.endpoint_name, deployment.model, deployment.environment) == (
        "blue", "symbols-ep", "azureml:symbol-detection:1", "symbol-serve:3")  # fmt: skip
    assert (deployment.instance_type, deployment.instance_count) == ("Standard_F2s_v2", 2)
    assert deployment.code_configuration.scoring_script == "score.py"
    assert Path(deployment.code_configuration.code) == SCORING_CODE and (SCORING_CODE / "score.py").is_file()
    assert state.calls[3][1] == ("symbols-ep", "blue")  # the smoke request went to the new deployment only
    assert state.calls[4][1].traffic == {"blue": 100}
    assert state.endpoints["symbols-ep"].traffic == {"blue": 100}
    assert not ml.online_endpoints.get_keys.called  # no key is read (the SDK's invoke authenticates itself)


def test_azure_green_rollout_deletes_blue_and_a_failed_smoke_request_rolls_back(
    models: dict[str, Any], azure: tuple[MLClient, FakeOnline]
) -> None:
    ml, state = azure
    deploy(azure_settings(models, model_version="2", allow_worse="true"), ml)  # blue: v2 (no box needed)
    state.calls.clear()
    result = deploy(azure_settings(models), ml)  # green: v1, better
    assert (result["deployment"], result["previous_deployment"], result["version"]) == ("green", "blue", 1)
    assert [k for k, _ in state.calls][-3:] == [
        "endpoints.invoke",
        "endpoints.begin_create_or_update",
        "deployments.begin_delete",
    ]
    assert state.calls[-2][1].traffic == {"green": 100, "blue": 0}
    assert state.calls[-1][1] == ("blue", "symbols-ep") and list(state.deployments) == [
        ("symbols-ep", "green")
    ]
    # the worse v2 again, forced, with a smoke request that must find a box: it finds none -> rollback
    state.calls.clear()
    with pytest.raises(
        DeployError, match="deployment blue of symbol-detection:2 failed.*green keeps serving"
    ):
        deploy(azure_settings(models, model_version="2", allow_worse="true", smoke_min_boxes="1"), ml)
    assert [k for k, _ in state.calls][-2:] == ["endpoints.invoke", "deployments.begin_delete"]
    assert state.endpoints["symbols-ep"].traffic == {"green": 100, "blue": 0}
    assert list(state.deployments) == [("symbols-ep", "green")]
    # a deployment that fails to start: the same rollback
    state.fail_create.add("blue")
    with pytest.raises(DeployError, match="ImageBuildFailure.*green keeps serving"):
        deploy(azure_settings(models, model_version="2", allow_worse="true"), ml)
    served = json.loads(ml.online_endpoints.invoke("symbols-ep", request_file=str(request_file(models))))
    assert served[0]["boxes"]  # by traffic: green, the v1 detector
    # without allow_worse the worse version is refused before anything is created
    state.calls.clear()
    with pytest.raises(DeployError, match="worse than the serving version 1"):
        deploy(azure_settings(models, model_version="2"), ml)
    assert "deployments.begin_create_or_update" not in [k for k, _ in state.calls]


def request_file(models: dict[str, Any]) -> Path:
    path = models["tmp"] / "request.json"
    path.write_text(json.dumps(request_for(models["image"].read_bytes())))
    assert (
        base64.b64decode(json.loads(path.read_text())["input_data"]["data"][0])
        == models["image"].read_bytes()
    )
    return path


def test_deploy_cli_and_component_deploy_tag_models_choice_and_stop(
    models: dict[str, Any], tmp_path: Path
) -> None:
    import subprocess
    import sys

    from archai_aml.steps.components import step_component

    command = step_component("deploy", environment="e@latest").command
    assert command.startswith(
        "python -m archai_aml.steps.deploy --best-model-metadata-path ${{inputs.best_model_metadata}}"
    )
    base = [sys.executable, "-m", "archai_aml.steps.deploy", "--tracking-uri", models["tracking"],
            "--local-root", str(tmp_path / "ep")]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([*base, "--best-model-metadata-path", str(models["tmp"] / "worse-best"),
                           "--output-path", str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads((tmp_path / "out" / "deployment.json").read_text())
        assert result["version"] == 1  # tag_model of the worse run chose version 1: that one is deployed
        assert post_json(result["url"] + "/score", request_for(models["image"].read_bytes()))[0]["boxes"]
    finally:
        stopped = subprocess.run(
            [*base, "--stop", "true"], env=env, capture_output=True, text=True, timeout=120
        )
    assert stopped.returncode == 0 and "stopped the endpoint symbol-detection" in stopped.stderr
    assert serving(DeploySettings.load({"local_root": tmp_path / "ep"}, env={})) is None
