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
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from archai_aml.errors import ConfigError
from archai_aml.paths import KINDS
from archai_aml.store import Store
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
        self.sent: dict[str, tuple[str, int]] = {}

    def __getitem__(self, blob: str) -> bytes:
        source = self._sources[blob]
        data = source if isinstance(source, bytes) else source.read_bytes()
        self.sent[blob] = (_sha256(data), len(data))
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


def _read_manifest(store: Store, partition: str, kind: str, name: str) -> dict[str, dict[str, object]] | None:
    """The manifest's files (blob -> sha256 and size); None when the data set has no manifest yet."""
    try:
        data = json.loads(store.download_bytes(partition, kind, manifest_blob(name)))
    except FileNotFoundError:
        return None
    files = data.get("files") if isinstance(data, dict) else None
    return dict(files) if isinstance(files, dict) else {}


def _write_manifest(
    store: Store, partition: str, kind: str, name: str, files: dict[str, dict[str, object]]
) -> None:
    text = json.dumps({"dataset": f"{kind}/{name}", "files": dict(sorted(files.items()))}, indent=1)
    store.upload_bytes(partition, kind, manifest_blob(name), text.encode("utf-8"))


def zip_folder(folder: Path) -> bytes:
    """A deterministic zip of ``folder`` (sorted names, fixed timestamps, stored without compression)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return out.getvalue()


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
) -> SyncResult:
    """Send ``data_root/<kind>/<name>`` (``dataset`` = ``kind/name``) to the store; see the module docstring.

    ``data_root`` is the project's ``data_blobs`` folder. ``concurrency=1`` sends one file at a time.
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
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            pending[f"{name}/{path.relative_to(folder).as_posix()}"] = path
    stored = _read_manifest(store, partition, kind, name)
    manifest = {} if stored is None else stored
    result = SyncResult(dataset=f"{kind}/{name}")
    todo: dict[str, Path | bytes] = {}
    for blob, source in pending.items():
        entry = manifest.get(blob)
        if isinstance(entry, dict) and entry.get("sha256") == _digest(source):
            result.skipped.append(blob)
        else:
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
            digest, size = contents.sent[blob]
            manifest[blob] = {"sha256": digest, "size": size}
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
    mounting): only files whose local hash differs from the manifest. Returns the blob names fetched."""
    kind, name = _split(dataset)
    manifest = _read_manifest(store, partition, kind, name)
    if not manifest:
        raise FileNotFoundError(f"data set {dataset} was never synced to the store (no manifest)")
    base = Path(data_root) / kind
    wanted = []
    for blob, entry in manifest.items():
        target = safe_blob_path(base, blob)
        if not (target.is_file() and isinstance(entry, dict) and _digest(target) == entry.get("sha256")):
            wanted.append(blob)

    def fetch(blob: str) -> None:
        target = safe_blob_path(base, blob)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.download_bytes(partition, kind, blob))

    run_parallel(fetch, wanted, max(1, concurrency), name="pull")
    return wanted
