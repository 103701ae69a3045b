"""The embedded store: one SQLite database (WAL) and a files folder, no server.

Layout under ``path``::

    store.sqlite3                                  entities of every table (one SQL table, a ``tbl`` column)
    blobs/<container>/<partition>/<name>/<blob>    blob files, written atomically (temp file + rename)
    tmp/                                           temp files of writes in progress (same file system)

Each entity's columns are one JSON document with a type tag per value (``{"col": {"t": "i", "v": "42"}}``)
so that ``int`` (any size), ``float`` (exact ``repr``), ``bool``, ``str`` and UTC ``datetime`` at microsecond
precision round-trip exactly, and filters are evaluated in SQL (``json_extract``). Filters compare type
*and* value: ``where={"epochs": 1}`` matches neither a stored ``1.0`` nor ``True``.

``_version`` is a database-wide counter taken in the same transaction as the write, so a version is never
reused, even after a delete and re-create. Compare-and-swap is ``UPDATE ... WHERE version = ?`` inside a
``BEGIN IMMEDIATE`` transaction, checked by its row count.

Several threads and processes (fork or spawn) may use one store at once: each thread of each process gets
its own connection, opened lazily; a connection inherited through ``fork`` is never used by the child.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from archai_aml.errors import StoreError
from archai_aml.store.embedded.blobs import EmbeddedBlobSide
from archai_aml.store.embedded.codec import decode_value, encode_value
from archai_aml.store.embedded.fs import DB_FILE, _writable, os_error
from archai_aml.store.embedded.sqlite import _CONTAINER_NAME, _TABLE_NAME, EmbeddedTableSide

__all__ = ["DB_FILE", "EmbeddedStore", "decode_value", "encode_value", "os_error"]


class EmbeddedStore(EmbeddedTableSide, EmbeddedBlobSide):
    """A :class:`Store` in a local folder: SQLite (WAL) for entities, files for blobs. The default backend."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table_name: str = "status",
        container_name: str = "models",
        max_concurrency: int = 8,
        progress: bool | None = None,
        read_only: bool | None = None,
    ) -> None:
        """``progress``: the bar of folder transfers (None: on a terminal only). ``read_only``: open for
        reading only (None: when the folder or its database is not writable, e.g. an archive mounted
        read-only); writes then fail with :class:`~archai_aml.errors.ReadOnlyStoreError`."""
        if not _TABLE_NAME.match(table_name):
            raise ValueError(
                f"invalid table name {table_name!r}: 3-63 letters or digits, starting with a letter"
            )
        if not _CONTAINER_NAME.match(container_name):
            raise ValueError(
                f"invalid container name {container_name!r}: 3-63 lowercase letters, digits or '-'"
            )
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.path = Path(path).expanduser().resolve()
        self.table_name = table_name
        self.container_name = container_name
        self.max_concurrency = max_concurrency
        self.progress = progress
        self.db_path = self.path / DB_FILE
        self.blob_root = self.path / "blobs" / container_name
        self.tmp_dir = self.path / "tmp"
        self._read_only_arg = read_only
        self.read_only = not _writable(self.path) if read_only is None else read_only
        self._ro_uri: str | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[tuple[int, sqlite3.Connection]] = []
        if self.read_only:
            if not self.db_path.is_file():
                raise StoreError(
                    f"no embedded store at {self.path} (no {DB_FILE}) and the folder is read-only: "
                    "nothing to read; check the path"
                )
            return
        try:
            self.blob_root.mkdir(parents=True, exist_ok=True)
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(f"creating the embedded store at {self.path}", exc) from None
        self._init_schema()

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.path)!r}, table_name={self.table_name!r})"

    # pickling (e.g. handing the store to a spawned process) carries only the settings, never connections
    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "table_name": self.table_name,
            "container_name": self.container_name,
            "max_concurrency": self.max_concurrency,
            "progress": self.progress,
            "read_only": self._read_only_arg,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["path"],
            table_name=state["table_name"],
            container_name=state["container_name"],
            max_concurrency=state["max_concurrency"],
            progress=state.get("progress"),
            read_only=state.get("read_only"),
        )

    # ---------------------------------------------------------------------------------------- others
    def with_table(self, table_name: str) -> EmbeddedStore:
        return EmbeddedStore(
            self.path,
            table_name=table_name,
            container_name=self.container_name,
            max_concurrency=self.max_concurrency,
            progress=self.progress,
            read_only=self._read_only_arg,
        )

    def close(self) -> None:
        pid = os.getpid()
        with self._lock:
            mine = [c for p, c in self._connections if p == pid]
            self._connections = [(p, c) for p, c in self._connections if p != pid]
        for conn in mine:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing is best effort
                pass
        self._local = threading.local()
