"""Train (the local detector), register model and tag best model on a real SQLite-backed MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from archai_aml.errors import ConfigError, DatasetError
from archai_aml.steps.coco import GroundTruth, Prediction, coco_metrics
from archai_aml.steps.register_data import RegisterDataSettings, register_data
from archai_aml.steps.register_model import RegisterModelSettings, register_model
from archai_aml.steps.registry import MlflowRegistry, ensure_experiment
from archai_aml.steps.split import SplitSettings, split
from archai_aml.steps.tag_model import TagModelSettings, tag_best_model
from archai_aml.steps.train import TrainSettings, train_local
from tests.test_steps_data import aggregated


@pytest.fixture
def tracking(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"


def test_coco_metrics_come_from_cocoeval() -> None:
    truth = [GroundTruth([[10, 10, 30, 30], [40, 40, 60, 60]], [0, 1], 64, 64)]
    perfect = [Prediction([[10, 10, 30, 30], [40, 40, 60, 60]], [0.9, 0.8], [0, 1])]
    assert coco_metrics(truth, perfect, 2) == pytest.approx(
        {"mean_average_precision": 1.0, "map_50_95": 1.0, "precision": 1.0, "recall": 1.0}
    )
    half = [
        Prediction([[10, 10, 30, 30], [0, 0, 5, 5]], [0.9, 0.8], [0, 1])
    ]  # class 1 missed, one false positive
    assert coco_metrics(truth, half, 2) == pytest.approx(
        {"mean_average_precision": 0.5, "map_50_95": 0.5, "precision": 0.5, "recall": 0.5}
    )
    two = [Prediction([[0, 0, 5, 5], [10, 10, 30, 30]], [0.9, 0.5], [0, 0]), Prediction([], [], [])]
    metrics = coco_metrics(
        [GroundTruth([[10, 10, 30, 30]], [0], 64, 64), GroundTruth([], [], 64, 64)], two, 1
    )
    assert metrics["recall"] == 1.0 and metrics["precision"] == pytest.approx(
        0.5
    )  # the true box ranks second
    assert metrics["mean_average_precision"] == pytest.approx(0.5, abs=0.01)
    assert coco_metrics(truth, [Prediction([], [], [])], 2)["mean_average_precision"] == 0.0


def prepared(tmp_path: Path, tracking: str, images: int = 30) -> Path:
    """aggregate -> split -> register_data; returns the dataset_version folder."""
    aggregated(tmp_path, images)
    split(
        SplitSettings.load(
            {"input_data_path": tmp_path / "agg", "train_output_path": tmp_path / "train", "val_output_path": tmp_path / "val", "stratified_split_n_fold": 3 if images >= 30 else 2},
            env={},
        )
    )  # fmt: skip
    out = tmp_path / "dataset_version"
    register_data(
        RegisterDataSettings.load(
            {"train_input_path": tmp_path / "train", "val_input_path": tmp_path / "val", "output_path": out, "tracking_uri": tracking},
            env={},
        )
    )  # fmt: skip
    return out


def test_register_data_makes_a_new_mlflow_version_each_time(tmp_path: Path, tracking: str) -> None:
    out = prepared(tmp_path, tracking, images=12)
    first = json.loads((out / "dataset_version.json").read_text())
    assert first["train"] == {
        "name": "symbol-detection-data",
        "version": 1,
        "uri": "models:/symbol-detection-data/1",
    }
    assert first["val"]["uri"] == "models:/symbol-detection-data-val/1"
    again = register_data(
        RegisterDataSettings.load({"train_input_path": tmp_path / "train", "output_path": tmp_path / "dv2", "tracking_uri": tracking}, env={})
    )  # fmt: skip
    assert again["train"]["version"] == 2 and "val" not in again
    registry = MlflowRegistry(tracking)
    folder = registry.data_folder("models:/symbol-detection-data/2", tmp_path / "dl")
    assert (folder / "MLTable").read_text() == (tmp_path / "train" / "MLTable").read_text()
    assert (folder / "annotations.jsonl").read_bytes() == (
        tmp_path / "train" / "annotations.jsonl"
    ).read_bytes()
    assert registry.client.get_registered_model("symbol-detection-data").tags == {
        "archai_aml.asset_type": "data"
    }
    with pytest.raises(DatasetError, match="has no MLTable file"):
        register_data(
            RegisterDataSettings.load({"train_input_path": tmp_path, "output_path": tmp_path / "x", "tracking_uri": tracking}, env={})
        )  # fmt: skip


def test_local_training_logs_cocoeval_metrics_to_mlflow_and_saves_an_mlflow_model(
    tmp_path: Path, tracking: str
) -> None:
    data = prepared(tmp_path, tracking)
    settings = TrainSettings.load(
        {
            "dataset_version_path": data,
            "output_path": tmp_path / "model",
            "tracking_uri": tracking,
            "epochs": 40,
        },
        env={"ARCHAI_AML_DATASTORE_FOLDER": str(tmp_path / "store" / "blobs" / "models")},
    )
    metrics = train_local(settings)
    spec = yaml.safe_load((tmp_path / "model" / "MLmodel").read_text())
    run = MlflowClient(tracking).get_run(spec["run_id"])
    assert {k: run.data.metrics[k] for k in metrics} == pytest.approx(metrics)
    assert run.data.params["val_images"] == "10" and run.data.params["classes"] == "bar,disc,square"
    assert len(MlflowClient(tracking).get_metric_history(run.info.run_id, "train_loss")) == 40
    losses = [m.value for m in MlflowClient(tracking).get_metric_history(run.info.run_id, "train_loss")]
    assert losses[-1] < losses[0] / 3
    # 30 easy synthetic images: the detector learns them (measured mAP@0.5 0.9+ here)
    assert metrics["mean_average_precision"] > 0.6 and metrics["recall"] > 0.6
    assert spec["metadata"]["classes"] == ["bar", "disc", "square"] and "pytorch" in spec["flavors"]


def fake_training_run(tmp_path: Path, tracking: str, name: str, mean_ap: float) -> Path:
    """A real MLflow run with the metrics AutoML logs, and a model folder whose MLmodel names it."""
    client = MlflowClient(tracking)
    run = client.create_run(ensure_experiment(client, "training", tracking))
    for key, value in {"mean_average_precision": mean_ap, "precision": 0.7, "recall": 0.6}.items():
        client.log_metric(run.info.run_id, key, value)
    folder = tmp_path / name
    folder.mkdir()
    (folder / "MLmodel").write_text(yaml.safe_dump({"run_id": run.info.run_id, "flavors": {}}))
    return folder


def register_and_tag(tmp_path: Path, tracking: str, name: str, mean_ap: float) -> tuple[dict, dict]:
    model = fake_training_run(tmp_path, tracking, name, mean_ap)
    common = {"tracking_uri": tracking}
    meta = register_model(
        RegisterModelSettings.load({"model_input_path": model, "model_metadata_path": tmp_path / f"{name}-reg", **common}, env={"MODEL_BASE_NAME": "sym"})
    )  # fmt: skip
    best = tag_best_model(
        TagModelSettings.load({"model_metadata_path": tmp_path / f"{name}-reg", "best_model_metadata_path": tmp_path / f"{name}-best", **common}, env={})
    )  # fmt: skip
    assert json.loads((tmp_path / f"{name}-reg" / "model_metadata.json").read_text()) == meta
    assert json.loads((tmp_path / f"{name}-best" / "best_model_metadata.json").read_text()) == best
    return meta, best


def best_versions(tracking: str) -> list[int]:
    """The version the ``champion`` alias points at (one write moves it; no version carries a tag)."""
    registry = MlflowRegistry(tracking)
    assert not [v for v in registry.model_versions("sym") if "best_model" in v.tags]
    return [registry.best_version("sym") or 0]


def test_register_increments_and_the_best_model_tag_moves_by_map(tmp_path: Path, tracking: str) -> None:
    meta, best = register_and_tag(tmp_path, tracking, "m1", 0.40)
    assert {k: meta[k] for k in ("name", "version", "mean_average_precision", "recall", "precision")} == {
        "name": "sym", "version": 1, "mean_average_precision": 0.40, "recall": 0.6, "precision": 0.7,
    }  # fmt: skip
    assert best == {
        "name": "sym",
        "version": 1,
        "mean_average_precision": 0.40,
        "previous_best_version": None,
        "changed": True,
    }
    meta, best = register_and_tag(tmp_path, tracking, "m2", 0.55)  # better: the tag moves
    assert meta["version"] == 2 and (best["version"], best["previous_best_version"], best["changed"]) == (
        2,
        1,
        True,
    )
    assert best_versions(tracking) == [2]
    meta, best = register_and_tag(tmp_path, tracking, "m3", 0.50)  # worse: stays
    assert meta["version"] == 3 and (best["version"], best["changed"]) == (2, False)
    meta, best = register_and_tag(tmp_path, tracking, "m4", 0.55)  # a tie keeps the current best
    assert (best["version"], best["mean_average_precision"], best["changed"]) == (2, 0.55, False)
    assert best_versions(tracking) == [2]
    versions = {v.version: v.tags for v in MlflowRegistry(tracking).model_versions("sym")}
    assert int(MlflowRegistry(tracking).client.get_model_version_by_alias("sym", "champion").version) == 2
    assert float(versions[3]["mean_average_precision"]) == 0.50 and versions[3]["run_id"]
    source = MlflowRegistry(tracking).client.get_model_version("sym", "3").source
    assert source.endswith("/registered_model") and source.startswith("runs:/")


def test_register_and_tag_bad_inputs(tmp_path: Path, tracking: str) -> None:
    (tmp_path / "empty").mkdir()
    settings = {
        "model_input_path": tmp_path / "empty",
        "model_metadata_path": tmp_path / "r",
        "tracking_uri": tracking,
    }
    with pytest.raises(DatasetError, match="has no MLmodel file"):
        register_model(RegisterModelSettings.load(settings, env={}))
    (tmp_path / "empty" / "MLmodel").write_text("flavors: {}\n")
    with pytest.raises(DatasetError, match="names no run_id"):
        register_model(RegisterModelSettings.load(settings, env={}))
    client = MlflowClient(tracking)
    run = client.create_run(ensure_experiment(client, "training", tracking))
    (tmp_path / "empty" / "MLmodel").write_text(yaml.safe_dump({"run_id": run.info.run_id}))
    with pytest.raises(DatasetError, match=r"logged no \['mean_average_precision', 'recall', 'precision'\]"):
        register_model(RegisterModelSettings.load(settings, env={}))
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "model_metadata.json").write_text(
        json.dumps({"name": "sym", "version": 9, "mean_average_precision": 1})
    )
    with pytest.raises(ConfigError, match=r"model sym has no version 9"):
        tag_best_model(
            TagModelSettings.load(
                {
                    "model_metadata_path": tmp_path / "r",
                    "best_model_metadata_path": tmp_path / "b",
                    "tracking_uri": tracking,
                },
                env={},
            )
        )
    with pytest.raises(ConfigError, match="asset name"):
        MlflowRegistry(tracking).model_versions("x' OR name LIKE '%")
