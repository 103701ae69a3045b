"""Status store: the :class:`Store` protocol, its backends, and leases on top of compare-and-swap."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from archai_aml.config import StoreConfig
from archai_aml.store.base import Entity, Store, Value, safe_blob_path
from archai_aml.store.leases import Lease, LeaseManager

__all__ = [
    "Entity",
    "Lease",
    "LeaseManager",
    "Store",
    "Value",
    "open_store",
    "safe_blob_path",
    "store_config_from_env",
]


def store_config_from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> StoreConfig | None:
    """A store configuration from ``ARCHAI_AML_STORE`` or ``MODEL_STORAGE_CONNECTION_STRING``, if set.

    ``ARCHAI_AML_STORE`` is either a folder (the embedded store) or an Azure storage connection string
    (anything containing ``=``, e.g. ``UseDevelopmentStorage=true``). ``MODEL_STORAGE_CONNECTION_STRING``
    is the anchor's variable: an Azure connection string.
    """
    env = os.environ if env is None else env
    value = env.get("ARCHAI_AML_STORE") or env.get("MODEL_STORAGE_CONNECTION_STRING")
    if not value:
        return None
    if "=" in value:
        return StoreConfig(backend="azure", connection_string=SecretStr(value), **overrides)
    return StoreConfig(backend="embedded", path=Path(value), **overrides)


def open_store(config: StoreConfig | None = None, **kwargs: Any) -> Store:
    """Open the store a configuration names (the embedded default when ``config`` is None).

    Extra keyword arguments go to the backend (for Azure, e.g. ``per_call_policies``).
    """
    config = config or StoreConfig()
    if config.backend == "embedded":
        from archai_aml.store.embedded import EmbeddedStore

        return EmbeddedStore(
            config.path,
            table_name=config.table_name,
            container_name=config.container_name,
            max_concurrency=config.max_concurrency,
            **kwargs,
        )
    from archai_aml.store.azure import AzureStore

    return AzureStore.from_config(config, **kwargs)
