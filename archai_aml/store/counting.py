"""Request counting of any store (for ``--stats`` and the fleet benchmark): :class:`CountingStore`
counts the calls of the store protocol; :class:`~archai_aml.store.azure.http_counter.HttpCounter` counts
the HTTP requests an Azure store really sends."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from archai_aml.store.base import Store

__all__ = ["CountingStore"]


def _counted(method: str, key: str | None = None) -> Any:
    """A method that counts one call under ``key`` (default: its name) and delegates it to ``inner``."""

    def call(self: CountingStore, *args: Any, **kwargs: Any) -> Any:
        self._count(key or method)
        return getattr(self.inner, method)(*args, **kwargs)

    call.__name__ = call.__qualname__ = method
    return call


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

    # every call of the protocol goes to ``inner``; blob transfers count as "upload"/"download" whatever the API
    get = _counted("get")
    create = _counted("create")
    replace = _counted("replace")
    merge = _counted("merge")
    cas_merge = _counted("cas_merge")
    delete = _counted("delete")
    query = _counted("query")
    query_range = _counted("query_range")
    partitions = _counted("partitions")
    upload_bytes = _counted("upload_bytes", "upload")
    upload = _counted("upload")
    download_bytes = _counted("download_bytes", "download")
    download = _counted("download")
    list_blobs = _counted("list_blobs")
    list_blob_info = _counted("list_blob_info", "list_blobs")
    delete_blobs = _counted("delete_blobs")

    def with_table(self, table_name: str) -> Store:
        return CountingStore(self.inner.with_table(table_name), self.counts, self._lock)

    def close(self) -> None:
        self.inner.close()
