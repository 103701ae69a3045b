"""What the data sync checks instead of trusting, on both store backends (embedded files and Azurite): links
that leave the data folder, pulled files against the manifest's sha256, the store's own listing against the
manifest, manifest entries confined to their data set, manifests that are not ones the sync wrote."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from archai_aml.errors import DatasetError
from archai_aml.executor.sync import DATA_PARTITION, manifest_blob, pull_dataset, sync_dataset
from archai_aml.store import BlobInfo, Store
from tests.test_executor_sync import RecordingStore, make_data


def test_a_link_that_leaves_the_data_folder_is_refused_by_name(store: Store, tmp_path: Path) -> None:
    data = make_data(tmp_path / "p", n=4)
    faces = data / "working" / "faces"
    secret = tmp_path / "outside.txt"
    secret.write_text("not data\n")
    os.symlink(secret, faces / "sneaky.txt")
    os.symlink(tmp_path, faces / "whole_home")  # a folder outside: refused as well
    with pytest.raises(DatasetError, match=r"sneaky\.txt -> .*outside\.txt") as info:
        sync_dataset(store, data, "working/faces", progress=False)
    assert "whole_home" in str(info.value)
    assert store.list_blobs(DATA_PARTITION, "working") == []  # nothing sent
    with pytest.raises(DatasetError, match="sneaky"):
        sync_dataset(store, data, "working/faces", zipped=True, progress=False)
    # links that stay inside are fine: a file link is sent as its content
    (faces / "sneaky.txt").unlink()
    (faces / "whole_home").unlink()
    os.symlink(faces / "img_000.txt", faces / "alias.txt")
    result = sync_dataset(store, data, "working/faces", progress=False)
    assert "faces/alias.txt" in result.uploaded
    assert store.download_bytes(DATA_PARTITION, "working", "faces/alias.txt") == b"pixel 0\n"


def test_list_blob_info_gives_size_and_md5_from_the_listing(store: Store) -> None:
    store.upload_bytes("p", "e", "a/x.bin", b"hello")
    store.upload_blobs("p", "e", {"b.bin": b"123456"})
    info = store.list_blob_info("p", "e")
    assert info == {
        "a/x.bin": BlobInfo(5, hashlib.md5(b"hello").hexdigest()),
        "b.bin": BlobInfo(6, hashlib.md5(b"123456").hexdigest()),
    }
    store.upload_bytes("p", "e", "b.bin", b"654321")  # same size, other content
    assert store.list_blob_info("p", "e", pattern=r"^b")["b.bin"].md5 == hashlib.md5(b"654321").hexdigest()
    assert list(store.list_blob_info("p")) == ["e/a/x.bin", "e/b.bin"]


def test_a_blob_replaced_or_deleted_in_the_store_is_sent_again(store: Store, tmp_path: Path) -> None:
    data = make_data(tmp_path, n=6)
    sync_dataset(store, data, "working/faces", progress=False)
    original = store.download_bytes(DATA_PARTITION, "working", "faces/img_002.txt")
    # replaced behind the manifest's back by a blob of the same size, another deleted
    store.upload_bytes(DATA_PARTITION, "working", "faces/img_002.txt", b"X" * len(original))
    store.delete_blobs(DATA_PARTITION, "working", pattern=r"^faces/img_004\.txt$")
    rec = RecordingStore(store)
    result = sync_dataset(rec, data, "working/faces", progress=False)
    assert sorted(rec.sent) == ["faces/img_002.txt", "faces/img_004.txt"]
    assert sorted(result.uploaded) == sorted(rec.sent) and len(result.skipped) == 4
    assert store.download_bytes(DATA_PARTITION, "working", "faces/img_002.txt") == original
    rec.sent.clear()
    assert sync_dataset(rec, data, "working/faces", progress=False).uploaded == [] and rec.sent == []


def test_a_pull_verifies_every_file_and_leaves_nothing_unverified(store: Store, tmp_path: Path) -> None:
    data = make_data(tmp_path / "a", n=4)
    sync_dataset(store, data, "working/faces", progress=False)
    other = tmp_path / "b" / "data_blobs"
    pull_dataset(store, other, "working/faces")
    local = other / "working" / "faces" / "img_002.txt"
    before = local.read_bytes()
    local.write_text("edited here\n")  # so the pull wants it again
    store.upload_bytes(DATA_PARTITION, "working", "faces/img_002.txt", b"replaced in the store\n")
    with pytest.raises(DatasetError, match=r"faces/img_002\.txt .*not the file the manifest"):
        pull_dataset(store, other, "working/faces", concurrency=1)
    assert local.read_text() == "edited here\n"  # the user's file untouched
    fresh = tmp_path / "c" / "data_blobs"
    with pytest.raises(DatasetError):
        pull_dataset(store, fresh, "working/faces", concurrency=1)
    assert not (fresh / "working" / "faces" / "img_002.txt").exists()
    assert not [p for p in (tmp_path / "b").rglob("*.part")] + [p for p in (tmp_path / "c").rglob("*.part")]
    # the data set synced again from the machine with the files: the pull goes through
    sync_dataset(store, data, "working/faces", progress=False)
    assert pull_dataset(store, other, "working/faces") == ["faces/img_002.txt"]
    assert local.read_bytes() == before


def _poison(store: Store, name: str, content: bytes) -> None:
    store.upload_bytes(DATA_PARTITION, "working", manifest_blob(name), content)


def test_a_manifest_entry_of_another_data_set_is_refused(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "data_blobs"
    for name in ("victim", "neighbour"):
        (root / "working" / name).mkdir(parents=True)
        (root / "working" / name / "keep.txt").write_text(f"{name}'s own\n")
        sync_dataset(store, root, f"working/{name}", progress=False)
    store.upload_bytes(DATA_PARTITION, "working", "victim/keep.txt", b"planted\n")
    manifest = {"files": {"neighbour/keep.txt": {"sha256": hashlib.sha256(b"planted\n").hexdigest()}}}
    _poison(store, "victim", json.dumps(manifest).encode())
    (root / "working" / "neighbour" / "keep.txt").write_text("changed locally\n")
    with pytest.raises(DatasetError, match=r"'neighbour/keep\.txt' is not a file of data set working/victim"):
        pull_dataset(store, root, "working/victim")
    assert (root / "working" / "neighbour" / "keep.txt").read_text() == "changed locally\n"


@pytest.mark.parametrize(
    "content", [b"\xff\xfe not json \x80", b"{not json", b'[{"files": {}}]', b'{"files": ["x"]}']
)
def test_a_bad_manifest_names_itself_and_the_way_out(store: Store, tmp_path: Path, content: bytes) -> None:
    data = make_data(tmp_path, n=3)
    sync_dataset(store, data, "working/faces", progress=False)
    _poison(store, "faces", content)
    where = f"{DATA_PARTITION}/working/.sync/faces.json"
    for action in (
        lambda: sync_dataset(store, data, "working/faces", progress=False),
        lambda: pull_dataset(store, tmp_path / "other", "working/faces"),
    ):
        with pytest.raises(DatasetError, match=r"--resync") as info:
            action()
        assert where in str(info.value)
    result = sync_dataset(store, data, "working/faces", progress=False, resync=True)
    assert len(result.uploaded) == 3
    assert pull_dataset(store, tmp_path / "other", "working/faces") == sorted(result.uploaded)
