"""The SQLite side of the embedded store: entities of every table in one WAL database, compare-and-swap
inside ``BEGIN IMMEDIATE`` transactions, filters evaluated in SQL."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import quote

from archai_aml.errors import (
    ConcurrencyError,
    EntityExistsError,
    StoreError,
    StoreFullError,
)
from archai_aml.store.base import Entity, Value
from archai_aml.store.embedded.codec import (
    _decode_columns,
    _encode_columns,
    _format_datetime,
    _parse_datetime,
    encode_value,
)
from archai_aml.store.embedded.fs import EmbeddedBase
from archai_aml.store.rules import as_set, check_column_count, check_key, check_range, user_columns

T = TypeVar("T")

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
CREATE TABLE IF NOT EXISTS blob_md5 (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    md5 TEXT NOT NULL
) WITHOUT ROWID;
"""


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class EmbeddedTableSide(EmbeddedBase):
    """Entities in the store's SQLite database (see :class:`~archai_aml.store.base.Store`)."""

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
            return StoreFullError(
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

    def _known_md5s(self, prefix: str) -> dict[str, tuple[int, int, int, str]]:
        try:
            rows = self._read(
                "SELECT key, size, mtime_ns, ino, md5 FROM blob_md5 WHERE key >= ? AND key < ?",
                (prefix, prefix + "\U0010ffff"),
            )
        except (StoreError, sqlite3.Error):  # a read-only store made before the table existed
            return {}
        return {str(k): (int(size), int(mtime), int(ino), str(md5)) for k, size, mtime, ino, md5 in rows}

    def _remember_md5s(self, rows: Sequence[tuple[str, int, int, int, str]]) -> None:
        if self.read_only or not rows:
            return

        def upsert(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR REPLACE INTO blob_md5 VALUES (?, ?, ?, ?, ?)", rows)

        try:
            self._write(upsert)
        except StoreError:  # only a cache: the next listing hashes those files again
            pass

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

    def query_range(
        self, partition: str, *, after: str | None = None, below: str | None = None, limit: int
    ) -> list[Entity]:
        check_key(partition)
        check_range(after, below, limit)
        sql = ["SELECT name, data, version, ts FROM entities WHERE tbl = ? AND partition = ?"]
        params: list[Any] = [self.table_name, partition]
        if after is not None:
            sql.append("AND name > ?")
            params.append(after)
        if below is not None:
            sql.append("AND name < ?")
            params.append(below)
        sql.append("ORDER BY name LIMIT ?")  # the primary key's order: a range scan of ``limit`` rows
        params.append(limit)
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
