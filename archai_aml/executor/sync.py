"""Data sync: folders under ``data_blobs/`` to the store's blobs, only what is new or changed.

Each data set ``data_blobs/<kind>/<name>`` goes to the blobs ``<partition>/<kind>/<name>/<file>`` of the
store (:class:`~archai_aml.store.Store`: embedded files by default, Azure blobs when configured), through
the protocol's ``upload_blobs`` / ``upload_bytes`` / ``download_bytes`` only. Beside them, the manifest blob
``<partition>/<kind>/.sync/<name>.json`` maps each file to its sha256 and size: a sync hashes the local
files, reads the manifest and sends only the files whose hash differs, so a second machine with the same
data sends nothing either. Files go in parallel on a bounded thread pool (``concurrency``), through
:meth:`Store.upload_blobs <archai_aml.store.Store.upload_blobs>`: one check of the folder tree for all of
them, then one request per file on Azure.

An interrupted sync resumes: the manifest is written every ``checkpoint_every`` arrived files and, on any
exception (Ctrl-C included), once more with everything that arrived before it is re-raised; the next sync
re-sends only what the manifest does not hold (at most ``checkpoint_every`` files after a hard kill).

``zipped=True`` sends a folder of many small files as one blob ``<name>.zip`` (a deterministic zip:
sorted entries, fixed timestamps, so the same files give the same hash and the same zip is not sent
twice); :func:`archai_aml.paths.working_data` extracts it on first use inside the job.

What is checked, not trusted:

- **links**: a symbolic link in the data folder whose target is outside it (a file or a folder, dangling
  or not) stops the sync before anything is sent, naming every such link; a link to a file inside the
  folder is sent as that file's content; a link to a folder inside it is not descended into (its files are
  sent under their real path).
- **the store against the manifest**: one listing of the data set's blobs (sizes and content MD5s, no blob
  read; :meth:`Store.list_blob_info <archai_aml.store.Store.list_blob_info>`) is compared with the manifest;
  a blob missing, of another size, or with another MD5 than the one sent is sent again.
- **the manifest itself**: it must be a JSON object whose ``files`` map names of this data set
  (``<name>/...`` or ``<name>.zip``) to their hashes; anything else is a :class:`DatasetError` naming the
  manifest and the way out (``resync=True``, ``archai-aml run --resync``: ignore it and send everything).
- **pulls**: every file is downloaded into a temp file beside its target, its sha256 checked against the
  manifest, and only then renamed over the target; a mismatch is a :class:`DatasetError` naming the blob,
  and leaves the old local file (or nothing) in place.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from archai_aml.errors import ConfigError, DatasetError
from archai_aml.paths import KINDS
from archai_aml.store import Store
from archai_aml.store.base import BlobInfo
from archai_aml.store.parallel import run_parallel
from archai_aml.store.rules import check_blob_name, safe_blob_path

__all__ = ["DATA_PARTITION", "SyncResult", "manifest_blob", "pull_dataset", "sync_dataset"]

log = logging.getLogger(__name__)

#: The store partition that holds the data sets (shared by every experiment).
DATA_PARTITION = "data_blobs"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class SyncResult:
    """What one sync did: files sent, files already there, bytes sent."""

    dataset: str
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_sent: int = 0


def manifest_blob(name: str) -> str:
    """Blob name (under ``<partition>/<kind>``) of the manifest of data set ``name``."""
    return f".sync/{name}.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _digest(source: Path | bytes) -> str:
    """sha256 of a file (read in blocks: a data set need not fit in memory) or of bytes."""
    if isinstance(source, bytes):
        return _sha256(source)
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _ReadOnSend(Mapping[str, bytes]):
    """The blobs to send, each file read when its upload starts (so at most ``concurrency`` files are in
    memory at once) and hashed as read: ``sent`` holds (sha256, size) of exactly what went out, which is what
    the manifest records even if the file changed after the first hashing."""

    def __init__(self, sources: dict[str, Path | bytes]) -> None:
        self._sources = sources
        self.sent: dict[str, tuple[str, int, str]] = {}

    def __getitem__(self, blob: str) -> bytes:
        source = self._sources[blob]
        data = source if isinstance(source, bytes) else source.read_bytes()
        self.sent[blob] = (_sha256(data), len(data), _md5(data))
        return data

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


def _split(dataset: str) -> tuple[str, str]:
    kind, sep, name = dataset.strip("/").partition("/")
    if not sep or kind not in KINDS or not name:
        raise ConfigError(
            f"data set {dataset!r}: write it as raw/<name> or working/<name> (under data_blobs/)"
        )
    check_blob_name(name)
    return kind, name


def _manifest_problem(data: object, kind: str, name: str) -> str | None:
    """Why a manifest's content cannot be used, or None."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__}, not an object"
    files = data.get("files")
    if not isinstance(files, dict):
        return "its 'files' is not an object"
    for blob, entry in files.items():
        if not (blob.startswith(f"{name}/") or blob == f"{name}.zip"):
            return f"entry {blob!r} is not a file of data set {kind}/{name}"
        try:
            check_blob_name(blob)
        except ValueError as exc:
            return f"entry {blob!r}: {exc}"
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)):
            return f"entry {blob!r} has no sha256"
    return None


def _read_manifest(store: Store, partition: str, kind: str, name: str) -> dict[str, dict[str, object]] | None:
    """The manifest's files (blob -> sha256, size, md5); None when the data set has no manifest yet;
    :class:`DatasetError` naming the manifest when it is not one this module wrote."""
    where = f"{partition}/{kind}/{manifest_blob(name)}"
    try:
        raw = store.download_bytes(partition, kind, manifest_blob(name))
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        problem: str | None = f"it is not UTF-8 JSON ({type(exc).__name__}: {exc})"
    else:
        problem = _manifest_problem(data, kind, name)
    if problem is not None:
        raise DatasetError(
            f"the sync manifest {where} of data set {kind}/{name} cannot be used: {problem}; sync the data "
            "set again from the machine that has its files with --resync (archai-aml run ... --resync, or "
            "sync_dataset(..., resync=True)), which ignores this manifest, sends every file and writes a new one"
        )
    return dict(data["files"])


def _data_files(folder: Path) -> list[Path]:
    """The files to send under ``folder``, sorted; :class:`DatasetError` naming every symbolic link whose
    target is outside ``folder`` (its content would land in the store). Links to folders inside are not
    descended into (their files are sent under their real path)."""
    root = folder.resolve()
    files: list[Path] = []
    leaving: list[str] = []
    for here, dirs, names in os.walk(folder, followlinks=False):
        base = Path(here)
        for entry in [*dirs, *names]:
            path = base / entry
            if not path.is_symlink():
                if entry in names:
                    files.append(path)
                continue
            target = path.resolve()
            if target != root and root not in target.parents:
                leaving.append(f"{path.relative_to(folder).as_posix()} -> {os.readlink(path)}")
            elif entry in names and target.is_file():
                files.append(path)
    if leaving:
        raise DatasetError(
            f"data folder {folder} holds {len(leaving)} symbolic link(s) that leave it: "
            f"{', '.join(sorted(leaving))}; nothing was sent: copy those files into the folder or remove "
            "the links (the sync sends no file from outside the data folder)"
        )
    return sorted(files)


def _write_manifest(
    store: Store, partition: str, kind: str, name: str, files: dict[str, dict[str, object]]
) -> None:
    text = json.dumps({"dataset": f"{kind}/{name}", "files": dict(sorted(files.items()))}, indent=1)
    store.upload_bytes(partition, kind, manifest_blob(name), text.encode("utf-8"))


def zip_folder(folder: Path) -> bytes:
    """A deterministic zip of ``folder`` (sorted names, fixed timestamps, stored without compression)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in _data_files(folder):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return out.getvalue()


def _store_differs(entry: Mapping[str, object], listed: BlobInfo | None) -> str | None:
    """How the stored blob differs from its manifest entry (missing, size, MD5), or None."""
    if listed is None:
        return "is missing from the store"
    if isinstance(entry.get("size"), int) and listed.size != entry["size"]:
        return f"has {listed.size} bytes in the store, the manifest says {entry['size']}"
    md5 = entry.get("md5")
    if isinstance(md5, str) and listed.md5 is not None and listed.md5 != md5:
        return "has another content in the store than the one sent (its MD5 differs)"
    return None


def sync_dataset(
    store: Store,
    data_root: str | Path,
    dataset: str,
    *,
    partition: str = DATA_PARTITION,
    concurrency: int = 8,
    zipped: bool = False,
    checkpoint_every: int = 50,
    progress: bool = True,
    on_file: Callable[[str], None] | None = None,
    resync: bool = False,
) -> SyncResult:
    """Send ``data_root/<kind>/<name>`` (``dataset`` = ``kind/name``) to the store; see the module docstring.

    ``data_root`` is the project's ``data_blobs`` folder. ``concurrency=1`` sends one file at a time.
    ``resync=True`` ignores the stored manifest (also one that cannot be read): every file is sent again.
    """
    kind, name = _split(dataset)
    folder = safe_blob_path(Path(data_root) / kind, name)
    if not folder.is_dir():
        raise ConfigError(f"data set {dataset}: {folder} is not a folder")
    if concurrency < 1:
        raise ConfigError(f"sync concurrency must be at least 1, got {concurrency}")
    pending: dict[str, Path | bytes] = {}
    if zipped:
        pending[f"{name}.zip"] = zip_folder(folder)
    else:
        for path in _data_files(folder):
            pending[f"{name}/{path.relative_to(folder).as_posix()}"] = path
    stored = None if resync else _read_manifest(store, partition, kind, name)
    manifest = {} if stored is None else stored
    # the store's own listing (sizes and MD5s, one request per 5,000 blobs): a blob replaced or deleted
    # behind the manifest's back is sent again
    listed = (
        store.list_blob_info(partition, kind, pattern=f"^{re.escape(name)}(/|\\.zip$)") if manifest else {}
    )
    result = SyncResult(dataset=f"{kind}/{name}")
    todo: dict[str, Path | bytes] = {}
    for blob, source in pending.items():
        entry = manifest.get(blob)
        if isinstance(entry, dict) and entry.get("sha256") == _digest(source):
            problem = _store_differs(entry, listed.get(blob))
            if problem is None:
                result.skipped.append(blob)
                continue
            log.warning("sync %s: blob %s %s: sending it again", dataset, blob, problem)
        todo[blob] = source
    lock = threading.Lock()
    writing = threading.Lock()  # checkpoints one at a time, outside ``lock`` so uploads go on meanwhile
    contents = _ReadOnSend(todo)
    arrived = 0
    written = 0

    def checkpoint(snapshot: dict[str, dict[str, object]], count: int) -> None:
        nonlocal written
        with writing:
            if count > written:  # a later snapshot may have been written already
                _write_manifest(store, partition, kind, name, snapshot)
                written = count

    def arrived_one(blob: str) -> None:
        nonlocal arrived
        snapshot = None
        with lock:
            digest, size, md5 = contents.sent[blob]
            manifest[blob] = {"sha256": digest, "size": size, "md5": md5}
            result.uploaded.append(blob)
            result.bytes_sent += size
            arrived += 1
            count = arrived
            bar.update(1)
            if arrived % checkpoint_every == 0:
                snapshot = dict(manifest)
        if snapshot is not None:
            checkpoint(snapshot, count)
        if on_file is not None:
            on_file(blob)

    with tqdm(total=len(todo), desc=f"sync {kind}/{name}", unit="file", disable=not progress) as bar:
        try:
            store.upload_blobs(
                partition, kind, contents, max_concurrency=concurrency, on_uploaded=arrived_one
            )
        except BaseException:
            with lock:
                snapshot, count = dict(manifest), arrived
            if count:
                checkpoint(snapshot, count)
            log.warning("sync of %s interrupted: %d files arrived and are recorded", dataset, arrived)
            raise
    stale = [b for b in manifest if b not in pending]
    for blob in stale:
        del manifest[blob]
    if result.uploaded or stale or stored is None:
        _write_manifest(store, partition, kind, name, manifest)
    log.info(
        "sync %s: %d sent (%d bytes), %d already there",
        dataset,
        len(result.uploaded),
        result.bytes_sent,
        len(result.skipped),
    )
    return result


def pull_dataset(
    store: Store,
    data_root: str | Path,
    dataset: str,
    *,
    partition: str = DATA_PARTITION,
    concurrency: int = 8,
) -> list[str]:
    """Bring a synced data set into ``data_root/<kind>/`` (another machine, a job that downloads instead of
    mounting): only files whose local hash differs from the manifest. Returns the blob names fetched.

    Each file is written to a temp file beside its target, checked against the manifest's sha256 and only
    then renamed over the target: a blob that differs is a :class:`DatasetError` naming it, and the local
    file stays as it was. The manifest's entries are confined to the data set (see :func:`_read_manifest`).
    """
    kind, name = _split(dataset)
    manifest = _read_manifest(store, partition, kind, name)
    if not manifest:
        raise FileNotFoundError(f"data set {dataset} was never synced to the store (no manifest)")
    base = Path(data_root) / kind
    wanted = []
    for blob, entry in manifest.items():
        target = safe_blob_path(base, blob)
        if not (target.is_file() and _digest(target) == entry.get("sha256")):
            wanted.append(blob)

    def fetch(blob: str) -> None:
        target = safe_blob_path(base, blob)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = store.download_bytes(partition, kind, blob)
        expected = manifest[blob].get("sha256")
        if _sha256(data) != expected:
            raise DatasetError(
                f"blob {partition}/{kind}/{blob} ({len(data)} bytes, sha256 {_sha256(data)[:16]}...) is not "
                f"the file the manifest of {kind}/{name} records (sha256 {str(expected)[:16]}...): it was "
                f"replaced in the store; nothing written to {target}: sync the data set again from the "
                "machine that has its files (archai-aml run ... --resync)"
            )
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.part"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    run_parallel(fetch, wanted, max(1, concurrency), name="pull")
    return wanted
