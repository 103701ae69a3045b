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

import errno
import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from archai_aml.errors import (
    BlobExistsError,
    ConcurrencyError,
    EntityExistsError,
    ReadOnlyStoreError,
    StoreError,
)
from archai_aml.store.base import (
    Entity,
    Store,
    Value,
    as_set,
    blob_conflicts,
    check_column_count,
    check_key,
    conflict_error,
    matching,
    requested_blobs,
    safe_blob_path,
    to_utc,
    upload_plan,
    user_columns,
)
from archai_aml.store.progress import TransferProgress

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_FILE = "store.sqlite3"
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
_BUSY_TIMEOUT_MS = 30_000
_LOCK_RETRY_S = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    tbl TEXT NOT NULL,
    partition TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    ts TEXT NOT NULL,
    PRIMARY KEY (tbl, partition, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS version_counter (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO version_counter (id, value) VALUES (0, 0);
"""


# ------------------------------------------------------------------------------------------ value codec
def _format_datetime(value: datetime) -> str:
    return to_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds")


def _parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def encode_value(value: Value) -> dict[str, str]:
    """The tagged form of one column value (``bool`` is checked before ``int``: it is a subclass)."""
    if isinstance(value, bool):
        return {"t": "b", "v": "true" if value else "false"}
    if isinstance(value, int):
        return {"t": "i", "v": str(int(value))}
    if isinstance(value, float):
        return {"t": "f", "v": repr(float(value))}
    if isinstance(value, str):
        return {"t": "s", "v": str(value)}
    if isinstance(value, datetime):
        return {"t": "d", "v": _format_datetime(value)}
    raise TypeError(f"cannot store a {type(value).__name__}; use int, float, bool, str or datetime")


def decode_value(tagged: Mapping[str, str]) -> Value:
    kind, text = tagged["t"], tagged["v"]
    if kind == "s":
        return text
    if kind == "i":
        return int(text)
    if kind == "f":
        return float(text)
    if kind == "b":
        return text == "true"
    if kind == "d":
        return _parse_datetime(text)
    raise StoreError(f"unknown type tag {kind!r} in the embedded store: was it written by a newer version?")


def _encode_columns(columns: Mapping[str, Any]) -> str:
    return json.dumps({k: encode_value(v) for k, v in columns.items() if v is not None})


def _decode_columns(data: str) -> dict[str, Value]:
    return {k: decode_value(v) for k, v in json.loads(data).items()}


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_CHUNK = 1 << 20


def os_error(what: str, exc: OSError) -> StoreError:
    """A one-line :class:`StoreError` for a file-system error: what failed, why, and what to do."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return StoreError(
            f"{what} failed: {reason} (the disk is full or a file size limit was reached): free space or "
            "raise the limit and retry; that file was not written"
        )
    if exc.errno in _NOT_WRITABLE:
        return ReadOnlyStoreError(
            f"{what} failed: {reason}: the folder is not writable (a read-only mount or its permissions)"
        )
    return StoreError(f"{what} failed: {reason}")


def _writable(path: Path) -> bool:
    """Whether the store at ``path`` can be written: its nearest existing folder and its database."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        return False
    db = path / DB_FILE
    return not db.exists() or os.access(db, os.W_OK)


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


# ------------------------------------------------------------------------------------------------ store
class EmbeddedStore(Store):
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

    # ---------------------------------------------------------------------------------------- sqlite
    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            return self._connect_read_only()
        conn = sqlite3.connect(
            self.db_path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """A read-only connection: ``mode=ro`` (sees concurrent writers; needs the WAL index to exist or be
        creatable), else ``immutable=1`` (a folder nobody writes, such as a read-only mount)."""
        base = "file:" + quote(str(self.db_path))
        uris = [self._ro_uri] if self._ro_uri else [base + "?mode=ro", base + "?immutable=1"]
        last: sqlite3.Error | None = None
        for uri in uris:
            conn = sqlite3.connect(
                uri, uri=True, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as exc:
                conn.close()
                last = exc
                continue
            self._ro_uri = uri
            return conn
        raise StoreError(f"cannot read the embedded store at {self.path} read-only: {last}")

    def _read_only_error(self, what: str) -> ReadOnlyStoreError:
        return ReadOnlyStoreError(
            f"{what}: the embedded store at {self.path} is read-only (its folder is not writable); reading "
            "works, writing does not: copy the folder somewhere writable to change it"
        )

    def _conn(self) -> sqlite3.Connection:
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != pid:
            conn = self._connect()
            self._local.conn, self._local.pid = conn, pid
            with self._lock:
                self._connections.append((pid, conn))
        return conn

    def _retry_locked(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying while SQLite reports the database locked (beyond its own busy timeout)."""
        deadline = time.monotonic() + _LOCK_RETRY_S
        delay = 0.01
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or time.monotonic() > deadline:
                    raise self._sqlite_error(exc) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _sqlite_error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc).lower()
        if "readonly" in text or "read-only" in text:
            return self._read_only_error("writing")
        if "full" in text:
            return StoreError(
                f"embedded store {self.db_path}: {exc}: the disk is full; free space and retry (the "
                "transaction was rolled back, nothing was written)"
            )
        return StoreError(f"embedded store {self.db_path}: {exc}")

    def _init_schema(self) -> None:
        def init() -> None:
            conn = self._conn()
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")

        try:
            self._retry_locked(init)
        except Exception:
            conn = self._conn()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a ``BEGIN IMMEDIATE`` transaction (the database write lock is held throughout)."""

        if self.read_only:
            raise self._read_only_error("writing an entity")

        def attempt() -> T:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return self._retry_locked(attempt)

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._retry_locked(lambda: self._conn().execute(sql, params).fetchall())

    @staticmethod
    def _next_version(conn: sqlite3.Connection) -> int:
        conn.execute("UPDATE version_counter SET value = value + 1 WHERE id = 0")
        return int(conn.execute("SELECT value FROM version_counter WHERE id = 0").fetchone()[0])

    @staticmethod
    def _entity(partition: str, name: str, columns: Mapping[str, Value], version: int, ts: str) -> Entity:
        entity: Entity = {"partition": partition, "name": name}
        entity.update(columns)
        entity["_version"] = str(version)
        entity["_timestamp"] = _parse_datetime(ts)
        return entity

    @staticmethod
    def _parse_version(expected_version: str) -> int:
        try:
            return int(expected_version)
        except (TypeError, ValueError):
            return -1  # a version this store never wrote: the compare-and-swap fails

    # -------------------------------------------------------------------------------------- entities
    def get(self, partition: str, name: str) -> Entity | None:
        check_key(partition, name)
        rows = self._read(
            "SELECT data, version, ts FROM entities WHERE tbl = ? AND partition = ? AND name = ?",
            (self.table_name, partition, name),
        )
        if not rows:
            return None
        data, version, ts = rows[0]
        return self._entity(partition, name, _decode_columns(data), version, ts)

    def create(self, partition: str, name: str, values: Mapping[str, Any] | None = None) -> Entity:
        check_key(partition, name)
        columns = {k: v for k, v in user_columns(values or {}).items() if v is not None}
        check_column_count(partition, name, columns)
        data = _encode_columns(columns)

        def write(conn: sqlite3.Connection) -> Entity:
            version, ts = self._next_version(conn), _format_datetime(datetime.now(timezone.utc))
            try:
                conn.execute(
                    "INSERT INTO entities (tbl, partition, name, data, version, ts) VALUES (?, ?, ?, ?, ?, ?)",
                    (self.table_name, partition, name, data, version, ts),
                )
            except sqlite3.IntegrityError as exc:
                raise EntityExistsError(partition, name) from exc
            return self._entity(partition, name, columns, version, ts)

        return self._write(write)

    def _put(
        self,
        partition: str,
        name: str,
        compute: Callable[[dict[str, Value]], dict[str, Any]],
        expected_version: str | None,
    ) -> Entity:
        """Read, compute the new columns, and write, all under the write lock; CAS on ``expected_version``."""
        check_key(partition, name)
        expected = None if expected_version is None else self._parse_version(expected_version)

        def write(conn: sqlite3.Connection) -> Entity:
            row = conn.execute(
                "SELECT data, version FROM entities WHERE tbl = ? AND partition = ? AND name = ?",
                (self.table_name, partition, name),
            ).fetchone()
            if expected is not None and (row is None or row[1] != expected):
                raise ConcurrencyError(partition, name, expected_version)
            current = _decode_columns(row[0]) if row is not None else {}
            columns = {k: v for k, v in compute(current).items() if v is not None}
            check_column_count(partition, name, columns)
            data = _encode_columns(columns)
            version, ts = self._next_version(conn), _format_datetime(datetime.now(timezone.utc))
            if row is None:
                conn.execute(
                    "INSERT INTO entities (tbl, partition, name, data, version, ts) VALUES (?, ?, ?, ?, ?, ?)",
                    (self.table_name, partition, name, data, version, ts),
                )
            else:
                cursor = conn.execute(
                    "UPDATE entities SET data = ?, version = ?, ts = ? "
                    "WHERE tbl = ? AND partition = ? AND name = ? AND version = ?",
                    (data, version, ts, self.table_name, partition, name, row[1]),
                )
                if cursor.rowcount != 1:  # cannot happen under the write lock; never write blindly anyway
                    raise ConcurrencyError(partition, name, expected_version)
            return self._entity(partition, name, columns, version, ts)

        return self._write(write)

    def replace(
        self, partition: str, name: str, values: Mapping[str, Any], *, expected_version: str | None = None
    ) -> Entity:
        new = user_columns(values)
        return self._put(partition, name, lambda _current: dict(new), expected_version)

    def merge(
        self, partition: str, name: str, values: Mapping[str, Any], *, expected_version: str | None = None
    ) -> Entity:
        changes = user_columns(values)

        def compute(current: dict[str, Value]) -> dict[str, Any]:
            merged: dict[str, Any] = dict(current)
            for key, value in changes.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            return merged

        return self._put(partition, name, compute, expected_version)

    def delete(self, partition: str, name: str, *, expected_version: str | None = None) -> bool:
        check_key(partition, name)
        sql = "DELETE FROM entities WHERE tbl = ? AND partition = ? AND name = ?"
        params: list[Any] = [self.table_name, partition, name]
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(self._parse_version(expected_version))

        def write(conn: sqlite3.Connection) -> bool:
            deleted = conn.execute(sql, params).rowcount == 1
            if not deleted and expected_version is not None:
                raise ConcurrencyError(partition, name, expected_version)
            return deleted

        return self._write(write)

    def query(
        self,
        partition: str,
        *,
        status: str | Collection[str] | None = None,
        status_not: str | Collection[str] | None = None,
        names: Collection[str] | None = None,
        where: Mapping[str, Value] | None = None,
    ) -> list[Entity]:
        sql = ["SELECT name, data, version, ts FROM entities WHERE tbl = ? AND partition = ?"]
        params: list[Any] = [self.table_name, partition]
        name_set = as_set(names)
        if name_set is not None:
            if not name_set:
                return []
            sql.append(f"AND name IN ({', '.join('?' * len(name_set))})")
            params.extend(sorted(name_set))

        def column_in(column: str, tagged: list[dict[str, str]]) -> str:
            """SQL true when ``column`` holds one of ``tagged`` (type and value); false (never NULL) if absent."""
            ors = []
            for t in tagged:
                ors.append("(json_extract(data, ?) = ? AND json_extract(data, ?) = ?)")
                params.extend([f'$."{column}".t', t["t"], f'$."{column}".v', t["v"]])
            return "COALESCE((" + " OR ".join(ors) + "), 0)"

        wanted = as_set(status)
        if wanted is not None:
            if not wanted:
                return []
            sql.append("AND " + column_in("status", [encode_value(s) for s in sorted(wanted)]))
        unwanted = as_set(status_not)
        if unwanted:
            sql.append("AND NOT " + column_in("status", [encode_value(s) for s in sorted(unwanted)]))
        for column, value in user_columns(where or {}).items():
            if value is None:
                sql.append("AND json_extract(data, ?) IS NULL")
                params.append(f'$."{column}"')
            else:
                sql.append("AND " + column_in(column, [encode_value(value)]))
        sql.append("ORDER BY name")
        rows = self._read(" ".join(sql), params)
        return [
            self._entity(partition, name, _decode_columns(data), version, ts)
            for name, data, version, ts in rows
        ]

    def partitions(self) -> list[str]:
        rows = self._read(
            "SELECT DISTINCT partition FROM entities WHERE tbl = ? ORDER BY partition", (self.table_name,)
        )
        return [r[0] for r in rows]

    # ----------------------------------------------------------------------------------------- blobs
    def _folder(self, partition: str, name: str | None = None) -> Path:
        """The blob folder of a partition or an entity, its keys checked (the key rule refuses '.' and '..',
        and the path is checked once more to stay in the container)."""
        check_key(partition, name)
        parts = [partition] if name is None else [partition, name]
        return safe_blob_path(self.blob_root, "/".join(parts))

    def _writable_folder(self, partition: str, name: str, what: str) -> Path:
        if self.read_only:
            raise self._read_only_error(f"{what} {partition}/{name}")
        return self._folder(partition, name)

    @staticmethod
    def _conflict(folder: Path, blob: str) -> tuple[str, str] | None:
        """(blob, other) when ``blob`` is the folder of an existing blob, or an existing blob is its folder."""
        target = folder / blob
        if target.is_dir():
            inner = next((p for p in sorted(target.rglob("*")) if p.is_file()), None)
            return (blob, inner.relative_to(folder).as_posix() if inner else blob + "/")
        parts = blob.split("/")
        for i in range(1, len(parts)):
            if (folder / "/".join(parts[:i])).is_file():
                return (blob, "/".join(parts[:i]))
        return None

    def _check_tree(self, partition: str, name: str, folder: Path, blobs: Sequence[str]) -> None:
        """:class:`BlobConflictError` before anything is written when a new blob and another one (new or
        stored) would be a file and a folder of the same name."""
        conflicts = blob_conflicts(blobs, [])
        conflicts += [c for c in (self._conflict(folder, b) for b in blobs) if c is not None]
        if conflicts:
            raise conflict_error(f"{partition}/{name}", conflicts)

    def _write_file(
        self,
        target: Path,
        write: Callable[[Any], None],
        *,
        overwrite: bool,
        where: tuple[str, str, Path, str],
    ) -> None:
        """Write a file atomically: into a temp file first, then rename (or link, to refuse an existing one).
        Whatever fails, the temp file is removed and the blob is either the old one or the new one."""
        partition, name, folder, blob = where
        tmp = self.tmp_dir / f"{uuid.uuid4().hex}.part"
        try:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as f:
                    write(f)
                if overwrite:
                    os.replace(tmp, target)
                else:
                    os.link(tmp, target)  # atomic create-if-absent
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                if not overwrite and isinstance(exc, FileExistsError) and target.is_file():
                    raise BlobExistsError(f"blob {target} already exists (pass overwrite=True)") from None
                # a concurrent writer made a file where a folder goes (or the reverse)
                found = self._conflict(folder, blob) or (blob, blob)
                raise conflict_error(f"{partition}/{name}", [found]) from None
            except OSError as exc:
                raise os_error(f"writing blob {partition}/{name}/{blob} in {self.path}", exc) from None
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # pragma: no cover - the folder went read-only meanwhile
                pass

    def upload_bytes(
        self, partition: str, name: str, blob_name: str, data: bytes, *, overwrite: bool = True
    ) -> str:
        folder = self._writable_folder(partition, name, "uploading to")
        target = safe_blob_path(folder, blob_name)
        self._check_tree(partition, name, folder, [blob_name])
        self._write_file(
            target, lambda f: f.write(data), overwrite=overwrite, where=(partition, name, folder, blob_name)
        )
        return f"{partition}/{name}/{blob_name}"

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
        folder = self._writable_folder(partition, name, "uploading to")
        targets = [  # every name checked before anything is written
            (src, blob, safe_blob_path(folder, blob)) for src, blob in upload_plan(local_path, blob_name)
        ]
        self._check_tree(partition, name, folder, [blob for _, blob, _ in targets])
        sizes = sum(src.stat().st_size for src, _, _ in targets)
        show = self.progress if progress is None else progress

        with TransferProgress(f"upload {partition}/{name}", sizes, len(targets), show) as bar:

            def copy(item: tuple[Path, str, Path]) -> str:
                src, blob, target = item

                def write(f: Any) -> None:
                    with open(src, "rb") as fin:
                        while chunk := fin.read(_CHUNK):
                            f.write(chunk)
                            bar.add(len(chunk))

                self._write_file(target, write, overwrite=overwrite, where=(partition, name, folder, blob))
                bar.file_done()
                return f"{partition}/{name}/{blob}"

            done = self._run_all(copy, targets, max_concurrency, "upload")
        log.debug("uploaded %d blob(s) to %s/%s", len(done), partition, name)
        return done

    def _run_all(
        self, fn: Callable[[Any], T], jobs: Sequence[Any], max_concurrency: int | None, label: str
    ) -> list[T]:
        if len(jobs) <= 1:
            return [fn(job) for job in jobs]
        workers = max(1, min(max_concurrency or self.max_concurrency, len(jobs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=label) as pool:
            return list(pool.map(fn, jobs))

    def download_bytes(self, partition: str, name: str, blob_name: str) -> bytes:
        path = safe_blob_path(self._folder(partition, name), blob_name)
        if not path.is_file():
            raise FileNotFoundError(f"no blob {blob_name!r} under {partition}/{name}")
        return path.read_bytes()

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
        folder = self._folder(partition, name)
        if blob_names is not None:
            names = requested_blobs(blob_names, pattern)  # unsafe names refused before any look-up
            missing = [n for n in names if not safe_blob_path(folder, n).is_file()]
            if missing:
                raise FileNotFoundError(f"no blob(s) {missing} under {partition}/{name}")
        else:
            names = self.list_blobs(partition, name, pattern=pattern)
        plan = [(safe_blob_path(folder, n), safe_blob_path(target_folder, n)) for n in names]  # all checked
        target_root = Path(target_folder)
        sizes = sum(src.stat().st_size for src, _ in plan)
        show = self.progress if progress is None else progress
        try:
            target_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(f"creating the download folder {target_root}", exc) from None

        with TransferProgress(f"download {partition}/{name}", sizes, len(plan), show) as bar:

            def copy(item: tuple[Path, Path]) -> Path:
                src, dst = item
                tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex}.part"
                try:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    with open(src, "rb") as fin, open(tmp, "wb") as fout:
                        while chunk := fin.read(_CHUNK):
                            fout.write(chunk)
                            bar.add(len(chunk))
                    os.replace(tmp, dst)
                except FileNotFoundError:
                    if not src.is_file():
                        raise FileNotFoundError(f"no blob {src.name!r} under {partition}/{name}") from None
                    raise
                except OSError as exc:
                    raise os_error(f"downloading blob {partition}/{name} to {dst}", exc) from None
                finally:
                    try:
                        tmp.unlink(missing_ok=True)
                    except OSError:  # pragma: no cover
                        pass
                bar.file_done()
                return dst

            return self._run_all(copy, plan, max_concurrency, "download")

    def list_blobs(self, partition: str, name: str | None = None, *, pattern: str | None = None) -> list[str]:
        folder = self._folder(partition, name)
        if not folder.is_dir():
            return []
        files = (path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
        return sorted(matching(files, pattern))

    def delete_blobs(self, partition: str, name: str, *, pattern: str | None = None) -> int:
        folder = self._writable_folder(partition, name, "deleting blobs of")
        count = 0
        for rel in self.list_blobs(partition, name, pattern=pattern):
            try:
                safe_blob_path(folder, rel).unlink()
                count += 1
            except FileNotFoundError:
                continue  # deleted by somebody else meanwhile
            except OSError as exc:
                raise os_error(f"deleting blob {partition}/{name}/{rel}", exc) from None
        # prune the folders left empty, deepest first, up to the entity folder itself
        if folder.is_dir():
            for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    sub.rmdir()
                except OSError:
                    pass
            try:
                folder.rmdir()
            except OSError:
                pass
        return count

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
