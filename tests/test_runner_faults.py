"""Runners against rows that are wrong in some way, on both backends: names that would leave the working
folder, an item that fails the same way twice, JSON columns that do not parse, error texts, and a lease
left by a runner that died (``--once`` waits for it)."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from archai_aml.config import StoreConfig
from archai_aml.errors import InvalidRowError
from archai_aml.ort.target import OrtCpuTarget
from archai_aml.runner import Runner
from archai_aml.runner.failures import safe_folder
from archai_aml.store import LeaseManager, Store
from archai_aml.store.leases import utcnow
from tests.runner_models import add_rows, journal, legacy_row
from tests.test_runner import EXP, fixed, settings


def test_safe_folder_refuses_every_way_out(tmp_path: Path) -> None:
    base = tmp_path / "work"
    base.mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", base / "link")
    for name in (".", "..", "", "a/b", "..\\x", "a\x00b", "tab\there", "x" * 256, "link"):
        with pytest.raises(InvalidRowError, match="cannot be a folder under the working folder"):
            safe_folder(base, name)
    assert safe_folder(base, "id_000") == base / "id_000"
    assert safe_folder(base, "...") == base / "..."  # three dots is an ordinary name


@pytest.mark.parametrize("bad", [".", ".."])
def test_dot_rows_never_touch_folders_outside_their_own(
    store: Store, store_config: StoreConfig, tmp_path: Path, bad: str
) -> None:
    (good,) = add_rows(store, EXP, 1, benchmark_only=True)
    legacy_row(store, store_config, EXP, bad, {"status": "new", "shape": "[1, 3, 16, 16]"})
    work = tmp_path / "work"
    other = work / EXP / "id_other"  # another runner's files in progress, and the working folder's root
    other.mkdir(parents=True)
    (other / "partial.onnx").write_bytes(b"x")
    (work / "keep.txt").write_text("keep")
    runner = Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=1))
    start = time.monotonic()
    runner.run(once=True)
    assert time.monotonic() - start < 30  # it did not spin on the row
    assert (other / "partial.onnx").read_bytes() == b"x" and (work / "keep.txt").read_text() == "keep"
    row = store.get(EXP, good)
    assert row is not None and row["status"] == "complete"
    assert all(name != bad for name, _ in runner.done)
    raw = [r for r in store.query(EXP) if r["name"] == bad]
    assert raw and not raw[0].get("lease_owner")  # never leased


def test_an_item_that_fails_the_same_way_twice_is_marked_error(store: Store, tmp_path: Path) -> None:
    (name,) = add_rows(store, EXP, 1, benchmark_only=True)
    blocked = tmp_path / "work" / EXP / name
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the row's folder goes")  # rmtree/mkdir fail: an OSError each time
    runner = Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=1))
    assert runner.run(once=True) == 2  # tried twice, then not again
    row = store.get(EXP, name)
    assert row is not None and row["status"] == "error", row
    assert row["error"].startswith("convert: ") and "failed twice the same way" in row["error"]
    assert not row.get("lease_owner")
    assert journal(tmp_path / "journal.jsonl") == []


@pytest.mark.parametrize("runs", ["[1.0, oops", '["fast"]', "[NaN]", '{"a": 1}'])
def test_bad_json_columns_are_refused_before_device_time(store: Store, tmp_path: Path, runs: str) -> None:
    (name,) = add_rows(store, EXP, 1, benchmark_only=True)
    runner = Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=2))
    assert runner.run(max_items=1) == 1  # the conversion
    store.merge(EXP, name, {"total_inference_avg": runs})
    Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=2)).run(once=True)
    row = store.get(EXP, name)
    assert row is not None and row["status"] == "error" and "total_inference_avg" in row["error"], row
    ops = Counter(j["op"] for j in journal(tmp_path / "journal.jsonl"))
    assert ops["benchmark"] == 0  # no device time spent on it


def test_errors_are_labelled_once_and_name_the_blob(store: Store, tmp_path: Path) -> None:
    store.upload_bytes(EXP, "id_bad", "model.onnx", b"this is not an onnx model")
    store.create(EXP, "id_bad", {"status": "new", "shape": "[1, 3, 16, 16]", "benchmark_only": True})
    cpu = OrtCpuTarget(intra_op_num_threads=1, progress=False)
    Runner(store, cpu, settings(tmp_path, max_benchmark_runs=1)).run(once=True)
    bad = store.get(EXP, "id_bad")
    assert bad is not None and bad["status"] == "error"
    error = bad["error"]
    assert error.startswith("convert: ") and "convert: convert" not in error, error
    assert f"{EXP}/id_bad/model.onnx" in error and str(tmp_path) not in error, error


def test_a_bad_quantized_artifact_is_not_blamed_on_the_export(store: Store, tmp_path: Path) -> None:
    (name,) = add_rows(store, EXP, 1, benchmark_only=True)
    Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=1)).run(max_items=1)
    row = store.get(EXP, name)
    assert row is not None and row["status"] == "converted"
    store.upload_bytes(EXP, name, row["quantized_model"], b"truncated")
    cpu = OrtCpuTarget(intra_op_num_threads=1, progress=False)
    Runner(store, cpu, settings(tmp_path, max_benchmark_runs=1)).run(once=True)
    row = store.get(EXP, name)
    assert row is not None and row["status"] == "error"
    error = row["error"]
    assert error.startswith("benchmark 1: ") and "benchmark 1: benchmark" not in error, error
    assert f"{EXP}/{name}/{row['quantized_model']}" in error and str(tmp_path) not in error, error
    assert "re-export" not in error and "redo the conversion" in error, error


def test_once_waits_for_the_lease_of_a_dead_runner(store: Store, tmp_path: Path) -> None:
    (name,) = add_rows(store, EXP, 1, benchmark_only=True)
    dead = LeaseManager(store, EXP).acquire(name, "dead-runner", 2.0)  # never renewed
    assert dead is not None
    runner = Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=1))
    start = time.monotonic()
    assert runner.run(once=True) == 2  # convert and benchmark, after the lease expired
    elapsed = time.monotonic() - start
    assert elapsed >= (dead.expires - utcnow()).total_seconds()  # it did wait
    row = store.get(EXP, name)
    assert row is not None and row["status"] == "complete" and elapsed < 2.0 + 30


def test_once_leaves_a_row_whose_lease_is_renewed(store: Store, tmp_path: Path) -> None:
    (name,) = add_rows(store, EXP, 1, benchmark_only=True)
    leases = LeaseManager(store, EXP)
    lease = leases.acquire(name, "live-runner", 1.5)
    assert lease is not None
    stop = threading.Event()

    def renew() -> None:
        held = lease
        while not stop.wait(0.3):
            held = leases.renew(held, 1.5)

    thread = threading.Thread(target=renew, daemon=True)
    thread.start()
    try:
        runner = Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=1))
        start = time.monotonic()
        assert runner.run(once=True) == 0
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        thread.join()
    assert elapsed < 1.5 + 10  # about one lease period, not for ever
    row = store.get(EXP, name)
    assert row is not None and row["lease_owner"] == "live-runner" and row["status"] == "new"
