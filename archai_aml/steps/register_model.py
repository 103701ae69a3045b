"""Register model: the training job's MLflow model as a new version of ``MODEL_BASE_NAME``::

    python -m archai_aml.steps.register_model --model-input-path out/model --model-metadata-path out/registered

``<model-input-path>/MLmodel`` names the training run; its ``mean_average_precision``, ``precision`` and
``recall`` are read from MLflow (locally the SQLite store, in an Azure ML job the workspace's tracking) and
kept as tags of the new version. ``<model-metadata-path>/model_metadata.json`` holds the name, version and
those three metrics (and the run and data version). The registry numbers the version (one more than the last).

When ``register_data`` found the data unchanged (``dataset_version.json`` has ``"changed": false``) and a
version of the model trained on that data version exists, nothing is registered: the metadata names that
version (``"registered": false``) and the log says so. ``REGISTER_ON_UNCHANGED_DATA=true`` registers anyway
(a rerun with other training settings on the same data).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from archai_aml.errors import ConfigError, DatasetError
from archai_aml.steps.outputs import check_output_folder
from archai_aml.steps.register_data import read_dataset_version
from archai_aml.steps.registry import (
    ModelVersion,
    RegistrySettings,
    default_tracking_uri,
    mlflow_client,
    open_registry,
)
from archai_aml.steps.settings import env_field, run_cli

__all__ = ["METADATA_FILE", "METRICS", "RegisterModelSettings", "main", "read_metadata", "register_model"]

log = logging.getLogger(__name__)

METADATA_FILE = "model_metadata.json"
METRICS = ("mean_average_precision", "recall", "precision")


class RegisterModelSettings(RegistrySettings):
    model_base_name: str = env_field("symbol-detection", env="MODEL_BASE_NAME")
    model_input_path: Path = env_field(
        env="MODEL_INPUT_PATH", description="MLflow model folder (has MLmodel)"
    )
    model_metadata_path: Path = env_field(
        env="MODEL_METADATA_PATH", description="folder for model_metadata.json"
    )
    dataset_version_path: Path | None = env_field(None, env="DATASET_VERSION_PATH")
    register_on_unchanged_data: bool = env_field(
        False, env="REGISTER_ON_UNCHANGED_DATA", description="register even when the data did not change"
    )


def run_id_of(model_folder: Path) -> str:
    spec_path = model_folder / "MLmodel"
    try:
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise DatasetError(
            f"{model_folder} has no MLmodel file: pass the training step's MLflow model folder"
        ) from None
    except yaml.YAMLError as exc:
        raise DatasetError(f"{spec_path} is not valid YAML: {exc}") from None
    run_id = spec.get("run_id") if isinstance(spec, dict) else None
    if not run_id:
        raise DatasetError(f"{spec_path} names no run_id: the model must come from a tracked training run")
    return str(run_id)


def run_metrics(run_id: str, tracking_uri: str | None) -> dict[str, float]:
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri or default_tracking_uri())
    try:
        metrics = client.get_run(run_id).data.metrics
    except MlflowException as exc:
        raise DatasetError(f"training run {run_id} is not in the MLflow tracking store: {exc}") from None
    missing = [m for m in METRICS if m not in metrics]
    if missing:
        raise DatasetError(f"training run {run_id} logged no {missing}")
    return {m: float(metrics[m]) for m in METRICS}


def register_model(settings: RegisterModelSettings, ml_client: Any = None) -> dict[str, Any]:
    """Register; returns what ``model_metadata.json`` holds."""
    # everything checked before registering: a failed step registers nothing
    check_output_folder(settings.model_metadata_path, "output folder (MODEL_METADATA_PATH)")
    run_id = run_id_of(settings.model_input_path)
    metrics = run_metrics(run_id, settings.tracking_uri)
    tags = {k: repr(v) for k, v in metrics.items()} | {"run_id": run_id}
    registry = open_registry(settings, ml_client)
    data_version = None
    if settings.dataset_version_path is not None:
        dataset = read_dataset_version(settings.dataset_version_path)
        data_version = dataset["train"]["uri"]
        tags["train_data"] = str(data_version)
        kept = None if dataset.get("changed", True) or settings.register_on_unchanged_data else (
            _trained_on(registry.model_versions(settings.model_base_name), str(data_version))
        )  # fmt: skip
        if kept is not None:
            return _write(settings, kept, run_id, data_version, registered=False)
    asset = registry.register_model(
        settings.model_base_name,
        settings.model_input_path,
        run_id=run_id,
        tags=tags,
        description=f"mAP {metrics['mean_average_precision']:.4f} (archai-aml register_model)",
    )
    metadata = {
        "name": asset.name,
        "version": asset.version,
        **metrics,
        "run_id": run_id,
        "train_data": data_version,
        "registered": True,
    }
    settings.model_metadata_path.mkdir(parents=True, exist_ok=True)
    (settings.model_metadata_path / METADATA_FILE).write_text(
        json.dumps(metadata, indent=2), encoding="utf-8"
    )
    log.info(
        "registered model %s version %d (mAP %.4f)",
        asset.name,
        asset.version,
        metrics["mean_average_precision"],
    )
    return metadata


def _trained_on(versions: list[ModelVersion], data_uri: str) -> ModelVersion | None:
    """The newest version whose ``train_data`` tag is ``data_uri``."""
    matching = [v for v in versions if v.tags.get("train_data") == data_uri]
    return matching[-1] if matching else None


def _write(
    settings: RegisterModelSettings, kept: ModelVersion, run_id: str, data: Any, *, registered: bool
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": settings.model_base_name, "version": kept.version}
    metadata.update({m: float(kept.tags.get(m, "nan")) for m in METRICS})
    metadata.update(run_id=kept.tags.get("run_id", run_id), train_data=data, registered=registered)
    settings.model_metadata_path.mkdir(parents=True, exist_ok=True)
    (settings.model_metadata_path / METADATA_FILE).write_text(
        json.dumps(metadata, indent=2), encoding="utf-8"
    )
    log.info(
        "data %s unchanged: nothing registered, model %s version %d trained on it is kept (this run %s is "
        "not registered; REGISTER_ON_UNCHANGED_DATA=true registers it)",
        data, settings.model_base_name, kept.version, run_id,
    )  # fmt: skip
    return metadata


def read_metadata(path: Path, name: str = METADATA_FILE) -> dict[str, Any]:
    file = path / name if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{file} does not exist: pass the register_model step's output") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{file} is not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("version"), int) or "name" not in data:
        raise ConfigError(f"{file} needs 'name' and an integer 'version'")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        RegisterModelSettings, register_model, argv, prog="register_model", description=__doc__ or ""
    )


if __name__ == "__main__":
    raise SystemExit(main())
