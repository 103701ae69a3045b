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

Column names must be identifiers that do not start with ``_`` and are not ``partition``/``name``.
``None`` is never stored: in :meth:`Store.merge` a ``None`` value removes that column.

Writes that take ``expected_version`` are compare-and-swap: they raise
:class:`~archai_aml.errors.ConcurrencyError` when the entity's version moved or the entity is gone.
Without it they are unconditional upserts.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

from archai_aml.errors import EntityExistsError, UnsafeBlobNameError

if TYPE_CHECKING:
    from archai_aml.config import StoreConfig

Value: TypeAlias = int | float | bool | str | datetime
Entity: TypeAlias = dict[str, Any]

RESERVED_KEYS = frozenset({"partition", "name", "_version", "_timestamp"})
_COLUMN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,254}$")
_KEY = re.compile(r"^[^/\\#?\x00-\x1f\x7f-\x9f]{1,1024}$")


def check_key(partition: str, name: str | None = None) -> None:
    """Reject partition or entity names that the table services refuse (``/ \\ # ?``, control characters).

    ``name`` may be left out to check a partition alone."""
    keys = [("partition", partition)] + ([] if name is None else [("name", name)])
    for what, value in keys:
        if not isinstance(value, str) or not _KEY.match(value):
            raise ValueError(
                f"invalid {what} {value!r}: use 1-1024 characters without / \\ # ? or control characters"
            )


def user_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """The user columns of ``values`` (reserved keys dropped), each name checked."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in RESERVED_KEYS:
            continue
        if not _COLUMN.match(key):
            raise ValueError(f"invalid column name {key!r}: use a letter then letters, digits or '_'")
        if value is not None and not isinstance(value, (bool, int, float, str, datetime)):
            raise TypeError(
                f"column {key!r} holds a {type(value).__name__}; store int, float, bool, str or datetime "
                "(encode lists and dicts as JSON strings)"
            )
        out[key] = value
    return out


def check_blob_name(blob_name: str) -> str:
    """``blob_name`` if it is a safe relative name, else :class:`UnsafeBlobNameError` (absolute, ``..``, an
    empty part, a drive letter, ``\\`` or NUL)."""
    if not blob_name or "\x00" in blob_name or "\\" in blob_name:
        raise UnsafeBlobNameError(f"blob name {blob_name!r} is empty or holds '\\' or NUL")
    if (
        PurePosixPath(blob_name).is_absolute()
        or any(part in ("..", "") for part in blob_name.split("/"))
        or re.match(r"^[A-Za-z]:", blob_name)
    ):
        raise UnsafeBlobNameError(
            f"blob name {blob_name!r} would escape the download folder (absolute, '..' or empty part): nothing written"
        )
    return blob_name


def safe_blob_path(folder: str | Path, blob_name: str) -> Path:
    """The local path of ``blob_name`` under ``folder``, or :class:`UnsafeBlobNameError` if it would escape."""
    check_blob_name(blob_name)
    root = Path(folder).resolve()
    target = (root / Path(*PurePosixPath(blob_name).parts)).resolve()
    if target != root and root not in target.parents:
        raise UnsafeBlobNameError(f"blob name {blob_name!r} resolves outside {root}: nothing written")
    return target


def matching(names: Iterable[str], pattern: str | None) -> list[str]:
    """The names (in their order) that the regex ``pattern`` finds (``re.search``); all when it is None."""
    if pattern is None:
        return list(names)
    regex = re.compile(pattern)
    return [n for n in names if regex.search(n)]


def upload_plan(local_path: str | Path, blob_name: str | None) -> list[tuple[Path, str]]:
    """(file, relative blob name) pairs of :meth:`Store.upload`, every name checked: one file (named
    ``blob_name`` or its file name) or each file under a folder (under ``blob_name/`` when given), sorted."""
    source = Path(local_path)
    if source.is_file():
        pairs = [(source, blob_name or source.name)]
    elif source.is_dir():
        prefix = f"{blob_name.rstrip('/')}/" if blob_name else ""
        pairs = [
            (p, prefix + p.relative_to(source).as_posix()) for p in sorted(source.rglob("*")) if p.is_file()
        ]
    else:
        raise FileNotFoundError(f"nothing to upload at {source}")
    for _, name in pairs:
        check_blob_name(name)
    return pairs


def requested_blobs(blob_names: Sequence[str], pattern: str | None) -> list[str]:
    """The names given to :meth:`Store.download` that match ``pattern``, each given name checked first."""
    for name in blob_names:
        check_blob_name(name)
    return matching(blob_names, pattern)


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


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
    def partitions(self) -> list[str]:
        """Every partition (experiment) that holds at least one entity, sorted."""

    # -------------------------------------------------------------------------------------------- blobs
    @abc.abstractmethod
    def upload_bytes(
        self, partition: str, name: str, blob_name: str, data: bytes, *, overwrite: bool = True
    ) -> str:
        """Write one blob ``<partition>/<name>/<blob_name>``; returns its full name."""

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
    ) -> list[str]:
        """Upload a file (as ``blob_name`` or its file name) or a folder (recursively, in parallel with at most
        ``max_concurrency`` transfers at once, under ``blob_name/`` if given). Returns the full blob names."""

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
    ) -> list[Path]:
        """Download the entity's blobs (all, the named ones, or those whose relative name matches the regex
        ``pattern``) into ``target_folder``, keeping relative paths. Every name is checked with
        :func:`safe_blob_path` before anything is written. Returns the local paths."""

    @abc.abstractmethod
    def list_blobs(self, partition: str, name: str | None = None, *, pattern: str | None = None) -> list[str]:
        """Blob names relative to ``<partition>/<name>/`` (or to ``<partition>/`` when ``name`` is None), sorted."""

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


def as_float(value: Any) -> float | None:
    """A row value as a float, or None when it is missing, a bool, or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_set(value: str | Collection[str] | None) -> frozenset[str] | None:
    """Normalize a ``str | Collection[str] | None`` filter argument."""
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)
