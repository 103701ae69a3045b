"""Data sync of the executor on both store backends (embedded files and Azurite): only new or changed files,
nothing the second time, the manifest beside the blobs lets another machine skip too, zipped folders,
an interrupted sync resumes without re-sending what arrived."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from archai_aml.errors import ConfigError, UnsafeBlobNameError
from archai_aml.executor.sync import DATA_PARTITION, manifest_blob, pull_dataset, sync_dataset
from archai_aml.paths import ProjectPaths
from archai_aml.store import Store
from archai_aml.store.counting import CountingStore


class RecordingStore(CountingStore):
    """The real store, with each uploaded blob name recorded; ``fail_after`` data files it raises."""

    def __init__(self, inner: Store, fail_after: int | None = None) -> None:
        super().__init__(inner)
        self.sent: list[str] = []
        self.fail_after = fail_after
        self._guard = threading.Lock()

    def upload_bytes(self, partition: str, name: str, blob_name: str, data: bytes, **kw: Any) -> str:  # type: ignore[override]
        if not blob_name.startswith(".sync/"):
            with self._guard:
                if self.fail_after is not None and len(self.sent) >= self.fail_after:
                    raise ConnectionError("network down")
                self.sent.append(blob_name)
        return self.inner.upload_bytes(partition, name, blob_name, data, **kw)


def make_data(root: Path, n: int = 40) -> Path:
    folder = root / "data_blobs" / "working" / "faces"
    (folder / "sub").mkdir(parents=True)
    for i in range(n):
        (folder / ("sub" if i % 2 else "") / f"img_{i:03d}.txt").write_text(f"pixel {i}\n" * (i + 1))
    return root / "data_blobs"


def test_second_sync_sends_nothing_and_a_change_sends_one_file(store: Store, tmp_path: Path) -> None:
    data = make_data(tmp_path / "a")
    rec = RecordingStore(store)
    first = sync_dataset(rec, data, "working/faces", concurrency=4, progress=False)
    assert len(first.uploaded) == 40 and first.skipped == [] and len(rec.sent) == 40
    assert sorted(store.list_blobs(DATA_PARTITION, "working", pattern=r"^faces/")) == sorted(first.uploaded)
    assert store.download_bytes(DATA_PARTITION, "working", "faces/sub/img_001.txt") == b"pixel 1\n" * 2
    rec.sent.clear()
    second = sync_dataset(rec, data, "working/faces", concurrency=4, progress=False)
    assert rec.sent == [] and second.uploaded == [] and len(second.skipped) == 40
    (data / "working" / "faces" / "img_004.txt").write_text("changed\n")
    third = sync_dataset(rec, data, "working/faces", concurrency=4, progress=False)
    assert rec.sent == ["faces/img_004.txt"] and third.uploaded == ["faces/img_004.txt"]
    # another machine with the same files: the manifest beside the blobs says they are there
    other = tmp_path / "b" / "data_blobs"
    shutil.copytree(data, other)
    rec.sent.clear()
    assert sync_dataset(rec, other, "working/faces", progress=False).uploaded == [] and rec.sent == []
    # and a machine without them pulls them back, byte for byte
    fetched = pull_dataset(store, tmp_path / "c" / "data_blobs", "working/faces")
    assert len(fetched) == 40
    assert (tmp_path / "c/data_blobs/working/faces/img_004.txt").read_text() == "changed\n"
    assert pull_dataset(store, tmp_path / "c" / "data_blobs", "working/faces") == []


def test_sync_through_the_backend_itself_sends_each_file_once(store: Store, tmp_path: Path) -> None:
    # no recording proxy: the backend's own upload_blobs (on Azure one listing, then a request per file)
    data = make_data(tmp_path, n=30)
    first = sync_dataset(store, data, "working/faces", concurrency=6, checkpoint_every=7, progress=False)
    assert len(first.uploaded) == 30 and first.bytes_sent == sum(
        p.stat().st_size for p in (data / "working" / "faces").rglob("*.txt")
    )
    assert sorted(store.list_blobs(DATA_PARTITION, "working", pattern=r"^faces/")) == sorted(first.uploaded)
    again = sync_dataset(store, data, "working/faces", concurrency=6, progress=False)
    assert again.uploaded == [] and sorted(again.skipped) == sorted(first.uploaded)


class EditingStore(CountingStore):
    """The real store; just before the files go out, one of them is rewritten (a user editing the data)."""

    def __init__(self, inner: Store, path: Path, text: str) -> None:
        super().__init__(inner)
        self.path, self.text = path, text

    def upload_blobs(self, partition: str, name: str, blobs: Any, **kw: Any) -> list[str]:  # type: ignore[override]
        self.path.write_text(self.text)
        return self.inner.upload_blobs(partition, name, blobs, **kw)


def test_the_manifest_records_what_was_sent_when_a_file_changes_meanwhile(
    store: Store, tmp_path: Path
) -> None:
    data = make_data(tmp_path, n=6)
    edited = data / "working" / "faces" / "img_002.txt"
    before = edited.read_text()
    sync_dataset(EditingStore(store, edited, "edited while syncing\n"), data, "working/faces", progress=False)
    assert store.download_bytes(DATA_PARTITION, "working", "faces/img_002.txt") == b"edited while syncing\n"
    # the file as sent is recorded: nothing to send now; putting the old text back sends it again
    assert sync_dataset(store, data, "working/faces", progress=False).uploaded == []
    edited.write_text(before)
    assert sync_dataset(store, data, "working/faces", progress=False).uploaded == ["faces/img_002.txt"]
    assert store.download_bytes(DATA_PARTITION, "working", "faces/img_002.txt") == before.encode()


def test_interrupted_sync_resumes_without_resending(store: Store, tmp_path: Path) -> None:
    data = make_data(tmp_path, n=60)
    broken = RecordingStore(store, fail_after=25)
    with pytest.raises(ConnectionError, match="network down"):
        sync_dataset(broken, data, "working/faces", concurrency=3, checkpoint_every=10, progress=False)
    arrived = set(broken.sent)
    assert len(arrived) == 25
    resumed = RecordingStore(store)
    result = sync_dataset(resumed, data, "working/faces", concurrency=3, progress=False)
    assert set(resumed.sent).isdisjoint(arrived) and len(resumed.sent) == 35
    assert sorted(result.skipped) == sorted(arrived)
    assert len(store.list_blobs(DATA_PARTITION, "working", pattern=r"^faces/")) == 60


def test_zipped_folder_is_one_blob_sent_once_and_extracted_by_paths(store: Store, tmp_path: Path) -> None:
    data = make_data(tmp_path)
    rec = RecordingStore(store)
    first = sync_dataset(rec, data, "working/faces", zipped=True, progress=False)
    assert first.uploaded == ["faces.zip"] and rec.sent == ["faces.zip"]
    assert sync_dataset(rec, data, "working/faces", zipped=True, progress=False).uploaded == []
    assert manifest_blob("faces") in store.list_blobs(DATA_PARTITION, "working")
    # inside a job the zip is what the mount shows: paths extracts it on first use
    job = tmp_path / "job"
    pull_dataset(store, job / "data_blobs", "working/faces")
    paths = ProjectPaths.of_project(job)
    faces = paths.data("working", "faces")
    assert (faces / "sub" / "img_001.txt").read_text() == "pixel 1\n" * 2
    assert len([p for p in faces.rglob("*.txt")]) == 40


def test_bad_dataset_names_are_config_errors(store: Store, tmp_path: Path) -> None:
    data = make_data(tmp_path)
    for bad in ("faces", "other/faces", "working/../x"):
        with pytest.raises((ConfigError, UnsafeBlobNameError)):
            sync_dataset(store, data, bad, progress=False)
    with pytest.raises(ConfigError, match="is not a folder"):
        sync_dataset(store, data, "raw/none", progress=False)
