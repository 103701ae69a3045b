"""Where the pipeline registers data assets and models: MLflow locally, the Azure ML workspace on Azure.

:class:`MlflowRegistry` (the embedded default) keeps both in one MLflow tracking store (``sqlite:///...``):

- a model is an MLflow registered model; each registration is a new version (MLflow numbers them in the same
  database transaction, so two concurrent registrations never get the same version);
- a data asset is a registered model tagged ``archai_aml.asset_type=data`` whose versions point at a run of
  the experiment ``data-assets`` holding the MLTable folder; its URI is ``models:/<name>/<version>``.

:class:`WorkspaceRegistry` goes through ``MLClient.data`` / ``MLClient.models``: a version left unset is
numbered by the service (the SDK's auto-increment); a data asset's URI is ``azureml:<name>:<version>``.

Tags are strings in both. A data asset version records :data:`CONTENT_HASH_TAG` (the hash of its records,
:func:`archai_aml.steps.register_data.content_hash`), so that unchanged data is not registered again.

The best model is marked in one write: locally the registered model's alias :data:`BEST_ALIAS`
(``set_registered_model_alias`` points the alias at the new version, atomically); in the workspace, which has
no aliases, the ``best_model=true`` tag of the winning version, and the best version is the *highest* version
so tagged (a version is tagged only when it beats the current best; the tags of earlier winners are cleared
afterwards, for people reading the studio, but no reader depends on that second write).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from archai_aml.errors import ConfigError, WorkspaceError
from archai_aml.steps.settings import StepSettings, env_field

__all__ = [
    "Asset",
    "MlflowRegistry",
    "ModelVersion",
    "Registry",
    "RegistrySettings",
    "WorkspaceRegistry",
    "default_tracking_uri",
    "open_registry",
]

log = logging.getLogger(__name__)

DATA_EXPERIMENT = "data-assets"
ASSET_TYPE_TAG = "archai_aml.asset_type"
CONTENT_HASH_TAG = "content_hash"
BEST_ALIAS = "champion"
BEST_TAG = "best_model"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def check_asset_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"asset name {name!r}: use letters, digits, '.', '_', '-' (starting with a letter or digit)"
        )
    return name


@dataclass
class Asset:
    name: str
    version: int
    uri: str


@dataclass
class ModelVersion:
    version: int
    tags: dict[str, str] = field(default_factory=dict)


class Registry(Protocol):
    def register_data(
        self, name: str, folder: Path, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Asset: ...

    def latest_data(self, name: str) -> tuple[Asset, dict[str, str]] | None:
        """The newest version of data asset ``name`` and its tags, or None."""
        ...

    def best_version(self, name: str) -> int | None:
        """The version marked best, or None."""
        ...

    def mark_best(self, name: str, version: int, previous: int | None) -> None:
        """Mark ``version`` best in one write (``previous``: the version marked before, or None)."""
        ...

    def register_model(
        self, name: str, folder: Path, *, run_id: str | None, tags: Mapping[str, str], description: str = ""
    ) -> Asset: ...

    def model_versions(self, name: str) -> list[ModelVersion]: ...

    def set_model_tags(self, name: str, version: int, tags: Mapping[str, str | None]) -> None: ...


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else a SQLite store under ``.archai_aml/mlflow/`` of the current folder."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return "sqlite:///" + str((Path(".archai_aml") / "mlflow" / "mlflow.db").resolve())


def _sqlite_folder(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]).parent if uri.startswith("sqlite:///") else None


def mlflow_client(tracking_uri: str) -> Any:
    """An MlflowClient on ``tracking_uri`` (tracking and registry). A new SQLite database is created under a
    file lock: two pipeline nodes that start together (``register_data`` and ``train``) would otherwise both
    run MLflow's table migrations on the same file, and one fails (``alembic ... add_column``)."""
    from mlflow import MlflowClient

    folder = _sqlite_folder(tracking_uri)
    if folder is None:
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    folder.mkdir(parents=True, exist_ok=True)
    with _file_lock(folder / ".mlflow-init.lock"):  # the client creates / migrates the tables on creation
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        client.search_registered_models(max_results=1)  # and the registry store, lazily: now, under the lock
    return client


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (a concurrent first start may fail there)
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_experiment(client: Any, name: str, tracking_uri: str) -> str:
    """The id of experiment ``name``; created with its artifacts beside a SQLite store (not under the cwd)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    folder = _sqlite_folder(tracking_uri)
    location = (folder / "artifacts" / name).resolve().as_uri() if folder is not None else None
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except Exception:  # created by another process in between
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


class MlflowRegistry:
    """Models and data assets in an MLflow tracking store (see the module docstring)."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.client = mlflow_client(self.tracking_uri)

    def _registered(self, name: str, tags: Mapping[str, str]) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(check_asset_name(name), tags=dict(tags))
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(getattr(exc, "error_code", "")) + str(exc):
                raise

    def register_data(
        self, name: str, folder: Path, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Asset:
        self._registered(name, {ASSET_TYPE_TAG: "data"})
        run = self.client.create_run(
            ensure_experiment(self.client, DATA_EXPERIMENT, self.tracking_uri), tags={"asset_name": name}
        )
        run_id = run.info.run_id
        self.client.log_artifacts(run_id, str(folder), "data")
        self.client.set_terminated(run_id)
        version = self.client.create_model_version(
            name,
            source=f"runs:/{run_id}/data",
            run_id=run_id,
            tags={ASSET_TYPE_TAG: "mltable", **(tags or {})},
            description=description,
        )
        return Asset(name, int(version.version), f"models:/{name}/{version.version}")

    def latest_data(self, name: str) -> tuple[Asset, dict[str, str]] | None:
        versions = self.model_versions(name)
        if not versions:
            return None
        last = versions[-1]
        return Asset(name, last.version, f"models:/{name}/{last.version}"), last.tags

    def best_version(self, name: str) -> int | None:
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.get_model_version_by_alias(check_asset_name(name), BEST_ALIAS).version)
        except MlflowException:  # no alias yet (or no model)
            return None

    def mark_best(self, name: str, version: int, previous: int | None) -> None:
        self.client.set_registered_model_alias(name, BEST_ALIAS, str(version))

    def register_model(
        self, name: str, folder: Path, *, run_id: str | None, tags: Mapping[str, str], description: str = ""
    ) -> Asset:
        self._registered(name, {ASSET_TYPE_TAG: "model"})
        source = str(folder.resolve())
        if run_id:  # keep a copy with the training run (the step's output folder may be cleaned up)
            self.client.log_artifacts(run_id, source, "registered_model")
            source = f"runs:/{run_id}/registered_model"
        version = self.client.create_model_version(
            name, source=source, run_id=run_id, tags=dict(tags), description=description
        )
        return Asset(name, int(version.version), f"models:/{name}/{version.version}")

    def model_versions(self, name: str) -> list[ModelVersion]:
        versions = self.client.search_model_versions(f"name='{check_asset_name(name)}'")
        return sorted(
            (ModelVersion(int(v.version), dict(v.tags or {})) for v in versions), key=lambda v: v.version
        )

    def set_model_tags(self, name: str, version: int, tags: Mapping[str, str | None]) -> None:
        for key, value in tags.items():
            if value is None:
                self.client.delete_model_version_tag(name, str(version), key)
            else:
                self.client.set_model_version_tag(name, str(version), key, value)

    def data_folder(self, uri: str, target: Path) -> Path:
        """Download a data asset (``models:/<name>/<version>``) into ``target``; returns its folder."""
        import mlflow.artifacts

        m = re.match(r"^models:/([^/]+)/(\d+)$", uri)
        if not m:
            raise ConfigError(f"{uri!r} is not a local data asset URI (models:/<name>/<version>)")
        source = self.client.get_model_version_download_uri(m.group(1), m.group(2))
        path = mlflow.artifacts.download_artifacts(
            source, dst_path=str(target), tracking_uri=self.tracking_uri
        )
        return Path(path)


class WorkspaceRegistry:
    """Models and data assets in an Azure ML workspace, through ``MLClient`` (see the module docstring)."""

    def __init__(self, ml_client: Any) -> None:
        self.ml_client = ml_client

    def register_data(
        self, name: str, folder: Path, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> Asset:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data

        asset = Data(
            name=check_asset_name(name),
            path=str(folder),
            type=AssetTypes.MLTABLE,
            description=description or None,
            tags=dict(tags or {}),
        )
        try:
            created = self.ml_client.data.create_or_update(asset)
        except Exception as exc:
            raise WorkspaceError(f"could not register data asset {name}: {exc}") from exc
        return Asset(name, int(created.version), f"azureml:{name}:{created.version}")

    def latest_data(self, name: str) -> tuple[Asset, dict[str, str]] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            found = list(self.ml_client.data.list(name=check_asset_name(name)))
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise WorkspaceError(f"could not list the versions of data asset {name}: {exc}") from exc
        if not found:
            return None
        last = max(found, key=lambda d: int(d.version))
        return Asset(name, int(last.version), f"azureml:{name}:{last.version}"), dict(last.tags or {})

    def best_version(self, name: str) -> int | None:
        tagged = [v.version for v in self.model_versions(name) if v.tags.get(BEST_TAG, "").lower() == "true"]
        return max(tagged) if tagged else None

    def mark_best(self, name: str, version: int, previous: int | None) -> None:
        self.set_model_tags(name, version, {BEST_TAG: "true"})  # the one write readers depend on
        for v in self.model_versions(name):  # tidy-up for people: earlier winners lose their tag
            if v.version < version and v.tags.get(BEST_TAG, "").lower() == "true":
                try:
                    self.set_model_tags(name, v.version, {BEST_TAG: "false"})
                except WorkspaceError as exc:
                    log.warning("the best model is %s:%d; clearing the old tag of %d failed: %s",
                                name, version, v.version, exc)  # fmt: skip

    def register_model(
        self, name: str, folder: Path, *, run_id: str | None, tags: Mapping[str, str], description: str = ""
    ) -> Asset:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        model = Model(
            name=check_asset_name(name),
            path=str(folder),
            type=AssetTypes.MLFLOW_MODEL,
            tags=dict(tags),
            properties={"run_id": run_id} if run_id else None,
            description=description or None,
        )
        try:
            created = self.ml_client.models.create_or_update(model)
        except Exception as exc:
            raise WorkspaceError(f"could not register model {name}: {exc}") from exc
        return Asset(name, int(created.version), f"azureml:{name}:{created.version}")

    def model_versions(self, name: str) -> list[ModelVersion]:
        models = self.ml_client.models.list(name=check_asset_name(name))
        return sorted(
            (ModelVersion(int(m.version), dict(m.tags or {})) for m in models), key=lambda v: v.version
        )

    def set_model_tags(self, name: str, version: int, tags: Mapping[str, str | None]) -> None:
        model = self.ml_client.models.get(name=name, version=str(version))
        merged = dict(model.tags or {})
        for key, value in tags.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        model.tags = merged
        try:
            self.ml_client.models.create_or_update(model)
        except Exception as exc:
            raise WorkspaceError(f"could not update the tags of model {name}:{version}: {exc}") from exc


class RegistrySettings(StepSettings):
    """The registry fields shared by the steps that register or tag."""

    registry: Literal["mlflow", "workspace"] = env_field("mlflow", env="ARCHAI_AML_REGISTRY")
    tracking_uri: str | None = env_field(None, env="MLFLOW_TRACKING_URI", description="MLflow tracking store")
    subscription_id: str | None = env_field(None, env="AZURE_SUBSCRIPTION_ID")
    resource_group: str | None = env_field(None, env="AML_RESOURCE_GROUP")
    workspace_name: str | None = env_field(None, env="AML_WORKSPACE_NAME")
    identity_client_id: str | None = env_field(None, env="AML_IDENTITY_CLIENT_ID")

    def ml_client(self) -> Any:
        """An MLClient on the configured workspace (inside an Azure ML job, the job's own by default)."""
        env = os.environ
        sub = self.subscription_id or env.get("AZUREML_ARM_SUBSCRIPTION")
        group = self.resource_group or env.get("AZUREML_ARM_RESOURCEGROUP")
        name = self.workspace_name or env.get("AZUREML_ARM_WORKSPACE_NAME")
        if not (sub and group and name):
            raise ConfigError(
                "the workspace registry needs AZURE_SUBSCRIPTION_ID, AML_RESOURCE_GROUP and AML_WORKSPACE_NAME "
                "(set inside Azure ML jobs as AZUREML_ARM_*)"
            )
        from azure.ai.ml import MLClient

        from archai_aml.azure_auth import azure_credential

        return MLClient(
            credential=azure_credential(self.identity_client_id),
            subscription_id=sub,
            resource_group_name=group,
            workspace_name=name,
        )


def open_registry(settings: RegistrySettings, ml_client: Any = None) -> Registry:
    """The registry the settings name (``ml_client`` given: the workspace one, on that client)."""
    if ml_client is not None or settings.registry == "workspace":
        return WorkspaceRegistry(ml_client if ml_client is not None else settings.ml_client())
    return MlflowRegistry(settings.tracking_uri)
