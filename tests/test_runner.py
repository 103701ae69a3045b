"""In-process runners on a real store (embedded SQLite and Azurite): the convert/benchmark/F1 flow with
its artifacts and usage rows, errors that go into the row, JSON-only shapes, resume from artifacts, and
lost leases."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import pytest

from archai_aml.runner import Runner, RunnerSettings, alive_runners, utilization
from archai_aml.runner.usage import usage_store
from archai_aml.store import LeaseManager, Store
from archai_aml.testing.fixed_cost import FixedCostTarget, tiny_model_bytes
from tests.runner_models import add_rows, journal

EXP = "exp"


def settings(tmp_path: Path, **kw: object) -> RunnerSettings:
    base: dict[str, object] = dict(
        experiment=EXP,
        max_benchmark_runs=2,
        working=tmp_path / "work",
        lock_dir=tmp_path / "lock",
        lease_ttl=2.0,
        poll_interval=0.05,
        benchmark_iterations=5,
        calibration_images=2,
        f1_onnx_images=4,
        f1_1k_images=3,
        f1_10k_images=5,
        seed=0,
    )
    base.update(kw)
    return RunnerSettings(**base)  # type: ignore[arg-type]


def fixed(tmp_path: Path, **kw: float) -> FixedCostTarget:
    return FixedCostTarget(0.0, journal=tmp_path / "journal.jsonl", **kw)


def test_full_flow_writes_results_artifacts_and_usage(store: Store, tmp_path: Path) -> None:
    (name,) = add_rows(store, EXP, 1)
    runner = Runner(store, fixed(tmp_path), settings(tmp_path))
    done = runner.run(once=True)
    row = store.get(EXP, name)
    assert row is not None
    assert row["status"] == "complete", row
    assert done == 1 + 2 + 4  # convert, two benchmark runs, four F1 runs
    assert row["macs"] == 7 * 3 and row["params"] == 7 * 3 and row["quantized"] is True
    runs = json.loads(row["total_inference_avg"])
    assert len(runs) == 2 and row["mean"] == pytest.approx(sum(runs) / 2)
    for col in ("f1_onnx", "f1_1k", "f1_1k_f", "f1_10k"):
        assert 0.0 <= row[col] <= 1.0
    assert not row.get("lease_owner") and not row.get("error")
    assert runner.node in row["message"]
    sources = json.loads(row["sources"])  # every figure says where it came from, each step adding its own
    figures = {
        "macs",
        "params",
        "mean",
        "stdev",
        "total_inference_avg",
        "median",
        "min",
        "f1_onnx",
        "f1_1k",
        "f1_1k_f",
        "f1_10k",
    }
    assert set(sources) == figures
    assert sources["mean"] == sources["f1_1k"] == "fixed target (FixedCostTarget)"
    assert sources["f1_onnx"].startswith("onnxruntime ") and "CPUExecutionProvider" in sources["f1_onnx"]
    blobs = set(store.list_blobs(EXP, name))
    assert {"converted/model.fixed.onnx", "quantized/model.fixed.quant.onnx", "model.info.csv"} <= blobs
    assert {"benchmark/benchmark_1.csv", "benchmark/benchmark_2.csv"} <= blobs
    assert {"test_results_f1_onnx.csv", "pr_curve_f1_10k.png"} <= blobs
    calls = Counter(j["op"] for j in journal(tmp_path / "journal.jsonl"))
    assert calls == {
        "convert": 1,
        "quantize": 1,
        "info": 1,
        "benchmark": 2,
        "batch": 3,
    }  # one call per on-target F1 run
    usage = utilization(usage_store(store))
    window = [u for u in usage if u.day is None]
    assert [u.device for u in window] == [runner.device_id]
    assert window[0].items == 2 + 3  # benchmark runs and on-target F1 runs
    assert 0 < window[0].utilization <= 1.0
    beats = alive_runners(store, EXP, within=60)
    assert beats == []  # it said "stopped" when it left
    last = store.with_table(f"{store.table_name}runners").get(EXP, runner.owner)
    assert last is not None and last["state"] == "stopped"


def test_benchmark_only_rows_complete_after_their_runs(store: Store, tmp_path: Path) -> None:
    names = add_rows(store, EXP, 2, benchmark_only=True)
    runner = Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=3))
    assert runner.run(once=True) == 2 * (1 + 3)
    for name in names:
        row = store.get(EXP, name)
        assert row is not None and row["status"] == "complete"
        assert len(json.loads(row["total_inference_avg"])) == 3 and "stdev" in row
        assert "f1_onnx" not in row


def test_corrupt_model_gets_an_error_and_the_runner_goes_on(store: Store, tmp_path: Path) -> None:
    good = add_rows(store, EXP, 1, benchmark_only=True)[0]
    store.upload_bytes(EXP, "id_bad", "model.onnx", b"this is not an onnx model")
    store.create(EXP, "id_bad", {"status": "new", "shape": "[1, 3, 16, 16]", "benchmark_only": True})
    Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=1)).run(once=True)
    bad = store.get(EXP, "id_bad")
    assert bad is not None and bad["status"] == "error"
    assert "convert" in bad["error"] and "not a valid ONNX model" in bad["error"]
    assert not bad.get("lease_owner")
    row = store.get(EXP, good)
    assert row is not None and row["status"] == "complete"


def test_python_code_in_shape_is_rejected_never_run(store: Store, tmp_path: Path) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    add_rows(store, EXP, 1, shape=f"__import__('os').system('touch {marker}')")
    Runner(store, fixed(tmp_path), settings(tmp_path)).run(once=True)
    row = store.get(EXP, "id_000")
    assert row is not None and row["status"] == "error"
    assert "not valid JSON" in row["error"]
    assert not marker.exists()
    assert journal(tmp_path / "journal.jsonl") == []  # nothing of the model ran


def test_missing_shape_is_read_from_the_model(store: Store, tmp_path: Path) -> None:
    store.upload_bytes(EXP, "id_x", "model.onnx", tiny_model_bytes(size=8))
    store.create(EXP, "id_x", {"status": "new", "benchmark_only": True})
    Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=1)).run(once=True)
    row = store.get(EXP, "id_x")
    assert row is not None and row["status"] == "complete" and json.loads(row["shape"]) == [1, 3, 8, 8]


def test_resume_skips_steps_whose_artifacts_exist(store: Store, tmp_path: Path) -> None:
    (name,) = add_rows(store, EXP, 1, benchmark_only=True)
    store.upload_bytes(EXP, name, "converted/model.fixed.onnx", tiny_model_bytes())
    Runner(store, fixed(tmp_path), settings(tmp_path, max_benchmark_runs=1)).run(once=True)
    calls = Counter(j["op"] for j in journal(tmp_path / "journal.jsonl"))
    assert calls == {"quantize": 1, "info": 1, "benchmark": 1}  # no second conversion


def test_a_lost_lease_abandons_the_item_without_writing(store: Store, tmp_path: Path) -> None:
    (name,) = add_rows(store, EXP, 1, benchmark_only=True)
    target = fixed(tmp_path, convert=1.2)
    runner = Runner(store, target, settings(tmp_path, lease_ttl=0.6, max_benchmark_runs=1))

    # another owner breaks in while the conversion runs: the heartbeat sees the token change
    import threading

    def steal() -> None:
        import time

        time.sleep(0.3)
        LeaseManager(store, EXP).break_lease(name)
        store.merge(EXP, name, {"lease_owner": "thief", "lease_token": "x"})

    t = threading.Thread(target=steal)
    t.start()
    assert runner.poll_once() is True  # it tried, then abandoned
    t.join()
    row = store.get(EXP, name)
    assert row is not None and "macs" not in row and row["lease_owner"] == "thief"
    assert runner.done == []


def test_usage_report_per_device_and_day(store: Store, store_config: object, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    from datetime import datetime, timezone

    from archai_aml.runner import record_usage
    from archai_aml.store import job_environment

    usage = usage_store(store)
    t = lambda d, h, m=0: datetime(2026, 3, d, h, m, tzinfo=timezone.utc)  # noqa: E731
    for start, end in [(t(1, 23), t(2, 1)), (t(2, 0, 30), t(2, 1, 30)), (t(2, 12), t(2, 13))]:
        record_usage(
            usage, device="dev1", node="n", start=start, end=end, row="r", experiment=EXP, item="benchmark 1"
        )
    record_usage(
        usage, device="dev2", node="n", start=t(2, 6), end=t(2, 7), row="r", experiment=EXP, item="f1_1k"
    )
    rows = {(u.device, u.day.isoformat() if u.day else "window"): u for u in utilization(usage)}
    assert rows["dev1", "2026-03-01"].busy_s == 3600  # 23:00-24:00
    assert rows["dev1", "2026-03-02"].busy_s == 1.5 * 3600 + 3600  # 00:00-01:30 merged, 12:00-13:00
    assert rows["dev1", "window"].busy_s == 3.5 * 3600 and rows["dev1", "window"].span_s == 14 * 3600
    assert rows["dev2", "2026-03-02"].utilization == pytest.approx(1 / 24)
    env = dict(os.environ, **job_environment(store_config, include_secrets=True))  # type: ignore[arg-type]
    out = subprocess.run(
        [sys.executable, "-m", "archai_aml.runner", "usage", "--json"],
        env=env, capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    report = {(r["device"], r["day"]): r for r in json.loads(out.stdout)}
    assert report["dev1", "window"]["busy_s"] == 3.5 * 3600 and report["dev2", "window"]["items"] == 1


def test_model_blobs_come_from_the_row_and_the_status_rides_on_renewals(store: Store, tmp_path: Path) -> None:
    from archai_aml.store.counting import CountingStore

    (name,) = add_rows(store, EXP, 1)
    counting = CountingStore(store)
    Runner(counting, fixed(tmp_path), settings(tmp_path)).run(once=True)
    row = store.get(EXP, name)
    assert row is not None and row["status"] == "complete", row
    assert row["converted_model"] == "converted/model.fixed.onnx"
    assert row["quantized_model"] == "quantized/model.fixed.quant.onnx"
    # one listing (the conversion's resume check); benchmarks and F1 runs download the recorded blobs
    assert counting.counts["list_blobs"] == 1
    # 7 items: one lease write and one release each (the quantizing status waited for a renewal that a
    # short item never needs), plus the runner's heartbeat rows
    assert counting.counts["cas_merge"] == 2 * 7
    # a row converted before the columns existed: the benchmark finds its model by listing
    (old,) = add_rows(store, "exp2", 1, benchmark_only=True)
    two = settings(tmp_path, experiment="exp2", max_benchmark_runs=1)
    Runner(store, fixed(tmp_path), two).run(once=True)
    store.merge("exp2", old, {"quantized_model": None, "total_inference_avg": None, "status": "converted"})
    counting = CountingStore(store)
    assert Runner(counting, fixed(tmp_path), two).run(once=True) == 1  # the benchmark again
    again = store.get("exp2", old)
    assert again is not None and again["status"] == "complete" and counting.counts["list_blobs"] == 1
