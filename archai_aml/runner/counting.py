"""Request counting (for ``--stats`` and the fleet benchmark): :class:`CountingStore` counts the calls of
the store protocol; :class:`~archai_aml.runner.http_counter.HttpCounter` counts the HTTP requests an Azure
store really sends."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from archai_aml.store.base import Entity, Store, Value

__all__ = ["CountingStore"]


class CountingStore(Store):
    """Delegates every call to ``inner`` and counts it by method name (tables made by
    :meth:`with_table` share the counter). Counts calls of the protocol, one per request for entity
    operations; a folder upload or download counts once."""

    def __init__(self, inner: Store, counts: Counter[str] | None = None, lock: threading.Lock | None = None):
        self.inner = inner
        self.table_name = inner.table_name
        self.counts: Counter[str] = Counter() if counts is None else counts
        self._lock = lock or threading.Lock()

    def _count(self, method: str) -> None:
        with self._lock:
            self.counts[method] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def get(self, partition: str, name: str) -> Entity | None:
        self._count("get")
        return self.inner.get(partition, name)

    def create(self, partition: str, name: str, values: Mapping[str, Any] | None = None) -> Entity:
        self._count("create")
        return self.inner.create(partition, name, values)

    def replace(
        self, partition: str, name: str, values: Mapping[str, Any], *, expected_version: str | None = None
    ) -> Entity:
        self._count("replace")
        return self.inner.replace(partition, name, values, expected_version=expected_version)

    def merge(
        self, partition: str, name: str, values: Mapping[str, Any], *, expected_version: str | None = None
    ) -> Entity:
        self._count("merge")
        return self.inner.merge(partition, name, values, expected_version=expected_version)

    def cas_merge(self, entity: Entity, values: Mapping[str, Any]) -> Entity:
        self._count("cas_merge")
        return self.inner.cas_merge(entity, values)

    def delete(self, partition: str, name: str, *, expected_version: str | None = None) -> bool:
        self._count("delete")
        return self.inner.delete(partition, name, expected_version=expected_version)

    def query(
        self,
        partition: str,
        *,
        status: str | Collection[str] | None = None,
        status_not: str | Collection[str] | None = None,
        names: Collection[str] | None = None,
        where: Mapping[str, Value] | None = None,
    ) -> list[Entity]:
        self._count("query")
        return self.inner.query(partition, status=status, status_not=status_not, names=names, where=where)

    def partitions(self) -> list[str]:
        self._count("partitions")
        return self.inner.partitions()

    def upload_bytes(
        self, partition: str, name: str, blob_name: str, data: bytes, *, overwrite: bool = True
    ) -> str:
        self._count("upload")
        return self.inner.upload_bytes(partition, name, blob_name, data, overwrite=overwrite)

    def upload(
        self,
        partition: str,
        name: str,
        local_path: str | Path,
        *,
        blob_name: str | None = None,
        overwrite: bool = True,
        max_concurrency: int | None = None,
    ) -> list[str]:
        self._count("upload")
        return self.inner.upload(
            partition,
            name,
            local_path,
            blob_name=blob_name,
            overwrite=overwrite,
            max_concurrency=max_concurrency,
        )

    def download_bytes(self, partition: str, name: str, blob_name: str) -> bytes:
        self._count("download")
        return self.inner.download_bytes(partition, name, blob_name)

    def download(
        self,
        partition: str,
        name: str,
        target_folder: str | Path,
        *,
        blob_names: Sequence[str] | None = None,
        pattern: str | None = None,
        max_concurrency: int | None = None,
    ) -> list[Path]:
        self._count("download")
        return self.inner.download(
            partition,
            name,
            target_folder,
            blob_names=blob_names,
            pattern=pattern,
            max_concurrency=max_concurrency,
        )

    def list_blobs(self, partition: str, name: str | None = None, *, pattern: str | None = None) -> list[str]:
        self._count("list_blobs")
        return self.inner.list_blobs(partition, name, pattern=pattern)

    def delete_blobs(self, partition: str, name: str, *, pattern: str | None = None) -> int:
        self._count("delete_blobs")
        return self.inner.delete_blobs(partition, name, pattern=pattern)

    def with_table(self, table_name: str) -> Store:
        return CountingStore(self.inner.with_table(table_name), self.counts, self._lock)

    def close(self) -> None:
        self.inner.close()
