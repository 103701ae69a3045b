"""Register data asset: a new version of the training (and validation) data asset from the split's MLTables::

    python -m archai_aml.steps.register_data --train-input-path out/train --val-input-path out/val \\
        --data-asset-name symbol-detection --output-path out/dataset_version

The training MLTable becomes a new version of ``<name>``, the validation one of ``<name>-val`` (left out when
it holds no record), but only when the data changed: every version records the :func:`content_hash` of the
records of both MLTables (annotations and image list, in a canonical order); when the newest versions carry
the same hash, nothing is registered, the log says so, and ``dataset_version.json`` names those versions
with ``"changed": false``. ``<output-path>/dataset_version.json`` records both (name, version, URI): the
``DATASET_VERSION_PATH`` of a later run that reuses them. Locally the registry is MLflow's, on Azure the
workspace's (``ARCHAI_AML_REGISTRY=workspace``; the SDK uploads the folder to the workspace's default
datastore); see :mod:`archai_aml.steps.registry`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from archai_aml.errors import DatasetError
from archai_aml.steps.labels import read_mltable
from archai_aml.steps.outputs import check_output_folder
from archai_aml.steps.registry import CONTENT_HASH_TAG, Asset, Registry, RegistrySettings, open_registry
from archai_aml.steps.settings import env_field, run_cli

__all__ = [
    "DATASET_VERSION_FILE",
    "RegisterDataSettings",
    "content_hash",
    "main",
    "read_dataset_version",
    "register_data",
]

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


def content_hash(train: list[dict[str, Any]], val: list[dict[str, Any]]) -> str:
    """SHA-256 of both record lists (each sorted by ``image_url``, keys sorted): equal data, equal hash."""

    def canonical(records: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True, separators=(",", ":")) for r in records)

    text = json.dumps({"train": canonical(train), "val": canonical(val)}, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _unchanged(registry: Registry, names: dict[str, str], digest: str) -> dict[str, Asset] | None:
    """The newest versions when each carries ``digest`` (and no other asset does), else None."""
    found: dict[str, Asset] = {}
    for key, name in names.items():
        latest = registry.latest_data(name)
        if latest is None or latest[1].get(CONTENT_HASH_TAG) != digest:
            return None
        found[key] = latest[0]
    return found


def register_data(settings: RegisterDataSettings, ml_client: Any = None) -> dict[str, Any]:
    """Register the MLTables when their content changed; returns what ``dataset_version.json`` holds."""
    # everything checked before the first registration: a failed step registers nothing
    check_output_folder(settings.output_path, "output folder (DATASET_VERSION_OUTPUT_PATH)")
    train_records = read_mltable(settings.train_input_path, "training")
    if not train_records:
        raise DatasetError(f"training MLTable {settings.train_input_path} holds no records")
    val_records = (
        [] if settings.val_input_path is None else read_mltable(settings.val_input_path, "validation")
    )
    registry = open_registry(settings, ml_client)
    digest = content_hash(train_records, val_records)
    names = {"train": settings.data_asset_name}
    if val_records:
        names["val"] = f"{settings.data_asset_name}-val"
    assets = _unchanged(registry, names, digest)
    changed = assets is None
    if assets is None:
        tags = {CONTENT_HASH_TAG: digest}
        description = f"{len(train_records)} labelled images (archai-aml register_data)"
        assets = {
            "train": registry.register_data(
                names["train"], settings.train_input_path, description=description, tags=tags
            )
        }
        if val_records and settings.val_input_path is not None:
            assets["val"] = registry.register_data(
                names["val"], settings.val_input_path, description="validation set", tags=tags
            )
    result: dict[str, Any] = {key: asdict(asset) for key, asset in assets.items()}
    result.update(data_store_name=settings.data_store_name, content_hash=digest, changed=changed)
    settings.output_path.mkdir(parents=True, exist_ok=True)
    (settings.output_path / DATASET_VERSION_FILE).write_text(json.dumps(result, indent=2), encoding="utf-8")
    for key, asset in assets.items():
        if changed:
            log.info("registered %s data %s version %d: %s", key, asset.name, asset.version, asset.uri)
        else:
            log.info(
                "%s data unchanged (%s): nothing registered, %s version %d is kept (%s)",
                key, digest[:19], asset.name, asset.version, asset.uri,
            )  # fmt: skip
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
