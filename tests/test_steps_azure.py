"""The Azure path of every step on a real MLClient whose ``data``/``models``/``jobs`` operations are autospecs of
the real operation classes answering like the service (archai_aml.testing.mlclient: versions numbered on
create, ResourceNotFoundError for unknown ones, new job objects with studio URLs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.exceptions import HttpResponseError
from mlflow import MlflowClient

from archai_aml.errors import ConfigError, WorkspaceError
from archai_aml.pipelines.azureml import AzureMLJobRunner
from archai_aml.steps.labels import write_mltable
from archai_aml.steps.register_data import RegisterDataSettings, register_data
from archai_aml.steps.register_model import RegisterModelSettings, register_model
from archai_aml.steps.registry import ensure_experiment
from archai_aml.steps.tag_model import TagModelSettings, tag_best_model
from archai_aml.steps.train import TrainSettings, submit_automl
from archai_aml.testing.mlclient import FakeWorkspace

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "symbol_detection"
sys.path.insert(0, str(EXAMPLE))
from pipeline import PipelineSettings, build_pipeline  # noqa: E402


@pytest.fixture
def ws() -> FakeWorkspace:
    return FakeWorkspace()


@pytest.fixture
def client(ws: FakeWorkspace) -> Any:
    return ws.client


def mltable(folder: Path, n: int) -> Path:
    box = {"label": "disc", "topX": 0.1, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5, "isCrowd": 0}
    records = [
        {"image_url": f"azureml://datastores/ws/paths/data/images/{i}.jpg", "label": [box]} for i in range(n)
    ]
    write_mltable(folder, records)
    return folder


def test_register_data_registers_mltable_versions_in_the_workspace(
    tmp_path: Path, client: Any, ws: FakeWorkspace
) -> None:
    settings = RegisterDataSettings.load(
        {"train_input_path": mltable(tmp_path / "train", 3), "val_input_path": mltable(tmp_path / "val", 1), "output_path": tmp_path / "out"},
        env={"ARCHAI_AML_REGISTRY": "workspace", "DATA_ASSET_NAME": "symbols"},
    )  # fmt: skip
    first = register_data(settings, client)
    unchanged = register_data(settings, client)  # same records: nothing registered
    mltable(tmp_path / "train", 4)  # an image appended
    second = register_data(settings, client)
    created = ws.data.created
    assert [(a.name, a.version, a.type, a.path) for a in created] == [
        ("symbols", None, "mltable", str(tmp_path / "train")),
        ("symbols-val", None, "mltable", str(tmp_path / "val")),
        ("symbols", None, "mltable", str(tmp_path / "train")),
        ("symbols-val", None, "mltable", str(tmp_path / "val")),
    ]  # the version is left to the service (auto-increment)
    assert created[0].description == "3 labelled images (archai-aml register_data)"
    assert created[0].tags == {"content_hash": first["content_hash"]} == created[1].tags
    assert created[2].tags["content_hash"] == second["content_hash"] != first["content_hash"]
    assert first["train"] == {"name": "symbols", "version": 1, "uri": "azureml:symbols:1"}
    assert (first["changed"], unchanged["changed"], second["changed"]) == (True, False, True)
    assert unchanged["train"] == first["train"] and unchanged["val"] == first["val"]
    assert second["train"]["uri"] == "azureml:symbols:2" and second["val"]["uri"] == "azureml:symbols-val:2"
    assert json.loads((tmp_path / "out" / "dataset_version.json").read_text()) == second
    mltable(tmp_path / "train", 5)
    ws.data.fail_create = HttpResponseError("AuthorizationFailed: no write access")
    with pytest.raises(WorkspaceError, match="could not register data asset symbols: AuthorizationFailed"):
        register_data(settings, client)


def trained_model(tmp_path: Path, tracking: str, mean_ap: float, name: str) -> Path:
    mlflow = MlflowClient(tracking)
    run = mlflow.create_run(ensure_experiment(mlflow, "automl", tracking))
    for key, value in {"mean_average_precision": mean_ap, "precision": 0.8, "recall": 0.7}.items():
        mlflow.log_metric(run.info.run_id, key, value)
    folder = tmp_path / name
    folder.mkdir()
    (folder / "MLmodel").write_text(
        yaml.safe_dump({"run_id": run.info.run_id, "flavors": {"python_function": {}}})
    )
    return folder


def test_register_and_tag_go_through_mlclient_models(tmp_path: Path, client: Any, ws: FakeWorkspace) -> None:
    tracking = (
        f"sqlite:///{tmp_path / 'mlflow.db'}"  # the job's MLflow (on Azure ML: the workspace's tracking)
    )
    env = {"ARCHAI_AML_REGISTRY": "workspace", "MODEL_BASE_NAME": "symbols", "MLFLOW_TRACKING_URI": tracking}
    results = []
    for i, mean_ap in enumerate((0.3, 0.6, 0.5)):
        model = trained_model(tmp_path, tracking, mean_ap, f"model{i}")
        meta = register_model(
            RegisterModelSettings.load(
                {"model_input_path": model, "model_metadata_path": tmp_path / f"reg{i}"}, env=env
            ),
            client,
        )
        results.append(tag_best_model(
            TagModelSettings.load({"model_metadata_path": tmp_path / f"reg{i}", "best_model_metadata_path": tmp_path / f"best{i}"}, env=env), client
        ))  # fmt: skip
        assert meta["version"] == i + 1
    registered = [m for m in ws.models.created if m.version is None]
    first = registered[0]
    assert (first.name, first.type, first.path) == ("symbols", "mlflow_model", str(tmp_path / "model0"))
    run_id = yaml.safe_load((tmp_path / "model0" / "MLmodel").read_text())["run_id"]
    assert first.tags == {
        "mean_average_precision": "0.3",
        "recall": "0.7",
        "precision": "0.8",
        "run_id": run_id,
    }
    assert first.properties == {"run_id": run_id}
    assert [(r["version"], r["previous_best_version"], r["changed"]) for r in results] == [
        (1, None, True),
        (2, 1, True),
        (2, 2, False),
    ]
    tag_writes = [(m.version, m.tags.get("best_model")) for m in ws.models.created if m.version]
    assert tag_writes == [
        ("1", "true"),
        ("2", "true"),
        ("1", "false"),
    ]  # the winner's tag (the one write readers use: the highest tagged version), then a tidy-up; a kept
    # best model is not written again
    assert {v: m.tags.get("best_model") for (_, v), m in ws.models.items.items()} == {
        "1": "false",
        "2": "true",
        "3": None,
    }


def test_train_submits_the_automl_object_detection_job(
    tmp_path: Path, client: Any, ws: FakeWorkspace
) -> None:
    env = {
        "TRAINING_BACKEND": "azure", "TRAIN_DATASET": "azureml:symbols:4", "VAL_DATASET": "azureml:symbols-val:4",
        "TRAINING_GPU_COMPUTE_NAME": "gpu-a100", "TRAINING_MAX_TRIALS": "12", "TRAINING_CONCURRENT_TRIALS": "3",
        "TRAINING_JOB_TIMEOUT_MINUTES": "90", "AUTO_MODE": "false",
        "TRAINING_SEARCH_SPACE_FILE": str(EXAMPLE / "config_search_space.yml"), "EXPERIMENT_NAME": "sym",
    }  # fmt: skip
    submit_automl(TrainSettings.load({"output_path": tmp_path / "out"}, env=env), client)
    ((job, kwargs),) = ws.jobs.submitted
    assert kwargs == {"experiment_name": "sym"}
    d = job._to_dict()
    assert (d["type"], d["task"], d["compute"], d["primary_metric"]) == (
        "automl",
        "image_object_detection",
        "azureml:gpu-a100",
        "mean_average_precision",
    )
    assert (d["target_column_name"], d["experiment_name"]) == ("label", "sym")
    assert d["training_data"] == {"type": "mltable", "path": "azureml:symbols:4"}
    assert d["validation_data"] == {"type": "mltable", "path": "azureml:symbols-val:4"}
    assert d["limits"] == {"max_concurrent_trials": 3, "max_trials": 12, "timeout_minutes": 90}
    assert d["sweep"]["sampling_algorithm"] == "random"
    assert d["sweep"]["early_termination"] == {
        "type": "bandit",
        "evaluation_interval": 2,
        "delay_evaluation": 6,
        "slack_factor": 0.2,
        "slack_amount": 0.0,
    }
    yolo, rcnn = d["search_space"]
    assert yolo["model_name"] == {"type": "choice", "values": ["yolov5"]}
    assert yolo["learning_rate"] == {"type": "uniform", "min_value": 0.0001, "max_value": 0.01}
    assert rcnn["optimizer"] == {"type": "choice", "values": ["sgd", "adam", "adamw"]}
    written = json.loads((tmp_path / "out" / "automl_job.json").read_text())
    (name,) = ws.jobs.records  # the name the service answered with (the SDK names an unnamed job)
    assert written == {"name": name, "studio_url": ws.jobs.records[name].url}

    auto = {**env, "AUTO_MODE": "true", "VAL_DATASET": "", "TRAINING_VALIDATION_DATA_SIZE": "0.25"}
    submit_automl(TrainSettings.load({}, env=auto), client)
    d = ws.jobs.submitted[-1][0]._to_dict()
    assert "search_space" not in d and "sweep" not in d and "validation_data" not in d
    assert d["validation_data_size"] == 0.25 and d["limits"]["max_trials"] == 12


def test_train_settings_and_search_space_errors(tmp_path: Path, client: Any, ws: FakeWorkspace) -> None:
    base = {"TRAINING_BACKEND": "azure", "TRAIN_DATASET": "azureml:symbols:1"}
    with pytest.raises(ConfigError, match="AUTO_MODE=false needs a search space file"):
        submit_automl(TrainSettings.load({}, env={**base, "AUTO_MODE": "false"}), client)
    bad = tmp_path / "space.yml"
    bad.write_text("search_space:\n  - model_name: {type: choice, values: [yolov8]}\n")
    with pytest.raises(ConfigError, match=r"model_name must choose among .*unknown: \['yolov8'\]"):
        submit_automl(
            TrainSettings.load(
                {}, env={**base, "AUTO_MODE": "false", "TRAINING_SEARCH_SPACE_FILE": str(bad)}
            ),
            client,
        )
    bad.write_text(
        "search_space:\n  - model_name: {type: choice, values: [yolov5]}\n    lr: {type: gaussian}\n"
    )
    with pytest.raises(ConfigError, match=r"search_space\[0\].lr: unknown distribution 'gaussian'"):
        submit_automl(
            TrainSettings.load(
                {}, env={**base, "AUTO_MODE": "false", "TRAINING_SEARCH_SPACE_FILE": str(bad)}
            ),
            client,
        )
    with pytest.raises(ConfigError, match=r"TRAINING_VALIDATION_DATA_SIZE: Input should be less than 1"):
        TrainSettings.load({}, env={"TRAINING_VALIDATION_DATA_SIZE": "1.5"})
    with pytest.raises(ConfigError, match="local \\(MLflow\\) data asset"):
        submit_automl(TrainSettings.load({}, env={"TRAIN_DATASET": "models:/x/1"}), client)
    with pytest.raises(ConfigError, match="no training data: set TRAIN_DATASET"):
        submit_automl(TrainSettings.load({}, env={}), client)
    assert ws.jobs.submitted == []
    defaults = TrainSettings.load({}, env={})
    assert (
        defaults.timeout_minutes,
        defaults.max_trials,
        defaults.concurrent_trials,
        defaults.validation_data_size,
    ) == (180, 8, 4, 0.2)
    assert (defaults.compute, defaults.auto_mode) == ("gpu-cluster", True)


def test_the_example_pipeline_for_azure_ml_field_by_field(tmp_path: Path) -> None:
    env = {
        "PIPELINE_BACKEND": "azure", "PIPELINE_ENVIRONMENT": "symbols-env:3",
        "PIPELINE_CPU_COMPUTE_NAME": "cpu-d4", "TRAINING_GPU_COMPUTE_NAME": "gpu-a100",
        "INPUT_IMAGE_DATA_PATH": "azureml://datastores/workspaceblobstore/paths/data/images",
        "INPUT_LABEL_DATA_PATH": "azureml://datastores/workspaceblobstore/paths/data/labels",
        "USE_STRATIFIED_SPLIT": "true", "STRATIFIED_SPLIT_N_FOLD": "4", "MANDATORY_VAL_FILENAMES": "a.jpg,b.jpg",
        "MODEL_BASE_NAME": "symbols", "TRAINING_MAX_TRIALS": "6",
    }  # fmt: skip
    job = build_pipeline(PipelineSettings.load({}, env=env))
    ws = FakeWorkspace()
    answer = AzureMLJobRunner(ws.client).submit(job, experiment_name="symbols")
    ((submitted, kwargs),) = ws.jobs.submitted
    assert answer is not job and answer.studio_url == ws.jobs.records[answer.name].url
    assert submitted is job and kwargs == {"experiment_name": "symbols"}
    d = job._to_dict()
    jobs = d["jobs"]
    assert list(jobs) == ["aggregate", "split", "register_data", "train", "register_model", "tag_model"]
    assert (
        d["settings"]["default_compute"] == "azureml:cpu-d4"
        and d["settings"]["continue_on_step_failure"] is False
    )
    assert d["inputs"]["images"] == {"type": "uri_folder", "path": env["INPUT_IMAGE_DATA_PATH"]}
    assert (
        d["inputs"]["images_uri"] == env["INPUT_IMAGE_DATA_PATH"]
    )  # one variable, both uses (as the design says)
    for name in ("aggregate", "split", "register_data", "register_model", "tag_model"):
        node = job.jobs[name]
        assert node.compute == "cpu-d4" and node.environment == "symbols-env:3", name
        assert node.environment_variables == {"ARCHAI_AML_REGISTRY": "workspace"}
        assert node.command.startswith(f"python -m archai_aml.steps.{name} ")
    assert (
        jobs["split"]["inputs"]["mandatory_val"] == "a.jpg,b.jpg"
        and "mandatory_train" not in jobs["split"]["inputs"]
    )
    assert jobs["split"]["inputs"]["n_fold"] == 4 and jobs["split"]["inputs"]["use_stratified_split"] in (
        True,
        1,
    )  # the SDK dumps it as 1
    assert "--mandatory-val-filenames ${{inputs.mandatory_val}}" in job.jobs["split"].command
    assert "mandatory-train" not in job.jobs["split"].command
    assert jobs["split"]["inputs"]["data"]["path"] == "${{parent.jobs.aggregate.outputs.aggregated}}"
    train = jobs["train"]
    assert (train["type"], train["task"], train["compute"]) == (
        "automl",
        "image_object_detection",
        "azureml:gpu-a100",
    )
    assert train["training_data"] == "${{parent.jobs.split.outputs.train}}"
    assert train["validation_data"] == "${{parent.jobs.split.outputs.val}}"
    assert train["limits"] == {"max_concurrent_trials": 4, "max_trials": 6, "timeout_minutes": 180}
    assert train["outputs"]["best_model"] == {"job_output_type": "mlflow_model"}
    assert jobs["register_model"]["inputs"]["model"]["path"] == "${{parent.jobs.train.outputs.best_model}}"
    assert (
        jobs["register_model"]["inputs"]["dataset_version"]["path"]
        == "${{parent.jobs.register_data.outputs.dataset_version}}"
    )
    assert (
        jobs["tag_model"]["inputs"]["model_metadata"]["path"]
        == "${{parent.jobs.register_model.outputs.model_metadata}}"
    )
    assert jobs["tag_model"]["inputs"]["model_base_name"] == "symbols"

    no_split = build_pipeline(
        PipelineSettings.load({}, env={**env, "USE_STRATIFIED_SPLIT": "false", "MANDATORY_VAL_FILENAMES": ""})
    )
    t = no_split._to_dict()["jobs"]["train"]
    assert "validation_data" not in t and t["validation_data_size"] == 0.2
    retrain = build_pipeline(
        PipelineSettings.load({}, env={**env, "TRAIN_DATASET": "azureml:symbols-data:7"})
    )
    assert list(retrain.jobs) == ["train", "register_model", "tag_model"]
    assert retrain._to_dict()["inputs"]["train_data"] == {"type": "mltable", "path": "azureml:symbols-data:7"}
