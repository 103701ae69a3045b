"""Train: an AutoML image object-detection job on Azure ML, or locally a small real detector.

    python -m archai_aml.steps.train --dataset-version-path out/dataset_version --output-path out/model

The data: ``TRAIN_DATASET`` / ``VAL_DATASET`` (a data asset URI, a datastore URI or an MLTable folder), else
the ``dataset_version.json`` under ``DATASET_VERSION_PATH`` (the register_data step's output).

- ``TRAINING_BACKEND=azure``: submits :func:`archai_aml.steps.automl.build_automl_job` (primary metric
  ``mean_average_precision``, ``TRAINING_MAX_TRIALS``, ``TRAINING_CONCURRENT_TRIALS``,
  ``TRAINING_JOB_TIMEOUT_MINUTES``, on ``TRAINING_GPU_COMPUTE_NAME``, search space file unless ``AUTO_MODE``)
  and writes ``automl_job.json`` (job name, studio URL) into the output folder.
- ``local`` (the default): trains :class:`~archai_aml.steps.detector.TinyDetector` from scratch on CPU, scores
  the validation set with pycocotools (:mod:`archai_aml.steps.coco`; without validation records a
  ``TRAINING_VALIDATION_DATA_SIZE`` share of the training set is held out), logs parameters, the loss per
  epoch and ``mean_average_precision``/``precision``/``recall`` to an MLflow run, and saves the model as an
  MLflow model (``MLmodel`` names the run) into the output folder, as AutoML's ``best_model`` output is.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from archai_aml.errors import ConfigError, DatasetError
from archai_aml.steps.automl import DEFAULT_MODEL_CHOICES, PRIMARY_METRIC, build_automl_job
from archai_aml.steps.datastore import local_datastore_folder, resolve_local
from archai_aml.steps.labels import read_mltable
from archai_aml.steps.register_data import read_dataset_version
from archai_aml.steps.registry import (
    MlflowRegistry,
    RegistrySettings,
    default_tracking_uri,
    ensure_experiment,
    mlflow_client,
)
from archai_aml.steps.settings import env_field, mandatory_list_validator, run_cli

__all__ = ["TrainSettings", "data_sources", "main", "submit_automl", "train", "train_local"]

log = logging.getLogger(__name__)

#: The model folder's weights file (beside MLflow's pickled model), read by :mod:`archai_aml.steps.serving`.
STATE_DICT_FILE = "state_dict.pt"


class TrainSettings(RegistrySettings):
    backend: Literal["local", "azure"] = env_field("local", env="TRAINING_BACKEND")
    train_dataset: str | None = env_field(None, env="TRAIN_DATASET")
    val_dataset: str | None = env_field(None, env="VAL_DATASET")
    dataset_version_path: Path | None = env_field(None, env="DATASET_VERSION_PATH")
    compute: str = env_field("gpu-cluster", env="TRAINING_GPU_COMPUTE_NAME")
    timeout_minutes: int = env_field(180, env="TRAINING_JOB_TIMEOUT_MINUTES", ge=1)
    max_trials: int = env_field(8, env="TRAINING_MAX_TRIALS", ge=1)
    concurrent_trials: int = env_field(4, env="TRAINING_CONCURRENT_TRIALS", ge=1)
    validation_data_size: float = env_field(0.2, env="TRAINING_VALIDATION_DATA_SIZE", gt=0.0, lt=1.0)
    auto_mode: bool = env_field(True, env="AUTO_MODE")
    search_space_file: Path | None = env_field(None, env="TRAINING_SEARCH_SPACE_FILE")
    model_choices: list[str] = env_field(list(DEFAULT_MODEL_CHOICES), env="TRAINING_MODEL_CHOICES")
    experiment_name: str = env_field("symbol-detection", env="EXPERIMENT_NAME")
    target_column_name: str = "label"
    output_path: Path | None = env_field(None, env="TRAINING_OUTPUT_PATH", description="model folder (local)")
    datastore_folder: Path | None = env_field(None, env="ARCHAI_AML_DATASTORE_FOLDER")
    epochs: int = Field(30, ge=1)
    image_size: int = Field(64, ge=16, multiple_of=4)
    batch_size: int = Field(8, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    width: int = Field(16, ge=4)
    seed: int = 0

    _lists = mandatory_list_validator("model_choices")


def data_sources(settings: TrainSettings) -> tuple[str, str | None]:
    """(training data reference, validation data reference or None)."""
    if settings.train_dataset:
        return settings.train_dataset, settings.val_dataset
    if settings.dataset_version_path is not None:
        version = read_dataset_version(settings.dataset_version_path)
        val = version.get("val")
        return str(version["train"]["uri"]), str(val["uri"]) if isinstance(val, dict) else None
    raise ConfigError("no training data: set TRAIN_DATASET (and VAL_DATASET) or DATASET_VERSION_PATH")


def submit_automl(settings: TrainSettings, ml_client: Any = None) -> Any:
    """Build and submit the AutoML job; returns the job the workspace answered with."""
    from azure.ai.ml import Input
    from azure.ai.ml.constants import AssetTypes

    train_ref, val_ref = data_sources(settings)
    for ref in (train_ref, val_ref):
        if ref and ref.startswith("models:/"):
            raise ConfigError(
                f"{ref!r} is a local (MLflow) data asset: register the data in the workspace first"
            )
    job = build_automl_job(
        training_data=Input(type=AssetTypes.MLTABLE, path=train_ref),
        validation_data=Input(type=AssetTypes.MLTABLE, path=val_ref) if val_ref else None,
        compute=settings.compute,
        experiment_name=settings.experiment_name,
        target_column_name=settings.target_column_name,
        validation_data_size=settings.validation_data_size,
        max_trials=settings.max_trials,
        concurrent_trials=settings.concurrent_trials,
        timeout_minutes=settings.timeout_minutes,
        auto_mode=settings.auto_mode,
        search_space_file=settings.search_space_file,
        model_choices=settings.model_choices,
    )
    client = ml_client if ml_client is not None else settings.ml_client()
    submitted = client.jobs.create_or_update(job, experiment_name=settings.experiment_name)
    log.info("submitted AutoML job %s (%s)", submitted.name, getattr(submitted, "studio_url", None))
    if settings.output_path is not None:
        settings.output_path.mkdir(parents=True, exist_ok=True)
        info = {"name": submitted.name, "studio_url": getattr(submitted, "studio_url", None)}
        (settings.output_path / "automl_job.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return submitted


def _records(ref: str, settings: TrainSettings, tmp: Path) -> list[dict[str, Any]]:
    if ref.startswith("models:/"):
        folder = MlflowRegistry(settings.tracking_uri).data_folder(ref, tmp)
    elif ref.startswith("azureml://"):
        folder = resolve_local(ref, settings.datastore_folder or local_datastore_folder())
    elif ref.startswith("azureml:"):
        raise ConfigError(f"{ref!r} is a workspace data asset: train it with TRAINING_BACKEND=azure")
    else:
        folder = Path(ref)
    return read_mltable(folder)


def _tensors(records: Sequence[dict[str, Any]], classes: list[str], settings: TrainSettings) -> Any:
    import numpy as np
    import torch
    from PIL import Image

    root = settings.datastore_folder
    images, boxes, labels = [], [], []
    for record in records:
        url = str(record["image_url"])
        path = (
            resolve_local(url, root if root is not None else local_datastore_folder())
            if url.startswith("azureml://")
            else Path(url)
        )
        try:
            with Image.open(path) as im:
                rgb = im.convert("RGB").resize((settings.image_size, settings.image_size))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"image {url} cannot be read at {path}: {exc}") from None
        images.append(torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1))
        boxes.append([[b["topX"], b["topY"], b["bottomX"], b["bottomY"]] for b in record["label"]])
        labels.append([classes.index(b["label"]) for b in record["label"]])
    return torch.stack(images), boxes, labels


def train_local(settings: TrainSettings) -> dict[str, float]:
    """Train, score, log and save (see the module docstring); returns the final metrics."""
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import Model

    from archai_aml.steps.coco import GroundTruth, Prediction, coco_metrics
    from archai_aml.steps.detector import STRIDE, TinyDetector, decode, detection_loss, encode_targets

    if settings.output_path is None:
        raise ConfigError("the local train step needs --output-path (TRAINING_OUTPUT_PATH) for the model")
    train_ref, val_ref = data_sources(settings)
    with tempfile.TemporaryDirectory(prefix="archai_aml_train_") as tmp:
        train_records = _records(train_ref, settings, Path(tmp) / "train")
        val_records = _records(val_ref, settings, Path(tmp) / "val") if val_ref else []
    if not val_records:  # hold out a share of the training set, as AutoML's validation_data_size does
        shuffled = list(train_records)
        random.Random(settings.seed).shuffle(shuffled)
        n_val = max(1, round(len(shuffled) * settings.validation_data_size))
        val_records, train_records = shuffled[:n_val], shuffled[n_val:]
    if not train_records:
        raise DatasetError("no training images left after holding out the validation share")
    classes = sorted({b["label"] for r in [*train_records, *val_records] for b in r["label"]})
    if not classes:
        raise DatasetError("the training data holds no boxes")
    torch.manual_seed(settings.seed)
    x_train, b_train, l_train = _tensors(train_records, classes, settings)
    x_val, b_val, l_val = _tensors(val_records, classes, settings)
    grid = settings.image_size // STRIDE
    encoded = [encode_targets(b, lab, len(classes), grid) for b, lab in zip(b_train, l_train, strict=True)]
    heat, target, mask = (torch.stack([e[i] for e in encoded]) for i in range(3))
    model = TinyDetector(len(classes), settings.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    uri = settings.tracking_uri or default_tracking_uri()
    experiment_id = ensure_experiment(mlflow_client(uri), settings.experiment_name, uri)
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(
            {
                k: getattr(settings, k)
                for k in ("epochs", "image_size", "batch_size", "learning_rate", "width", "seed")
            }
            | {
                "classes": ",".join(classes),
                "train_images": len(train_records),
                "val_images": len(val_records),
            }
        )
        generator = torch.Generator().manual_seed(settings.seed)
        for epoch in range(settings.epochs):
            model.train()
            order = torch.randperm(len(x_train), generator=generator)
            total = 0.0
            for start in range(0, len(order), settings.batch_size):
                idx = order[start : start + settings.batch_size]
                heat_logits, box = model(x_train[idx])
                loss = detection_loss(heat_logits, box, heat[idx], target[idx], mask[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
            mlflow.log_metric("train_loss", total / len(order), step=epoch)
        model.eval()
        detections = decode(*model(x_val))
        truths, predictions = [], []
        for record, boxes, labels, (pb, ps, pl) in zip(val_records, b_val, l_val, detections, strict=True):
            w, h = record["image_details"]["width"], record["image_details"]["height"]
            scale = torch.tensor([w, h, w, h], dtype=torch.float32)
            truths.append(
                GroundTruth(
                    [[v * s for v, s in zip(b, (w, h, w, h), strict=True)] for b in boxes], labels, w, h
                )
            )
            predictions.append(Prediction((pb * scale).tolist(), ps.tolist(), pl.tolist()))
        metrics = coco_metrics(truths, predictions, len(classes))
        mlflow.log_metrics(metrics)
        mlflow.pytorch.save_model(
            model,
            str(settings.output_path),
            mlflow_model=Model(run_id=run.info.run_id),
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
            metadata={
                "classes": classes,
                "image_size": settings.image_size,
                "width": settings.width,
                "primary_metric": PRIMARY_METRIC,
            },
        )
        # the weights alone, for the scoring server: loaded with torch.load(weights_only=True), no pickle
        torch.save(model.state_dict(), settings.output_path / STATE_DICT_FILE)
    log.info(
        "trained on %d images, validated on %d: %s (run %s)",
        len(train_records),
        len(val_records),
        metrics,
        run.info.run_id,
    )
    return metrics


def train(settings: TrainSettings) -> Any:
    if settings.backend == "azure":
        return submit_automl(settings).name
    return train_local(settings)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(TrainSettings, train, argv, prog="train", description=__doc__ or "")


if __name__ == "__main__":
    raise SystemExit(main())
