"""Datastore paths: ``azureml://datastores/<ds>/paths/<p>`` and where they are on this machine.

The data store of the pipeline is the project's :class:`~archai_aml.store.Store` blob side: the datastore
``<ds>`` points at the store's blob container, and ``<p> = <partition>/<name>/<rest>`` is the blob
``<rest>`` of the store's entity folder ``<partition>/<name>``. With the embedded store (the default) the
container is the folder ``<store path>/blobs/<container>``, so a datastore URI resolves to a local file.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from archai_aml.config import StoreConfig
from archai_aml.errors import ConfigError, DatasetError
from archai_aml.store import store_config_from_env
from archai_aml.store.embedded.settings import EmbeddedStoreConfig
from archai_aml.store.rules import check_blob_name, safe_blob_path

__all__ = ["datastore_uri", "local_datastore_folder", "resolve_local", "split_store_path"]

_URI = re.compile(
    r"^azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/)?datastores/([^/]+)/paths/(.*)$"
)


def datastore_uri(datastore: str, path: str) -> str:
    """``azureml://datastores/<datastore>/paths/<path>`` (the path checked: no ``..``, not absolute)."""
    check_blob_name(path.strip("/"))
    return f"azureml://datastores/{datastore}/paths/{path.strip('/')}"


def split_store_path(path: str) -> tuple[str, str, str | None]:
    """``data/images[/more]`` -> (partition ``data``, entity ``images``, blob prefix ``more`` or None)."""
    clean = path.strip("/")
    check_blob_name(clean)
    parts = PurePosixPath(clean).parts
    if len(parts) < 2:
        raise ConfigError(
            f"datastore path {path!r} needs at least two parts (<folder>/<name>, e.g. data/images)"
        )
    rest = "/".join(parts[2:]) or None
    return parts[0], parts[1], rest


def local_datastore_folder(store_config: StoreConfig | None = None) -> Path:
    """The folder a datastore URI's path is relative to on this machine: the embedded store's container."""
    config = store_config or store_config_from_env() or StoreConfig()
    if not isinstance(config, EmbeddedStoreConfig):
        raise ConfigError(
            "datastore URIs resolve to local files only with the embedded store: set ARCHAI_AML_STORE to its "
            "folder, or pass local folders instead of azureml:// URIs"
        )
    return Path(config.path).expanduser().resolve() / "blobs" / config.container_name


def resolve_local(uri: str, root: Path) -> Path:
    """The local file of ``uri``: a datastore URI under ``root``, a ``file://`` or plain path as it is."""
    m = _URI.match(uri)
    if m:
        try:
            return safe_blob_path(root, m.group(2).strip("/"))
        except Exception as exc:
            raise DatasetError(f"image_url {uri!r} cannot be resolved under {root}: {exc}") from None
    if uri.startswith("file://"):
        return Path(uri[len("file://") :])
    if "://" in uri:
        raise DatasetError(f"image_url {uri!r} is neither a datastore URI nor a local path")
    return Path(uri)
