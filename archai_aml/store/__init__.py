"""Status store: the :class:`Store` protocol, its backends, and leases on top of compare-and-swap."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from archai_aml.config import ArchaiAmlConfig, StoreConfig, load_config
from archai_aml.errors import ConfigError
from archai_aml.plugins import STORES
from archai_aml.store.base import BlobInfo, Entity, Store, Value
from archai_aml.store.leases import Lease, LeaseManager
from archai_aml.store.rules import safe_blob_path

__all__ = [
    "BlobInfo",
    "Entity",
    "Lease",
    "LeaseManager",
    "Store",
    "Value",
    "available_stores",
    "open_store",
    "register_store",
    "resolve_store_config",
    "safe_blob_path",
    "store_config_from_env",
]


ENV_STORE = "ARCHAI_AML_STORE"
ENV_TABLE = "ARCHAI_AML_STORE_TABLE"
ENV_CONTAINER = "ARCHAI_AML_STORE_CONTAINER"
ENV_TABLE_URL = "ARCHAI_AML_STORE_TABLE_URL"
ENV_BLOB_URL = "ARCHAI_AML_STORE_BLOB_URL"
ENV_CLIENT_ID = "ARCHAI_AML_STORE_CLIENT_ID"
ENV_ANCHOR = "MODEL_STORAGE_CONNECTION_STRING"


def store_config_from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> StoreConfig | None:
    """A store configuration from the environment, or None when nothing is set.

    - ``ARCHAI_AML_STORE``: a folder (the embedded store) or an Azure storage connection string (anything
      containing ``=``, e.g. ``UseDevelopmentStorage=true``); ``MODEL_STORAGE_CONNECTION_STRING`` (the
      anchor's variable) is read as a connection string.
    - ``ARCHAI_AML_STORE_TABLE_URL`` + ``ARCHAI_AML_STORE_BLOB_URL``: the identity form used inside Azure ML
      jobs, with ``ARCHAI_AML_STORE_CLIENT_ID`` naming a user-assigned managed identity. No secret.
    - ``ARCHAI_AML_STORE_TABLE`` / ``ARCHAI_AML_STORE_CONTAINER`` override the table and container names.
    """
    env = os.environ if env is None else env
    try:
        return _config_from_env(env, overrides)
    except ValidationError as exc:
        raise ConfigError(_env_error(exc, env)) from None


def _env_error(exc: ValidationError, env: Mapping[str, str]) -> str:
    """The pydantic error of a store built from the environment, each field named by its variable."""
    variables = {"table_name": ENV_TABLE, "container_name": ENV_CONTAINER}
    lines = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        variable = variables.get(field)
        if variable is not None:
            lines.append(f"{variable}={env.get(variable, '')!r}: {error['msg']}")
        else:
            source = ENV_STORE if env.get(ENV_STORE) else ENV_ANCHOR if env.get(ENV_ANCHOR) else ENV_TABLE_URL
            lines.append(f"{source} ({field or 'store'}): {error['msg']}")
    return "invalid store settings in the environment: " + "; ".join(lines)


def _config_from_env(env: Mapping[str, str], overrides: Mapping[str, Any]) -> StoreConfig | None:
    names: dict[str, Any] = {}
    if env.get(ENV_TABLE):
        names["table_name"] = env[ENV_TABLE]
    if env.get(ENV_CONTAINER):
        names["container_name"] = env[ENV_CONTAINER]
    names.update(overrides)
    if names:
        StoreConfig.model_validate(
            names
        )  # a bad name is reported (naming its variable) even when no store is set
    value = env.get(ENV_STORE) or env.get(ENV_ANCHOR)
    if value:
        if "=" in value:
            return _store({"backend": "azure", "connection_string": SecretStr(value), **names})
        return _store({"backend": "embedded", "path": Path(value), **names})
    if env.get(ENV_TABLE_URL) and env.get(ENV_BLOB_URL):
        return _store(
            {
                "backend": "azure",
                "table_url": env[ENV_TABLE_URL],
                "blob_url": env[ENV_BLOB_URL],
                "managed_identity_client_id": env.get(ENV_CLIENT_ID) or None,
                **names,
            }
        )
    return None


def _store(data: Mapping[str, Any]) -> StoreConfig:
    config: StoreConfig = STORES.validate(data)  # type: ignore[assignment]
    return config


def resolve_store_config(config_file: str | os.PathLike[str] | None) -> tuple[ArchaiAmlConfig, StoreConfig]:
    """The configuration and the store a command works on, by one rule for every command: the ``store:``
    section of ``config_file`` when one is given, else the environment (:func:`store_config_from_env`), else
    the embedded default."""
    config = load_config(config_file)
    if config_file:
        return config, config.store
    return config, store_config_from_env() or config.store


def job_environment(
    config: StoreConfig, *, include_secrets: bool = False, identity_client_id: str | None = None
) -> dict[str, str]:
    """Environment variables that let a job (training script, runner) open the same store.

    ``identity_client_id`` (the job's user-assigned identity, ``aml.identity_client_id``) is what the job
    authenticates with when the store configuration names no ``managed_identity_client_id`` of its own.

    Without ``include_secrets`` (what goes into job definitions) an Azure store is described by its
    endpoints only, and the job authenticates with its identity; an Azure store that is known only by a
    connection string cannot be described that way and yields just the table and container names, so the
    caller must pass the connection string through the executor's own environment
    (``include_secrets=True``, for local subprocesses only, never a job definition).
    """
    env = _store_environment(config, include_secrets)
    if identity_client_id and ENV_CLIENT_ID not in env:
        env[ENV_CLIENT_ID] = identity_client_id
    return env


def _store_environment(config: StoreConfig, include_secrets: bool) -> dict[str, str]:
    env = {ENV_TABLE: config.table_name, ENV_CONTAINER: config.container_name}
    env.update(_settings(config).job_environment(include_secrets))
    return env


def _settings(config: StoreConfig | None) -> StoreConfig:
    """``config`` as the model of the backend it names (a plain ``StoreConfig`` is validated again)."""
    if config is None:
        return StoreConfig()
    if type(config) is StoreConfig:
        return STORES.validate(config)  # type: ignore[return-value]
    return config


def register_store(
    name: str, factory: str | Callable[..., Store] | None = None, *, settings: type[StoreConfig] | None = None
) -> None:
    """Register a store backend under ``name`` (``store: {backend: name}``): its ``factory`` (called with
    ``config=<its settings>`` and :func:`open_store`'s keyword arguments, unless ``settings`` overrides
    :meth:`~archai_aml.config.StoreConfig.factory_kwargs`) and/or its ``settings`` model (a
    :class:`~archai_aml.config.StoreConfig` subclass). Installed packages use the ``archai_aml.stores``
    entry-point group instead (docs/architecture.md)."""
    STORES.register(name, factory, settings=settings)


def available_stores() -> list[str]:
    """The registered store backends."""
    return STORES.names()


def open_store(config: StoreConfig | None = None, **kwargs: Any) -> Store:
    """Open the store a configuration names (the embedded default when ``config`` is None).

    Extra keyword arguments go to the backend (for Azure, e.g. ``per_call_policies``; for any backend
    whose settings offer one, ``http_counter=config.http_counter()``).
    """
    config = _settings(config)
    store = config.create(**kwargs)
    if not isinstance(store, Store):
        raise ConfigError(f"the factory of store backend {config.backend!r} did not return a Store")
    store.config = config  # lets callers describe this store to jobs (job_environment)
    return store
