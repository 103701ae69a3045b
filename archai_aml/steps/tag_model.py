"""Tag best model: compare the newly registered version with the current ``best_model=true`` one by mAP and
move the tag to the better one::

    python -m archai_aml.steps.tag_model --model-metadata-path out/registered --best-model-metadata-path out/best

The new version wins when its ``mean_average_precision`` is strictly higher (a tie keeps the current best), or
when no version is marked yet. The mark moves in one write (:meth:`Registry.mark_best`): locally the MLflow
alias ``champion``, in the workspace the winner's ``best_model=true`` tag (the highest version so tagged is the
best); when the current best stays, nothing is written. ``<best-model-metadata-path>/best_model_metadata.json``
holds the chosen name and version, its mAP, the previous best version and whether the mark moved.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archai_aml.errors import ConfigError
from archai_aml.steps.register_model import read_metadata
from archai_aml.steps.registry import BEST_ALIAS, BEST_TAG, ModelVersion, RegistrySettings, open_registry
from archai_aml.steps.settings import env_field, run_cli

__all__ = ["BEST_ALIAS", "BEST_FILE", "BEST_TAG", "TagModelSettings", "main", "tag_best_model"]

log = logging.getLogger(__name__)

BEST_FILE = "best_model_metadata.json"


class TagModelSettings(RegistrySettings):
    model_base_name: str | None = env_field(
        None, env="MODEL_BASE_NAME", description="default: the metadata's name"
    )
    model_metadata_path: Path = env_field(
        env="MODEL_METADATA_PATH", description="register_model's output folder"
    )
    best_model_metadata_path: Path = env_field(
        env="BEST_MODEL_METADATA_PATH", description="folder for the result"
    )


def _map(version: ModelVersion) -> float:
    try:
        return float(version.tags.get("mean_average_precision", "nan"))
    except ValueError:
        return float("nan")


def tag_best_model(settings: TagModelSettings, ml_client: Any = None) -> dict[str, Any]:
    registry = open_registry(settings, ml_client)
    new = read_metadata(settings.model_metadata_path)
    name = settings.model_base_name or str(new["name"])
    if name != new["name"]:
        raise ConfigError(f"MODEL_BASE_NAME {name!r} does not match the registered model {new['name']!r}")
    versions = registry.model_versions(name)
    if new["version"] not in {v.version for v in versions}:
        raise ConfigError(
            f"model {name} has no version {new['version']} (versions: {[v.version for v in versions]})"
        )
    best = registry.best_version(name)
    if best is None:  # a registry from before the alias: the tag (highest mAP, then version)
        tagged = [v for v in versions if v.tags.get(BEST_TAG, "").lower() == "true"]
        best = max(tagged, key=lambda v: (_map(v), v.version)).version if tagged else None
    current = next((v for v in versions if v.version == best), None)
    new_map = float(new["mean_average_precision"])
    if current is None or current.version == new["version"] or new_map > _map(current):
        chosen, chosen_map = int(new["version"]), new_map
    else:
        chosen, chosen_map = current.version, _map(current)
    if chosen != best:
        registry.mark_best(name, chosen, best)
    result = {
        "name": name,
        "version": chosen,
        "mean_average_precision": chosen_map,
        "previous_best_version": current.version if current else None,
        "changed": current is None or current.version != chosen,
    }
    settings.best_model_metadata_path.mkdir(parents=True, exist_ok=True)
    (settings.best_model_metadata_path / BEST_FILE).write_text(json.dumps(result, indent=2), encoding="utf-8")
    log.info(
        "best model of %s: version %d (mAP %.4f; previous best %s)",
        name,
        chosen,
        chosen_map,
        result["previous_best_version"],
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(TagModelSettings, tag_best_model, argv, prog="tag_model", description=__doc__ or "")


if __name__ == "__main__":
    raise SystemExit(main())
