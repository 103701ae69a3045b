"""The status-store protocol: status entities with compare-and-swap, and blobs in a folder per entity.

A store holds one *table* of entities keyed by ``(partition, name)`` and one blob *container*. By
convention the partition is the experiment name and ``name`` is the model id, so an entity's blobs live
under ``<partition>/<name>/``.

Entities are plain ``dict`` objects. Their user columns hold ``int``, ``float``, ``bool``, ``str`` or
timezone-aware ``datetime`` values, which round-trip exactly (datetimes at microsecond precision, in UTC).
Four keys are reserved and filled by the store:

- ``partition`` and ``name``: the key;
- ``_version``: an opaque string that changes on every write (the table ETag; a row version in SQLite);
- ``_timestamp``: when the entity was last written (server time where the backend has one).

The rules below are :mod:`archai_aml.store.rules`, applied by every backend. Column names must be identifiers that do not start with ``_`` and are not ``partition``/``name`` or one of
the Table service's own names (``PartitionKey``, ``RowKey``, ``Timestamp``, ``etag``, ``odata*``; any case).
Partitions and names follow one key rule on every backend (:func:`key_problem`). An entity's blob names form
a file tree: ``a`` and ``a/b`` cannot both exist (:class:`~archai_aml.errors.BlobConflictError`).
``None`` is never stored: in :meth:`Store.merge` a ``None`` value removes that column.

Writes that take ``expected_version`` are compare-and-swap: they raise
:class:`~archai_aml.errors.ConcurrencyError` when the entity's version moved or the entity is gone.
Without it they are unconditional upserts.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

from archai_aml.errors import EntityExistsError
from archai_aml.store.parallel import run_parallel
from archai_aml.store.rules import (  # the shared rules; re-exported for code written against store.base
    KEY_MAX_BYTES,
    MAX_COLUMNS,
    RESERVED_KEYS,
    SERVICE_COLUMNS,
    as_float,
    as_set,
    blob_conflicts,
    check_blob_name,
    check_column,
    check_column_count,
    check_key,
    conflict_error,
    key_problem,
    matching,
    requested_blobs,
    safe_blob_path,
    to_utc,
    upload_plan,
    user_columns,
)

if TYPE_CHECKING:
    from archai_aml.config import StoreConfig

__all__ = [
    "KEY_MAX_BYTES",
    "MAX_COLUMNS",
    "RESERVED_KEYS",
    "SERVICE_COLUMNS",
    "BlobInfo",
    "Entity",
    "Store",
    "Value",
    "as_float",
    "as_set",
    "blob_conflicts",
    "check_blob_name",
    "check_column",
    "check_column_count",
    "check_key",
    "conflict_error",
    "key_problem",
    "matching",
    "requested_blobs",
    "safe_blob_path",
    "to_utc",
    "upload_plan",
    "user_columns",
]


@dataclass(frozen=True)
class BlobInfo:
    """What a blob listing says of one blob: its size in bytes and the hex MD5 of its content (the hash the
    Blob service keeps as ``Content-MD5``; None where the backend does not know it)."""

    size: int
    md5: str | None = None


Value: TypeAlias = int | float | bool | str | datetime
Entity: TypeAlias = dict[str, Any]


class Store(abc.ABC):
    """A status table plus a blob container. See the module docstring for the data model."""

    #: Name of the table this store reads and writes.
    table_name: str
    #: The configuration this store was opened from (set by ``open_store``; None when built directly).
    config: StoreConfig | None = None

    # ----------------------------------------------------------------------------------------- entities
    @abc.abstractmethod
    def get(self, partition: str, name: str) -> Entity | None:
        """The entity, or ``None`` if it does not exist."""

    @abc.abstractmethod
    def create(self, partition: str, name: str, values: Mapping[str, Any] | None = None) -> Entity:
        """Insert a new entity; :class:`EntityExistsError` if it already exists (an atomic insert)."""

    def get_or_create(self, partition: str, name: str, defaults: Mapping[str, Any] | None = None) -> Entity:
        """The entity, created with ``defaults`` if it did not exist (safe when several processes race)."""
        entity = self.get(partition, name)
        if entity is not None:
            return entity
        try:
            return self.create(partition, name, defaults)
        except EntityExistsError:
            entity = self.get(partition, name)
            if entity is None:  # created then deleted in between: try once more
                return self.create(partition, name, defaults)
            return entity

    @abc.abstractmethod
    def replace(
        self, partition: str, name: str, values: Mapping[str, Any], *, expected_version: str | None = None
    ) -> Entity:
        """Make the entity's columns exactly ``values`` (upsert without ``expected_version``)."""

    @abc.abstractmethod
    def merge(
        self, partition: str, name: str, values: Mapping[str, Any], *, expected_version: str | None = None
    ) -> Entity:
        """Set the given columns (``None`` removes one), keep the others; upsert without ``expected_version``.

        Returns the whole entity after the write, with its new ``_version``.
        """

    def cas_merge(self, entity: Entity, values: Mapping[str, Any]) -> Entity:
        """Compare-and-swap merge onto an entity you read whole (from :meth:`get`, :meth:`query` or a write).

        Sets ``values`` (``None`` removes a column) only if the entity is still at ``entity["_version"]``,
        else :class:`~archai_aml.errors.ConcurrencyError` (also when it was deleted). Since nothing changed
        since ``entity`` was read, the entity after the write is ``entity`` plus ``values``: backends return
        it without reading it back, so this is one request where :meth:`merge` may take two (Azure).
        """
        return self.merge(
            entity["partition"], entity["name"], values, expected_version=str(entity["_version"])
        )

    @abc.abstractmethod
    def delete(self, partition: str, name: str, *, expected_version: str | None = None) -> bool:
        """Delete the entity (not its blobs). ``False`` if it did not exist (and no version was expected)."""

    @abc.abstractmethod
    def query(
        self,
        partition: str,
        *,
        status: str | Collection[str] | None = None,
        status_not: str | Collection[str] | None = None,
        names: Collection[str] | None = None,
        where: Mapping[str, Value] | None = None,
    ) -> list[Entity]:
        """Entities of ``partition`` matching every given filter, evaluated by the server.

        ``status``: the ``status`` column equals one of these; ``status_not``: it equals none of these (rows
        without a status match); ``names``: the name is one of these; ``where``: each column equals its value.
        Ordered by name.
        """

    @abc.abstractmethod
    def query_range(
        self, partition: str, *, after: str | None = None, below: str | None = None, limit: int
    ) -> list[Entity]:
        """At most ``limit`` entities of ``partition`` whose names sort after ``after`` and before ``below``
        (both exclusive, None: no bound), in name order: the head of a key range, bounded whatever the
        partition holds (one request on Azure, for up to 1,000 entities; one indexed read in SQLite).

        Both backends order ASCII names the same way (byte order); use ASCII keys where the order matters.
        """

    @abc.abstractmethod
    def partitions(self) -> list[str]:
        """Every partition (experiment) that holds at least one entity, sorted."""

    # -------------------------------------------------------------------------------------------- blobs
    @abc.abstractmethod
    def upload_bytes(
        self, partition: str, name: str, blob_name: str, data: bytes, *, overwrite: bool = True
    ) -> str:
        """Write one blob ``<partition>/<name>/<blob_name>``; returns its full name."""

    def upload_blobs(
        self,
        partition: str,
        name: str,
        blobs: Mapping[str, bytes],
        *,
        overwrite: bool = True,
        max_concurrency: int = 8,
        on_uploaded: Callable[[str], None] | None = None,
    ) -> list[str]:
        """Write several in-memory blobs of one entity, at most ``max_concurrency`` at once; returns their full
        names. Every name is checked (against each other and the stored blobs) before anything is written.
        ``on_uploaded(blob_name)`` is called, from the transfer thread, as each blob arrives. On the first
        failure, or Ctrl-C, no new upload starts, those in flight finish, and the error is raised."""
        names = [check_blob_name(blob) for blob in blobs]
        put = self._checked_writer(partition, name, names, overwrite=overwrite)

        def send(blob: str) -> str:
            full = put(blob, blobs[blob])
            if on_uploaded is not None:
                on_uploaded(blob)
            return full

        return run_parallel(send, names, max_concurrency)

    def _checked_writer(
        self, partition: str, name: str, blob_names: Sequence[str], *, overwrite: bool
    ) -> Callable[[str, bytes], str]:
        """For :meth:`upload_blobs`: check ``blob_names`` as one tree with the stored blobs (raising
        :class:`BlobConflictError`), then return ``write(blob_name, data) -> full name``. A backend may
        return a writer that skips its per-upload check (Azure: the check costs requests)."""
        conflicts = blob_conflicts(blob_names, self.list_blobs(partition, name))
        if conflicts:
            raise conflict_error(f"{partition}/{name}", conflicts)
        return lambda blob, data: self.upload_bytes(partition, name, blob, data, overwrite=overwrite)

    @abc.abstractmethod
    def upload(
        self,
        partition: str,
        name: str,
        local_path: str | Path,
        *,
        blob_name: str | None = None,
        overwrite: bool = True,
        max_concurrency: int | None = None,
        progress: bool | None = None,
    ) -> list[str]:
        """Upload a file (as ``blob_name`` or its file name) or a folder (recursively, in parallel with at most
        ``max_concurrency`` transfers at once, under ``blob_name/`` if given). Returns the full blob names.

        A folder (or a file of 64 MiB or more) shows a progress bar of bytes and files: ``progress`` True
        always, False never, None as the store's ``progress`` setting says (None there: on a terminal only).
        """

    @abc.abstractmethod
    def download_bytes(self, partition: str, name: str, blob_name: str) -> bytes:
        """The content of one blob; :class:`FileNotFoundError` if it does not exist."""

    @abc.abstractmethod
    def download(
        self,
        partition: str,
        name: str,
        target_folder: str | Path,
        *,
        blob_names: Sequence[str] | None = None,
        pattern: str | None = None,
        max_concurrency: int | None = None,
        progress: bool | None = None,
    ) -> list[Path]:
        """Download the entity's blobs (all, the named ones, or those whose relative name matches the regex
        ``pattern``) into ``target_folder``, keeping relative paths. Every name is checked with
        :func:`safe_blob_path` before anything is written. Returns the local paths. ``progress`` as in
        :meth:`upload`."""

    @abc.abstractmethod
    def list_blobs(self, partition: str, name: str | None = None, *, pattern: str | None = None) -> list[str]:
        """Blob names relative to ``<partition>/<name>/`` (or to ``<partition>/`` when ``name`` is None), sorted."""

    @abc.abstractmethod
    def list_blob_info(
        self, partition: str, name: str | None = None, *, pattern: str | None = None
    ) -> dict[str, BlobInfo]:
        """:meth:`list_blobs` with each blob's size and content MD5, from the listing itself (no blob read):
        Azure's ``Content-MD5`` property (set on every upload of this package), the embedded store's hash of
        the file (kept in its database, computed again only when the file's size, time or inode moved)."""

    @abc.abstractmethod
    def delete_blobs(self, partition: str, name: str, *, pattern: str | None = None) -> int:
        """Delete the entity's blobs (those matching the regex ``pattern``, or all); returns how many."""

    # ------------------------------------------------------------------------------------------- others
    @abc.abstractmethod
    def with_table(self, table_name: str) -> Store:
        """A store on another table of the same backend (and the same blob container)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and pools."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
