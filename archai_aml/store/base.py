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

Column names must be identifiers that do not start with ``_`` and are not ``partition``/``name`` or one of
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
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

from archai_aml.errors import BlobConflictError, EntityExistsError, InvalidNameError, UnsafeBlobNameError
from archai_aml.store.parallel import run_parallel

if TYPE_CHECKING:
    from archai_aml.config import StoreConfig

Value: TypeAlias = int | float | bool | str | datetime
Entity: TypeAlias = dict[str, Any]

RESERVED_KEYS = frozenset({"partition", "name", "_version", "_timestamp"})
#: Column names of the Table service itself (and of its SDK's entity metadata): a user column of that name
#: would redirect an Azure write to another entity (``PartitionKey``/``RowKey``) or be dropped, so both
#: backends refuse them (compared without case: the SQL and OData names of a store must not collide).
SERVICE_COLUMNS = frozenset({"PartitionKey", "RowKey", "Timestamp", "etag"})
_SERVICE_COLUMNS_LOWER = {c.lower(): c for c in SERVICE_COLUMNS}
#: Longest partition or entity name, in UTF-8 bytes: each is a folder name of the embedded store's blobs,
#: and 255 bytes is the longest file name on common file systems (the Table service allows 1 KiB).
KEY_MAX_BYTES = 255
_COLUMN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,254}$")
_KEY_FORBIDDEN = re.compile(r"[/\\#?]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def key_problem(value: object) -> str | None:
    """Why ``value`` cannot be a partition or entity name, or None when it can.

    One rule on every backend: a non-empty string of at most :data:`KEY_MAX_BYTES` UTF-8 bytes, not ``.`` or
    ``..`` (they name a folder itself or its parent), without ``/ \\ # ?`` (path separators, and characters
    the Table service refuses in keys) and without control characters."""
    if not isinstance(value, str):
        return f"it is a {type(value).__name__}, not a string"
    if not value:
        return "it is empty"
    if value in (".", ".."):
        return "'.' and '..' name a folder itself or its parent"
    bad = _KEY_FORBIDDEN.search(value)
    if bad:
        return f"it holds {bad.group(0)!r}: / \\ # ? are not allowed (path separators and key delimiters)"
    control = _CONTROL.search(value)
    if control:
        return f"it holds the control character U+{ord(control.group(0)):04X}"
    size = len(value.encode("utf-8"))
    if size > KEY_MAX_BYTES:
        return f"it is {size} bytes long in UTF-8; at most {KEY_MAX_BYTES} are allowed"
    return None


def check_key(partition: str, name: str | None = None) -> None:
    """:class:`InvalidNameError` (a ``ValueError``) when the partition or entity name breaks the key rule of
    :func:`key_problem`, naming the rule. ``name`` may be left out to check a partition alone."""
    keys = [("partition", partition)] + ([] if name is None else [("name", name)])
    for what, value in keys:
        problem = key_problem(value)
        if problem is not None:
            raise InvalidNameError(f"invalid {what} {value!r}: {problem}")


def check_range(after: str | None, below: str | None, limit: int) -> None:
    """``ValueError``/``TypeError`` unless the bounds of :meth:`Store.query_range` are strings (or None)
    without control characters and ``limit`` is a positive int."""
    for what, bound in (("after", after), ("below", below)):
        if bound is not None and (not isinstance(bound, str) or _CONTROL.search(bound)):
            raise InvalidNameError(f"query_range {what}={bound!r}: use a string without control characters")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"query_range limit={limit!r}: use a positive int")


def check_column(key: str) -> None:
    """:class:`InvalidNameError` unless ``key`` may name a user column (reserved keys not included)."""
    service = _SERVICE_COLUMNS_LOWER.get(key.lower()) if isinstance(key, str) else None
    if service is not None or (isinstance(key, str) and ("odata." in key.lower() or "@" in key)):
        raise InvalidNameError(
            f"column {key!r} is reserved: PartitionKey, RowKey, Timestamp, etag and odata.* are the table "
            "service's own names; pick another column name"
        )
    if not isinstance(key, str) or not _COLUMN.match(key):
        raise InvalidNameError(
            f"invalid column name {key!r}: use a letter then letters, digits or '_' (at most 255 characters)"
        )


#: Most user columns an entity may hold: the Table service allows 255 properties, three of them its own.
MAX_COLUMNS = 252


def check_column_count(partition: str, name: str, columns: Mapping[str, Any]) -> None:
    """:class:`InvalidNameError` when an entity would hold more than :data:`MAX_COLUMNS` user columns."""
    count = sum(1 for v in columns.values() if v is not None)
    if count > MAX_COLUMNS:
        raise InvalidNameError(
            f"entity {partition}/{name} would hold {count} columns; the table service allows "
            f"{MAX_COLUMNS}: store several values in one JSON string column"
        )


def user_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """The user columns of ``values`` (reserved keys dropped), each name checked (:func:`check_column`)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in RESERVED_KEYS:
            continue
        check_column(key)
        if value is not None and not isinstance(value, (bool, int, float, str, datetime)):
            raise TypeError(
                f"column {key!r} holds a {type(value).__name__}; store int, float, bool, str or datetime "
                "(encode lists and dicts as JSON strings)"
            )
        out[key] = value
    return out


def check_blob_name(blob_name: str) -> str:
    """``blob_name`` if it is a safe relative name, else :class:`UnsafeBlobNameError` (absolute, a ``.`` or
    ``..`` part, an empty part, a drive letter, ``\\``, NUL or another control character)."""
    if not isinstance(blob_name, str) or not blob_name or "\\" in blob_name or _CONTROL.search(blob_name):
        raise UnsafeBlobNameError(f"blob name {blob_name!r} is empty or holds '\\' or a control character")
    if (
        PurePosixPath(blob_name).is_absolute()
        or any(part in ("..", ".", "") for part in blob_name.split("/"))
        or re.match(r"^[A-Za-z]:", blob_name)
    ):
        raise UnsafeBlobNameError(
            f"blob name {blob_name!r} has an absolute, '.', '..' or empty part (it would name the entity's "
            "folder or escape it): nothing written"
        )
    return blob_name


def safe_blob_path(folder: str | Path, blob_name: str) -> Path:
    """The local path of ``blob_name`` under ``folder``, or :class:`UnsafeBlobNameError` if it would escape."""
    check_blob_name(blob_name)
    root = Path(folder).resolve()
    target = (root / Path(*PurePosixPath(blob_name).parts)).resolve()
    if target == root or root not in target.parents:
        raise UnsafeBlobNameError(f"blob name {blob_name!r} resolves outside {root}: nothing written")
    return target


def blob_conflicts(new: Iterable[str], existing: Iterable[str]) -> list[tuple[str, str]]:
    """(new name, other name) pairs where one of the two is a folder of the other (``a`` and ``a/b``).

    The data model of both backends: an entity's blob names form a file tree, so that every entity can be
    downloaded into a folder; a name that is also another blob's folder is refused (:class:`BlobConflictError`)."""
    new = list(new)
    names = set(existing) | set(new)
    folders: dict[str, str] = {}
    for name in names:
        parts = name.split("/")
        for i in range(1, len(parts)):
            folders.setdefault("/".join(parts[:i]), name)
    out: list[tuple[str, str]] = []
    for name in new:
        if name in folders:
            out.append((name, folders[name]))
            continue
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                out.append((name, "/".join(parts[:i])))
                break
    return out


def conflict_error(where: str, conflicts: Sequence[tuple[str, str]]) -> BlobConflictError:
    name, other = conflicts[0]
    return BlobConflictError(
        f"blob {name!r} of {where} conflicts with blob {other!r}: a blob name cannot also be the folder of "
        "another blob (they could not both be downloaded into one folder); rename one of them, or delete "
        "the other first"
    )


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
