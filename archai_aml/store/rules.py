"""The name and column rules every store backend applies: partition/entity keys, column names and counts,
blob names (that never escape an entity's folder) and blob-name trees, plus small value helpers.

One rule set for every backend (the embedded SQLite store and the Azure store alike), so that a row that one
backend accepts is accepted by the other. The protocol itself is :class:`archai_aml.store.base.Store`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from archai_aml.errors import BlobConflictError, InvalidNameError, UnsafeBlobNameError

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
