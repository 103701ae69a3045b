"""What both sides of the embedded store share: its settings, and file-system errors as one-line
:class:`StoreError` messages (a full disk, a read-only folder)."""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from archai_aml.errors import (
    ReadOnlyStoreError,
    StoreError,
    StoreFullError,
)
from archai_aml.store.base import Store

DB_FILE = "store.sqlite3"

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_CHUNK = 1 << 20


def os_error(what: str, exc: OSError) -> StoreError:
    """A one-line :class:`StoreError` for a file-system error: what failed, why, and what to do."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return StoreFullError(
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


class EmbeddedBase(Store):
    """The settings of an :class:`~archai_aml.store.embedded.EmbeddedStore` (set by its constructor)."""

    path: Path
    db_path: Path
    blob_root: Path
    tmp_dir: Path
    table_name: str
    container_name: str
    max_concurrency: int
    progress: bool | None
    read_only: bool
    _read_only_arg: bool | None
    _ro_uri: str | None
    _local: threading.local
    _lock: threading.Lock
    _connections: list[tuple[int, sqlite3.Connection]]

    def _known_md5s(self, prefix: str) -> dict[str, tuple[int, int, int, str]]:
        """{key: (size, mtime_ns, inode, md5)} of the blob files under ``prefix`` (a folder of ``blob_root``
        as posix, ending in ``/``) whose MD5 the database remembers."""
        return {}

    def _remember_md5s(self, rows: Sequence[tuple[str, int, int, int, str]]) -> None:
        """Remember (key, size, mtime_ns, inode, md5) of blob files (best effort: it is a cache)."""

    def _read_only_error(self, what: str) -> ReadOnlyStoreError:
        return ReadOnlyStoreError(
            f"{what}: the embedded store at {self.path} is read-only (its folder is not writable); reading "
            "works, writing does not: copy the folder somewhere writable to change it"
        )
