"""What the steps' nodes must be told when a pipeline is launched here: the store, the MLflow tracking store
and the datastore folder, resolved from the folder the user launched the pipeline in.

:class:`~archai_aml.pipelines.local.LocalJobRunner` runs every node in the node's code folder (as Azure ML
runs a job in its code snapshot), so a relative default such as ``.archai_aml/store`` or
``sqlite:///.archai_aml/mlflow/mlflow.db`` read *inside* a node would land in the source tree (the
example's folder) and miss the data the loader wrote at the launch folder. :func:`launch_environment` resolves
those defaults once, before any node starts, and returns the variables to hand to the runner (``env=``),
which passes them to every node.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from archai_aml.config import StoreConfig
from archai_aml.store import job_environment, store_config_from_env
from archai_aml.store.embedded.settings import EmbeddedStoreConfig

__all__ = ["absolute_tracking_uri", "launch_environment"]

DEFAULT_MLFLOW = Path(".archai_aml") / "mlflow" / "mlflow.db"


def absolute_tracking_uri(uri: str | None, cwd: Path) -> str:
    """``uri`` with a relative SQLite or file path made absolute against ``cwd`` (None: the default
    ``sqlite:///<cwd>/.archai_aml/mlflow/mlflow.db``); server URIs (``http://``, ``databricks``) as they are."""
    if not uri:
        return "sqlite:///" + str((cwd / DEFAULT_MLFLOW).resolve())
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        return uri if path.is_absolute() else "sqlite:///" + str((cwd / path).resolve())
    if uri.startswith("file:") or "://" in uri or ":" in uri.split("/", 1)[0]:
        return uri
    return (cwd / uri).resolve().as_uri()  # a plain folder: MLflow's file store


def launch_environment(env: Mapping[str, str] | None = None, cwd: str | Path | None = None) -> dict[str, str]:
    """The variables every node of a local pipeline gets, resolved against ``cwd`` (default: the current
    folder): ``ARCHAI_AML_STORE`` (and the table/container names; an Azure store's connection string stays a
    secret of the runner's environment, never of the pipeline), ``MLFLOW_TRACKING_URI``, and
    ``DEPLOY_LOCAL_ROOT`` (where the deploy step keeps its local endpoints) and ``ARCHAI_AML_DATASTORE_FOLDER``
    when set."""
    env = os.environ if env is None else env
    base = Path(cwd if cwd is not None else os.getcwd()).resolve()
    config = store_config_from_env(env) or StoreConfig()
    if isinstance(config, EmbeddedStoreConfig) and not Path(config.path).expanduser().is_absolute():
        config = config.model_copy(update={"path": base / Path(config.path)})
    result = job_environment(config, include_secrets=True)
    result["MLFLOW_TRACKING_URI"] = absolute_tracking_uri(env.get("MLFLOW_TRACKING_URI"), base)
    endpoints = Path(env.get("DEPLOY_LOCAL_ROOT") or ".archai_aml/endpoints").expanduser()
    result["DEPLOY_LOCAL_ROOT"] = str((base / endpoints).resolve())
    folder = env.get("ARCHAI_AML_DATASTORE_FOLDER")
    if folder:
        result["ARCHAI_AML_DATASTORE_FOLDER"] = str((base / Path(folder).expanduser()).resolve())
    return result
