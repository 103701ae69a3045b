"""The Store contract: every backend (embedded SQLite, Azure on Azurite) must pass these same tests.

The ``store`` fixture (tests/conftest.py) gives a fresh table and container of each backend.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from archai_aml.errors import (
    BlobConflictError,
    BlobExistsError,
    ConcurrencyError,
    EntityExistsError,
    InvalidNameError,
    StoreError,
    UnsafeBlobNameError,
)
from archai_aml.store import Store

P = "exp1"

TYPED_VALUES = {
    "small_int": 7,
    "zero": 0,
    "negative_int": -123456789,
    "big_int": 2**53 + 1,  # not representable as a double
    "max_int64": 2**63 - 1,
    "min_int64": -(2**63),
    "tenth": 0.1,
    "float_one": 1.0,  # a float that looks like an int must stay a float
    "tiny": 1e-300,
    "negative_float": -2.5e10,
    "yes": True,
    "no": False,
    "text": "héllo wörld ✓ 模型",
    "empty_text": "",
    "json_text": '{"shape": [1, 3, 256, 256]}',
    "when": datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone.utc),
    "when_zero_us": datetime(2001, 1, 1, 0, 0, 0, tzinfo=timezone.utc),
}


def user_part(entity: dict) -> dict:
    return {k: v for k, v in entity.items() if k not in ("partition", "name", "_version", "_timestamp")}


# ------------------------------------------------------------------------------------------ entities
def test_round_trip_of_every_type(store: Store) -> None:
    created = store.create(P, "m1", TYPED_VALUES)
    got = store.get(P, "m1")
    assert got is not None
    assert user_part(got) == TYPED_VALUES
    assert user_part(created) == TYPED_VALUES
    for key, value in TYPED_VALUES.items():
        assert type(got[key]) is type(value), (key, type(got[key]))
    assert got["when"].tzinfo is not None and got["when"].utcoffset() == timedelta(0)
    assert got["when"].microsecond == 123456
    assert got["partition"] == P and got["name"] == "m1"
    assert isinstance(got["_version"], str) and got["_version"] == created["_version"]
    assert isinstance(got["_timestamp"], datetime) and got["_timestamp"].tzinfo is not None
    assert abs(got["_timestamp"] - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_non_utc_datetime_is_stored_as_the_same_instant_in_utc(store: Store) -> None:
    plus2 = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 1, 12, 30, 0, 500, tzinfo=plus2)
    store.create(P, "m1", {"when": local})
    got = store.get(P, "m1")
    assert got is not None
    assert got["when"] == local
    assert got["when"].utcoffset() == timedelta(0)
    assert got["when"].hour == 10 and got["when"].microsecond == 500


def test_get_missing_is_none_and_create_twice_fails(store: Store) -> None:
    assert store.get(P, "nope") is None
    store.create(P, "m1", {"a": 1})
    with pytest.raises(EntityExistsError):
        store.create(P, "m1", {"a": 2})
    got = store.get(P, "m1")
    assert got is not None and got["a"] == 1


def test_invalid_columns_and_keys_are_rejected(store: Store) -> None:
    with pytest.raises(ValueError):
        store.create(P, "m1", {"bad name": 1})
    with pytest.raises(TypeError):
        store.create(P, "m1", {"shape": [1, 2, 3]})
    with pytest.raises(ValueError):
        store.create(P, "a/b", {"x": 1})
    with pytest.raises(ValueError):
        store.get("p#1", "m1")
    assert store.get(P, "m1") is None


def test_get_or_create(store: Store) -> None:
    first = store.get_or_create(P, "m1", {"status": "new", "priority": 3})
    assert user_part(first) == {"status": "new", "priority": 3}
    again = store.get_or_create(P, "m1", {"status": "other"})
    assert user_part(again) == {"status": "new", "priority": 3}
    assert again["_version"] == first["_version"]


def test_get_or_create_race_returns_one_entity(store: Store) -> None:
    results: list[dict] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results.append(store.get_or_create(P, "raced", {"creator": i}))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 6
    creators = {r["creator"] for r in results}
    versions = {r["_version"] for r in results}
    assert len(creators) == 1 and len(versions) == 1
    stored = store.get(P, "raced")
    assert stored is not None and stored["creator"] in creators and stored["_version"] in versions


def test_replace(store: Store) -> None:
    first = store.replace(P, "m1", {"a": 1, "b": "x"})  # upsert
    assert user_part(first) == {"a": 1, "b": "x"}
    second = store.replace(P, "m1", {"c": 2.5}, expected_version=first["_version"])
    assert user_part(second) == {"c": 2.5}
    assert second["_version"] != first["_version"]
    got = store.get(P, "m1")
    assert got is not None and user_part(got) == {"c": 2.5} and got["_version"] == second["_version"]
    with pytest.raises(ConcurrencyError):
        store.replace(P, "m1", {"d": 1}, expected_version=first["_version"])
    got = store.get(P, "m1")
    assert got is not None and user_part(got) == {"c": 2.5}
    with pytest.raises(ConcurrencyError):
        store.replace(P, "missing", {"d": 1}, expected_version=first["_version"])
    assert store.get(P, "missing") is None
    third = store.replace(P, "m1", {"e": True})  # unconditional
    assert user_part(third) == {"e": True}


def test_merge(store: Store) -> None:
    first = store.merge(P, "m1", {"a": 1, "b": "x", "c": 0.5})  # upsert
    assert user_part(first) == {"a": 1, "b": "x", "c": 0.5}
    second = store.merge(P, "m1", {"b": "y", "c": None, "d": False}, expected_version=first["_version"])
    assert user_part(second) == {"a": 1, "b": "y", "d": False}
    assert second["_version"] != first["_version"]
    got = store.get(P, "m1")
    assert got is not None and user_part(got) == {"a": 1, "b": "y", "d": False}
    assert got["_version"] == second["_version"]
    with pytest.raises(ConcurrencyError):
        store.merge(P, "m1", {"a": 99}, expected_version=first["_version"])
    got = store.get(P, "m1")
    assert got is not None and got["a"] == 1
    with pytest.raises(ConcurrencyError):
        store.merge(P, "missing", {"a": 1}, expected_version=second["_version"])
    assert store.get(P, "missing") is None
    # removing a column that is not there is harmless
    third = store.merge(P, "m1", {"nothere": None})
    assert user_part(third) == {"a": 1, "b": "y", "d": False}


def test_version_changes_on_every_write_and_is_not_reused(store: Store) -> None:
    seen = []
    e = store.create(P, "m1", {"a": 1})
    seen.append(e["_version"])
    for i in range(3):
        e = store.merge(P, "m1", {"a": i + 2}, expected_version=e["_version"])
        seen.append(e["_version"])
    assert store.delete(P, "m1", expected_version=e["_version"]) is True
    e = store.create(P, "m1", {"a": 1})
    seen.append(e["_version"])
    assert len(set(seen)) == len(seen)
    with pytest.raises(ConcurrencyError):  # a version of the deleted incarnation does not match the new one
        store.merge(P, "m1", {"a": 5}, expected_version=seen[0])


def test_delete(store: Store) -> None:
    assert store.delete(P, "missing") is False
    first = store.create(P, "m1", {"a": 1})
    with pytest.raises(ConcurrencyError):  # a version the store wrote, but of another entity
        store.delete(P, "missing", expected_version=first["_version"])
    second = store.merge(P, "m1", {"a": 2})
    with pytest.raises(ConcurrencyError):
        store.delete(P, "m1", expected_version=first["_version"])
    assert store.get(P, "m1") is not None
    assert store.delete(P, "m1", expected_version=second["_version"]) is True
    assert store.get(P, "m1") is None
    store.create(P, "m2", {})
    assert store.delete(P, "m2") is True
    assert store.get(P, "m2") is None


def _fill_for_queries(store: Store) -> None:
    when = datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=timezone.utc)
    store.create(P, "a", {"status": "new", "priority": 1, "flag": True, "when": when})
    store.create(P, "b", {"status": "training", "priority": 2, "flag": False})
    store.create(P, "c", {"status": "complete", "priority": 1, "flag": 1})
    store.create(P, "d", {"priority": 3})  # no status
    store.create(P, "e", {"status": "new", "priority": 2, "tag": "x y"})
    store.create("other", "a", {"status": "new", "priority": 1})


def names_of(rows: list[dict]) -> list[str]:
    return [r["name"] for r in rows]


def test_query_filters(store: Store) -> None:
    _fill_for_queries(store)
    assert names_of(store.query(P)) == ["a", "b", "c", "d", "e"]
    assert all(r["partition"] == P for r in store.query(P))
    assert names_of(store.query(P, status="new")) == ["a", "e"]
    assert names_of(store.query(P, status=["new", "complete"])) == ["a", "c", "e"]
    assert names_of(store.query(P, status_not="complete")) == ["a", "b", "d", "e"]
    assert names_of(store.query(P, status_not=["complete", "new"])) == ["b", "d"]
    assert names_of(store.query(P, names={"b", "d", "zz"})) == ["b", "d"]
    assert store.query(P, names=[]) == []
    assert names_of(store.query(P, where={"priority": 1})) == ["a", "c"]
    assert names_of(store.query(P, where={"priority": 2, "status": "new"})) == ["e"]
    assert names_of(store.query(P, where={"tag": "x y"})) == ["e"]
    assert names_of(store.query(P, where={"flag": True})) == ["a"]  # the int 1 of "c" is not True
    assert names_of(store.query(P, where={"flag": False})) == ["b"]
    when = datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=timezone.utc)
    assert names_of(store.query(P, where={"when": when})) == ["a"]
    assert names_of(store.query(P, status="new", names=["a", "b"], where={"flag": True})) == ["a"]
    assert names_of(store.query(P, status_not="new", where={"priority": 1})) == ["c"]
    assert store.query(P, status="nothing") == []
    assert names_of(store.query("other")) == ["a"]
    assert store.query("empty-partition") == []
    row = store.query(P, names=["a"])[0]
    assert row["when"] == when and row["flag"] is True and isinstance(row["_version"], str)
    assert row["_version"] == store.get(P, "a")["_version"]  # type: ignore[index]


def test_partitions_and_tables(store: Store) -> None:
    assert store.partitions() == []
    store.create("zeta", "m", {})
    store.create("alpha", "m", {})
    store.create("alpha", "n", {})
    assert store.partitions() == ["alpha", "zeta"]
    other = store.with_table(store.table_name + "x")
    try:
        assert other.table_name == store.table_name + "x"
        assert other.get("alpha", "m") is None
        assert other.partitions() == []
        other.create("alpha", "m", {"only": "other"})
        got = store.get("alpha", "m")
        assert got is not None and "only" not in got
        # the blob container is shared
        store.upload_bytes("alpha", "m", "x.txt", b"shared")
        assert other.download_bytes("alpha", "m", "x.txt") == b"shared"
    finally:
        other.close()


# --------------------------------------------------------------------------------------------- blobs
def _make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "model.onnx": b"\x08\x01onnx-bytes",
        "log.txt": "ünïcode log\n".encode(),
        "sub/a.json": b'{"a": 1}',
        "sub/deeper/b.bin": bytes(range(256)) * 40,
        "sub/deeper/c.onnx": b"second onnx",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_upload_bytes_and_download_bytes(store: Store) -> None:
    full = store.upload_bytes(P, "m1", "dir/x.bin", b"\x00\x01payload")
    assert full == f"{P}/m1/dir/x.bin"
    assert store.download_bytes(P, "m1", "dir/x.bin") == b"\x00\x01payload"
    with pytest.raises(FileNotFoundError):
        store.download_bytes(P, "m1", "dir/missing.bin")
    store.upload_bytes(P, "m1", "dir/x.bin", b"second")
    assert store.download_bytes(P, "m1", "dir/x.bin") == b"second"
    with pytest.raises(BlobExistsError):
        store.upload_bytes(P, "m1", "dir/x.bin", b"third", overwrite=False)
    with pytest.raises(FileExistsError):  # BlobExistsError is also a FileExistsError
        store.upload_bytes(P, "m1", "dir/x.bin", b"third", overwrite=False)
    assert store.download_bytes(P, "m1", "dir/x.bin") == b"second"
    store.upload_bytes(P, "m1", "new.bin", b"fresh", overwrite=False)
    assert store.download_bytes(P, "m1", "new.bin") == b"fresh"


def test_upload_file_and_folder_then_list(store: Store, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    assert store.upload(P, "m1", tmp_path / "src" / "model.onnx") == [f"{P}/m1/model.onnx"]
    assert store.upload(P, "m1", tmp_path / "src" / "log.txt", blob_name="logs/run.txt") == [
        f"{P}/m1/logs/run.txt"
    ]
    uploaded = store.upload(P, "m2", tmp_path / "src", max_concurrency=2)
    assert sorted(uploaded) == sorted(f"{P}/m2/{rel}" for rel in files)
    prefixed = store.upload(P, "m3", tmp_path / "src" / "sub", blob_name="out")
    assert sorted(prefixed) == [f"{P}/m3/out/a.json", f"{P}/m3/out/deeper/b.bin", f"{P}/m3/out/deeper/c.onnx"]

    assert store.list_blobs(P, "m1") == ["logs/run.txt", "model.onnx"]
    assert store.list_blobs(P, "m2") == sorted(files)
    assert store.list_blobs(P, "m2", pattern=r"\.onnx$") == ["model.onnx", "sub/deeper/c.onnx"]
    assert store.list_blobs(P, "nothing") == []
    whole = store.list_blobs(P)
    assert "m1/model.onnx" in whole and "m3/out/deeper/b.bin" in whole
    assert len(whole) == 2 + len(files) + 3
    assert store.list_blobs("other-partition") == []
    for rel, data in files.items():
        assert store.download_bytes(P, "m2", rel) == data


def test_upload_folder_many_files_bounded(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "many"
    src.mkdir()
    for i in range(24):
        (src / f"f{i:02d}.txt").write_text(f"file {i}")
    uploaded = store.upload(P, "many", src, max_concurrency=3)
    assert len(uploaded) == 24
    assert store.list_blobs(P, "many") == [f"f{i:02d}.txt" for i in range(24)]
    assert store.download_bytes(P, "many", "f17.txt") == b"file 17"


def test_download_all_by_name_and_by_regex(store: Store, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    store.upload(P, "m1", tmp_path / "src")

    all_out = tmp_path / "all"
    paths = store.download(P, "m1", all_out, max_concurrency=3)
    assert sorted(p.relative_to(all_out).as_posix() for p in paths) == sorted(files)
    for rel, data in files.items():
        assert (all_out / rel).read_bytes() == data

    named_out = tmp_path / "named"
    paths = store.download(P, "m1", named_out, blob_names=["sub/a.json"])
    assert paths == [named_out / "sub" / "a.json"] or [p.resolve() for p in paths] == [
        (named_out / "sub" / "a.json").resolve()
    ]
    assert sorted(p.relative_to(named_out).as_posix() for p in named_out.rglob("*") if p.is_file()) == [
        "sub/a.json"
    ]

    regex_out = tmp_path / "regex"
    paths = store.download(P, "m1", regex_out, pattern=r"\.onnx$")
    got = sorted(p.relative_to(regex_out).as_posix() for p in regex_out.rglob("*") if p.is_file())
    assert got == ["model.onnx", "sub/deeper/c.onnx"]
    assert len(paths) == 2
    assert (regex_out / "sub/deeper/c.onnx").read_bytes() == b"second onnx"

    # names and a pattern: the named blobs that match
    both_out = tmp_path / "both"
    paths = store.download(P, "m1", both_out, blob_names=["model.onnx", "log.txt"], pattern=r"\.onnx$")
    assert [p.relative_to(both_out).as_posix() for p in paths] == ["model.onnx"]
    assert not (both_out / "log.txt").exists()

    with pytest.raises(FileNotFoundError):
        store.download(P, "m1", tmp_path / "missing", blob_names=["not-there.bin"])


def test_delete_blobs(store: Store, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    store.upload(P, "m1", tmp_path / "src")
    store.upload_bytes(P, "m2", "keep.txt", b"keep")
    assert store.delete_blobs(P, "m1", pattern=r"\.onnx$") == 2
    assert store.list_blobs(P, "m1") == sorted(set(files) - {"model.onnx", "sub/deeper/c.onnx"})
    assert store.delete_blobs(P, "m1") == len(files) - 2
    assert store.list_blobs(P, "m1") == []
    assert store.delete_blobs(P, "m1") == 0
    assert store.list_blobs(P, "m2") == ["keep.txt"]


UNSAFE = ["../x", "/etc/passwd", "a/../../b", "..", "sub/../../../escape.txt", ".", "./x", "a/./b", "a/."]


@pytest.mark.parametrize("bad", UNSAFE)
def test_unsafe_blob_names_are_rejected_and_nothing_written(store: Store, tmp_path: Path, bad: str) -> None:
    store.upload_bytes(P, "m1", "good.txt", b"good")
    target = tmp_path / "sandbox" / "target"
    with pytest.raises(UnsafeBlobNameError):
        store.download(P, "m1", target, blob_names=["good.txt", bad])
    # nothing written: neither the good blob nor anything around the target folder
    written = [p for p in (tmp_path / "sandbox").rglob("*") if p.is_file()] if target.parent.exists() else []
    assert written == []
    with pytest.raises(UnsafeBlobNameError):
        store.upload_bytes(P, "m1", bad, b"evil")
    with pytest.raises(UnsafeBlobNameError):
        store.download_bytes(P, "m1", bad)
    assert store.list_blobs(P, "m1") == ["good.txt"]
    assert not (tmp_path / "x").exists() and not (tmp_path / "sandbox" / "b").exists()
    assert not (tmp_path / "sandbox" / "escape.txt").exists()


def test_cas_merge_from_a_known_entity(store: Store) -> None:
    created = store.create(
        P, "m1", {"a": 1, "b": "x", "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)}
    )
    queried = store.query(P, names=["m1"])[0]
    first = store.cas_merge(queried, {"b": "y", "c": 2.5})  # set columns
    assert user_part(first) == {"a": 1, "b": "y", "c": 2.5, "when": created["when"]}
    assert first["_version"] != created["_version"]
    got = store.get(P, "m1")
    assert got is not None and user_part(got) == user_part(first) and got["_version"] == first["_version"]
    second = store.cas_merge(first, {"a": None, "d": True})  # remove a column in the same write
    assert user_part(second) == {"b": "y", "c": 2.5, "d": True, "when": created["when"]}
    got = store.get(P, "m1")
    assert got is not None and user_part(got) == user_part(second) and got["_version"] == second["_version"]
    # a stale entity (set or remove) fails and writes nothing
    with pytest.raises(ConcurrencyError):
        store.cas_merge(first, {"b": "stale"})
    with pytest.raises(ConcurrencyError):
        store.cas_merge(first, {"b": None})
    got = store.get(P, "m1")
    assert got is not None and got["b"] == "y" and got["_version"] == second["_version"]
    # a deleted entity is not recreated
    assert store.delete(P, "m1")
    with pytest.raises(ConcurrencyError):
        store.cas_merge(second, {"b": "z"})
    with pytest.raises(ConcurrencyError):
        store.cas_merge(second, {"b": None})
    assert store.get(P, "m1") is None
    # removing a column rewrites the known columns: every type survives exactly
    typed = store.create(P, "typed", TYPED_VALUES)
    removed = store.cas_merge(store.query(P, names=["typed"])[0], {"text": None})
    expected = {k: v for k, v in TYPED_VALUES.items() if k != "text"}
    assert user_part(removed) == expected and removed["_version"] != typed["_version"]
    got = store.get(P, "typed")
    assert got is not None and user_part(got) == expected
    assert all(type(got[k]) is type(v) for k, v in expected.items())


# ------------------------------------------------------------------------------ one key rule (issue 8)
BAD_KEYS = {
    ".": "'.' and '..'",
    "..": "'.' and '..'",
    "a/b": "'/'",
    "a\\b": "'\\\\'",
    "p#1": "'#'",
    "what?": "'?'",
    "tab\there": "U+0009",
    "del\x7f": "U+007F",
    "": "empty",
    "é" * 128: "256 bytes",
}


@pytest.mark.parametrize("bad", list(BAD_KEYS), ids=[repr(k)[:12] for k in BAD_KEYS])
def test_one_key_rule_for_partitions_and_names(store: Store, bad: str, tmp_path: Path) -> None:
    rule = BAD_KEYS[bad]
    for call in (
        lambda: store.create(P, bad, {"x": 1}),
        lambda: store.create(bad, "m1", {"x": 1}),
        lambda: store.merge(P, bad, {"x": 1}),
        lambda: store.replace(bad, "m1", {"x": 1}),
        lambda: store.get(P, bad),
        lambda: store.delete(P, bad),
        lambda: store.upload_bytes(P, bad, "model.onnx", b"x"),
        lambda: store.upload_bytes(bad, "victim", "model.onnx", b"x"),
        lambda: store.download(P, bad, tmp_path / "out"),
        lambda: store.list_blobs(bad),
        lambda: store.delete_blobs(P, bad),
    ):
        with pytest.raises(InvalidNameError, match="invalid (partition|name)") as info:
            call()
        assert rule in str(info.value)
        assert isinstance(info.value, ValueError) and isinstance(info.value, StoreError)
    assert store.partitions() == []
    assert store.list_blobs(P) == []
    assert not (tmp_path / "out").exists()


def test_longest_key_is_accepted_on_every_backend(store: Store) -> None:
    longest = "é" * 127 + "x"  # 255 bytes in UTF-8
    store.create(P, longest, {"x": 1})
    store.upload_bytes(P, longest, "model.onnx", b"m")
    assert store.get(P, longest) is not None
    assert store.list_blobs(P, longest) == ["model.onnx"]
    assert store.download_bytes(P, longest, "model.onnx") == b"m"


def test_dot_blob_name_cannot_turn_the_entity_folder_into_a_file(store: Store) -> None:
    for bad in (".", "a/.", "./a"):
        with pytest.raises(UnsafeBlobNameError, match="'.'"):
            store.upload_bytes(P, "m1", bad, b"x")
    store.upload_bytes(P, "m1", "model.onnx", b"ok")  # the entity can still hold blobs
    assert store.list_blobs(P, "m1") == ["model.onnx"]


# ---------------------------------------------------------------------------- reserved columns (issue 8)
SERVICE_COLUMNS = ["PartitionKey", "RowKey", "Timestamp", "etag", "partitionkey", "ROWKEY", "odata.etag"]


@pytest.mark.parametrize("column", SERVICE_COLUMNS)
def test_service_column_names_are_refused_and_redirect_nothing(store: Store, column: str) -> None:
    victim = store.create("secret", "s1", {"owner": "someone else"})
    m1 = store.create(P, "m1", {"a": 1})
    redirect = {
        column: "secret",
        "RowKey" if column != "RowKey" else "PartitionKey": "s1",
        "owner": "attacker",
    }
    for call in (
        lambda: store.merge(P, "m1", redirect),
        lambda: store.replace(P, "m1", redirect),
        lambda: store.replace(P, "m1", redirect, expected_version=m1["_version"]),
        lambda: store.cas_merge(m1, redirect),
        lambda: store.create(P, "m2", redirect),
        lambda: store.query(P, where={column: "secret"}),
    ):
        with pytest.raises(InvalidNameError, match=r"column '.*' is reserved|invalid column") as info:
            call()
        assert isinstance(info.value, ValueError)
    got = store.get("secret", "s1")
    assert got is not None and got["owner"] == "someone else" and got["_version"] == victim["_version"]
    m1_now = store.get(P, "m1")
    assert m1_now is not None and user_part(m1_now) == {"a": 1} and m1_now["_version"] == m1["_version"]
    assert store.get(P, "m2") is None


def test_reserved_column_message_names_the_column(store: Store) -> None:
    with pytest.raises(InvalidNameError) as info:
        store.merge(P, "m1", {"Timestamp": 1})
    assert "'Timestamp'" in str(info.value) and "reserved" in str(info.value)


def test_more_columns_than_the_table_service_allows_are_refused(store: Store) -> None:
    wide = {f"c{i}": i for i in range(253)}
    with pytest.raises(InvalidNameError, match="253 columns"):
        store.create(P, "wide", wide)
    with pytest.raises(InvalidNameError, match="253 columns"):
        store.replace(P, "wide", wide)
    assert store.get(P, "wide") is None
    store.create(P, "wide", {f"c{i}": i for i in range(252)})


# ------------------------------------------------------------------- blob file vs folder (issue 12)
def test_a_blob_cannot_also_be_a_folder_of_blobs(store: Store, tmp_path: Path) -> None:
    store.upload_bytes(P, "m1", "a", b"file a")
    with pytest.raises(BlobConflictError, match="'a/b'.*conflicts with blob 'a'"):
        store.upload_bytes(P, "m1", "a/b", b"under a")
    store.upload_bytes(P, "m2", "a/b/c", b"deep")
    with pytest.raises(BlobConflictError, match="'a'.*conflicts with blob 'a/b/c'"):
        store.upload_bytes(P, "m2", "a", b"file a")
    with pytest.raises(BlobConflictError, match="'a/b'"):
        store.upload_bytes(P, "m2", "a/b", b"file a/b")
    # a folder upload that would collide writes nothing at all
    src = tmp_path / "src"
    (src / "x").mkdir(parents=True)
    (src / "first.txt").write_text("first")
    (src / "x" / "y.txt").write_text("y")
    with pytest.raises(BlobConflictError):
        store.upload(P, "m1", src, blob_name="a")
    assert store.list_blobs(P, "m1") == ["a"]
    assert store.list_blobs(P, "m2") == ["a/b/c"]
    assert isinstance(BlobConflictError("x"), StoreError)
    # overwriting the same name, and siblings, are fine
    store.upload_bytes(P, "m1", "a", b"again")
    store.upload_bytes(P, "m1", "ab/c", b"sibling")
    assert store.download_bytes(P, "m1", "a") == b"again"
    out = store.download(P, "m1", tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in out) == ["a", "ab/c"]


def test_upload_blobs_checks_every_name_first_and_reports_each_arrival(store: Store) -> None:
    store.upload_bytes(P, "m1", "a", b"stored")
    arrived: list[str] = []
    lock = threading.Lock()

    def record(blob: str) -> None:
        with lock:
            arrived.append(blob)

    blobs = {f"d/{i:02d}.bin": bytes([i]) * 10 for i in range(20)}
    full = store.upload_blobs(P, "m1", blobs, max_concurrency=4, on_uploaded=record)
    assert full == [f"{P}/m1/{blob}" for blob in blobs] and sorted(arrived) == sorted(blobs)
    assert store.download_bytes(P, "m1", "d/07.bin") == bytes([7]) * 10
    # a conflict with a stored blob, between two new ones, or an unsafe name: nothing is written
    for bad, error in (
        ({"ok.bin": b"1", "a/b": b"2"}, BlobConflictError),
        ({"ok.bin": b"1", "e": b"2", "e/f": b"3"}, BlobConflictError),
        ({"ok.bin": b"1", "../escape": b"2"}, UnsafeBlobNameError),
    ):
        with pytest.raises(error):
            store.upload_blobs(P, "m1", bad)
        assert "ok.bin" not in store.list_blobs(P, "m1")


def test_upload_blobs_stops_at_the_first_failure(store: Store) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def fail_on_fifth(blob: str) -> None:
        with lock:
            seen.append(blob)
            if len(seen) == 5:
                raise ConnectionError("link down")

    blobs = {f"f{i:03d}": b"x" for i in range(200)}
    with pytest.raises(ConnectionError, match="link down"):
        store.upload_blobs(P, "m2", blobs, max_concurrency=3, on_uploaded=fail_on_fifth)
    stored = store.list_blobs(P, "m2")
    # the uploads in flight finish (at most 3 more, reported too); none starts after the failure
    assert 5 <= len(stored) <= 7 and sorted(seen) == stored


# --------------------------------------------------------------------------- integers (issue 12)
def test_32_and_64_bit_integers_read_back_as_int(store: Store) -> None:
    values = {"i32": 5, "i32_max": 2**31 - 1, "i32_min": -(2**31), "i64": 2**40, "zero": 0, "f": 1.0}
    store.create(P, "ints", values)
    got = store.get(P, "ints")
    assert got is not None and user_part(got) == values
    assert {k: type(v) for k, v in user_part(got).items()} == {k: type(v) for k, v in values.items()}


# ----------------------------------------------------------------------- progress bars (issue 12)
def _folder_of(root: Path, files: int, size: int) -> Path:
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"img{i:02d}.bin").write_bytes(bytes([i]) * size)
    return root


def test_folder_transfers_show_a_progress_bar_of_bytes_and_files(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _folder_of(tmp_path / "calib", 6, 50_000)
    capsys.readouterr()
    store.upload(P, "m1", src, progress=True)
    err = capsys.readouterr().err
    assert "6/6 files" in err and "upload" in err
    assert "293k" in err or "293" in err  # 300,000 bytes in KiB (unit_divisor 1024)
    store.download(P, "m1", tmp_path / "down", progress=True)
    err = capsys.readouterr().err
    assert "6/6 files" in err and "download" in err
    assert sorted(p.name for p in (tmp_path / "down").iterdir()) == [f"img{i:02d}.bin" for i in range(6)]


def test_progress_bars_can_be_turned_off_per_call_and_per_store(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _folder_of(tmp_path / "calib", 4, 1000)
    capsys.readouterr()
    store.upload(P, "m1", src, progress=False)
    store.download(P, "m1", tmp_path / "d1", progress=False)
    assert capsys.readouterr().err == ""
    store.progress = False  # type: ignore[attr-defined]
    store.upload(P, "m2", src)
    store.download(P, "m2", tmp_path / "d2")
    assert capsys.readouterr().err == ""
    store.progress = True  # type: ignore[attr-defined]
    store.upload(P, "m3", src)
    assert "4/4 files" in capsys.readouterr().err


def test_query_range_reads_the_head_of_a_key_range(store: Store) -> None:
    for name in ("b.02", "b.01", "a.09", "b.10", "c.00", "b.03"):
        store.create(P, name, {"v": name})
    store.create("other", "b.00", {})
    head = store.query_range(P, after="b.", below="b/", limit=2)
    assert names_of(head) == ["b.01", "b.02"] and head[0]["v"] == "b.01"
    assert head[0]["_version"] == store.get(P, "b.01")["_version"]  # type: ignore[index]
    assert names_of(store.query_range(P, after="b.02", below="b/", limit=5)) == ["b.03", "b.10"]
    assert names_of(store.query_range(P, limit=3)) == ["a.09", "b.01", "b.02"]
    assert names_of(store.query_range(P, after="b.10", limit=9)) == ["c.00"]
    assert names_of(store.query_range(P, below="b.", limit=9)) == ["a.09"]
    assert store.query_range(P, after="c.00", limit=1) == []
    assert store.query_range("nothing-here", limit=1) == []
    assert names_of(store.query_range(P, after="b~'x", limit=1)) == ["c.00"]  # a quote is only a character
    with pytest.raises(ValueError):
        store.query_range(P, limit=0)
    with pytest.raises(ValueError):
        store.query_range(P, after="a\x00", limit=1)
