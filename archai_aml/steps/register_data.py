"""Register data asset: a new version of the training (and validation) data asset from the split's MLTables::

    python -m archai_aml.steps.register_data --train-input-path out/train --val-input-path out/val \\
        --data-asset-name symbol-detection --output-path out/dataset_version

The training MLTable becomes a new version of ``<name>``, the validation one of ``<name>-val`` (left out when
it holds no record). ``<output-path>/dataset_version.json`` records both (name, version, URI): the
``DATASET_VERSION_PATH`` of a later run that reuses them. Locally the registry is MLflow's, on Azure the
workspace's (``ARCHAI_AML_REGISTRY=workspace``; the SDK uploads the folder to the workspace's default
datastore); see :mod:`archai_aml.steps.registry`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from archai_aml.errors import DatasetError
from archai_aml.steps.labels import read_mltable
from archai_aml.steps.outputs import check_output_folder
from archai_aml.steps.registry import Asset, RegistrySettings, open_registry
from archai_aml.steps.settings import env_field, run_cli

__all__ = ["DATASET_VERSION_FILE", "RegisterDataSettings", "main", "read_dataset_version", "register_data"]

log = logging.getLogger(__name__)

DATASET_VERSION_FILE = "dataset_version.json"


class RegisterDataSettings(RegistrySettings):
    train_input_path: Path = env_field(env="TRAIN_INPUT_PATH", description="training MLTable folder")
    val_input_path: Path | None = env_field(
        None, env="VAL_INPUT_PATH", description="validation MLTable folder"
    )
    data_asset_name: str = env_field("symbol-detection-data", env="DATA_ASSET_NAME")
    data_store_name: str = env_field("workspaceblobstore", env="DATA_STORE_NAME")
    output_path: Path = env_field(
        env="DATASET_VERSION_OUTPUT_PATH", description="folder for dataset_version.json"
    )


def register_data(settings: RegisterDataSettings, ml_client: Any = None) -> dict[str, Any]:
    """Register the MLTables; returns what ``dataset_version.json`` holds."""
    # everything checked before the first registration: a failed step registers nothing
    check_output_folder(settings.output_path, "output folder (DATASET_VERSION_OUTPUT_PATH)")
    train_records = read_mltable(settings.train_input_path, "training")
    if not train_records:
        raise DatasetError(f"training MLTable {settings.train_input_path} holds no records")
    val_records = (
        [] if settings.val_input_path is None else read_mltable(settings.val_input_path, "validation")
    )
    registry = open_registry(settings, ml_client)
    description = f"{len(train_records)} labelled images (archai-aml register_data)"
    assets: dict[str, Asset] = {
        "train": registry.register_data(
            settings.data_asset_name, settings.train_input_path, description=description
        )
    }
    if settings.val_input_path is not None and val_records:
        assets["val"] = registry.register_data(
            f"{settings.data_asset_name}-val", settings.val_input_path, description="validation set"
        )
    result = {key: asdict(asset) for key, asset in assets.items()}
    result["data_store_name"] = settings.data_store_name  # type: ignore[assignment]
    settings.output_path.mkdir(parents=True, exist_ok=True)
    (settings.output_path / DATASET_VERSION_FILE).write_text(json.dumps(result, indent=2), encoding="utf-8")
    for key, asset in assets.items():
        log.info("registered %s data %s version %d: %s", key, asset.name, asset.version, asset.uri)
    return result


def read_dataset_version(path: Path) -> dict[str, Any]:
    """``dataset_version.json`` of a folder (or the file itself)."""
    file = path / DATASET_VERSION_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{file} does not exist: pass the output of the register_data step") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{file} is not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("train"), dict) or "uri" not in data["train"]:
        raise DatasetError(f"{file} has no train.uri")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(RegisterDataSettings, register_data, argv, prog="register_data", description=__doc__ or "")


if __name__ == "__main__":
    raise SystemExit(main())
