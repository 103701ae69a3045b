"""What both deploy paths share (:mod:`~archai_aml.steps.deploy` here, :mod:`~archai_aml.steps.deploy_azure` on
Azure ML): the step's settings, the smoke request and its check, and the choice of the version to deploy."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from archai_aml.errors import ConfigError, DeployError
from archai_aml.steps.registry import RegistrySettings, check_asset_name
from archai_aml.steps.serving import check_response
from archai_aml.steps.settings import env_field

__all__ = ["DeploySettings", "candidate", "check_smoke", "refuse_worse", "smoke_image_bytes"]

log = logging.getLogger(__name__)


class DeploySettings(RegistrySettings):
    model_base_name: str = env_field("symbol-detection", env="MODEL_BASE_NAME")
    model_version: int | None = env_field(None, env="DEPLOY_MODEL_VERSION", description="default: the best")
    best_model_metadata_path: Path | None = env_field(
        None, env="BEST_MODEL_METADATA_PATH", description="tag_model's output: deploy the version it chose"
    )
    target: Literal["local", "azure"] = env_field("local", env="DEPLOY_TARGET")
    endpoint_name: str = env_field(
        "symbol-detection", env="ENDPOINT_NAME", pattern=r"^[a-zA-Z][a-zA-Z0-9-]{2,31}$"
    )
    auth_mode: Literal["key", "aad_token"] = env_field("key", env="ENDPOINT_AUTH_MODE")
    instance_type: str = env_field("Standard_DS3_v2", env="DEPLOY_INSTANCE_TYPE")
    instance_count: int = env_field(1, env="DEPLOY_INSTANCE_COUNT", ge=1)
    environment: str | None = env_field(None, env="DEPLOY_ENVIRONMENT", description="Azure: with archai-aml")
    local_root: Path = env_field(Path(".archai_aml/endpoints"), env="DEPLOY_LOCAL_ROOT")
    host: str = env_field("127.0.0.1", env="DEPLOY_HOST")
    smoke_image: Path | None = env_field(None, env="SMOKE_IMAGE", description="image of the smoke request")
    smoke_min_boxes: int = env_field(0, env="SMOKE_MIN_BOXES", ge=0)
    score_threshold: float = env_field(0.3, env="SCORE_THRESHOLD", ge=0.0, le=1.0)
    allow_worse: bool = env_field(False, env="ALLOW_WORSE_MODEL")
    start_timeout_s: float = Field(120.0, gt=0)
    output_path: Path | None = env_field(None, env="DEPLOYMENT_OUTPUT_PATH")
    stop: bool = env_field(False, description="stop the local endpoint and exit")


def smoke_image_bytes(settings: DeploySettings) -> bytes:
    """The smoke request's image: ``SMOKE_IMAGE``, else a blank 64x64 JPEG (only the schema is checked)."""
    if settings.smoke_image is not None:
        try:
            return settings.smoke_image.read_bytes()
        except OSError as exc:
            raise ConfigError(f"SMOKE_IMAGE {settings.smoke_image}: {exc}") from None
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buffer, format="JPEG")
    return buffer.getvalue()


def check_smoke(response: Any, settings: DeploySettings) -> int:
    boxes = check_response(response)
    if boxes < settings.smoke_min_boxes:
        raise DeployError(
            f"the smoke request found {boxes} box(es), SMOKE_MIN_BOXES is {settings.smoke_min_boxes}"
        )
    return boxes


def candidate(settings: DeploySettings, registry: Any) -> tuple[int, float]:
    """The version to deploy and its mAP."""
    name = check_asset_name(settings.model_base_name)
    versions = {v.version: v for v in registry.model_versions(name)}
    version = settings.model_version
    if version is None and settings.best_model_metadata_path is not None:
        from archai_aml.steps.register_model import read_metadata
        from archai_aml.steps.tag_model import BEST_FILE

        version = int(read_metadata(settings.best_model_metadata_path, BEST_FILE)["version"])
    version = version or registry.best_version(name)
    if version is None:
        raise DeployError(f"model {name} has no version marked best: run tag_model, or pass --model-version")
    if version not in versions:
        raise DeployError(f"model {name} has no version {version} (versions: {sorted(versions)})")
    try:
        return version, float(versions[version].tags.get("mean_average_precision", "nan"))
    except ValueError:
        return version, float("nan")


def refuse_worse(
    name: str, new: tuple[int, float], serving: tuple[int, float] | None, settings: DeploySettings
) -> None:
    if serving is None or settings.allow_worse or not new[1] < serving[1]:
        return
    raise DeployError(
        f"model {name} version {new[0]} (mAP {new[1]:.4f}) is worse than the serving version {serving[0]} "
        f"(mAP {serving[1]:.4f}): not deployed, version {serving[0]} keeps serving (ALLOW_WORSE_MODEL=true deploys it)"
    )


# --- here ---------------------------------------------------------------------------------------------------
