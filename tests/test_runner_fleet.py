"""Runner processes (``python -m archai_aml.runner runner``) sharing one store, on both backends: four
runners on 40 rows do every work item exactly once; a runner killed with SIGKILL in the middle of a
quantization leaves a row that another runner finishes, from the uploaded conversion, once the lease
expired."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from archai_aml.config import StoreConfig
from archai_aml.store import Store, job_environment
from tests.runner_models import add_rows, journal

EXP = "fleet"
ROOT = Path(__file__).resolve().parents[1]


def start_runner(
    store_config: StoreConfig, tmp_path: Path, target: str, *extra: str, tag: str = "r"
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(job_environment(store_config, include_secrets=True))
    env["PYTHONPATH"] = str(ROOT)
    cmd = [
        sys.executable, "-m", "archai_aml.runner", "runner", "--target", target, "--experiment", EXP,
        "--working", str(tmp_path / f"work-{tag}"), "--lock-dir", str(tmp_path / "hostlock"),
        "--lease-ttl", "2", "--poll-interval", "0.1", "--stats", str(tmp_path / f"stats-{tag}.json"), *extra,
    ]  # fmt: skip
    log = open(tmp_path / f"log-{tag}.txt", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    return [p.wait(timeout=20) for p in procs]


def test_four_runners_forty_rows_every_item_once(
    store_config: StoreConfig, store: Store, tmp_path: Path
) -> None:
    names = add_rows(store, EXP, 40, size=8, benchmark_only=True)
    jpath = tmp_path / "journal.jsonl"
    target = f"fixed:cost=0.02,journal={jpath}"
    procs = [
        start_runner(store_config, tmp_path, target, "--max-benchmark-runs", "2", tag=str(i))
        for i in range(4)
    ]
    try:
        wait_for(lambda: len(store.query(EXP, status="complete")) == 40, 90, "40 complete rows")
    finally:
        codes = stop(procs)
    assert codes == [0, 0, 0, 0]  # SIGTERM: each finished its item and left cleanly
    for name in names:
        row = store.get(EXP, name)
        assert row is not None and row["status"] == "complete" and not row.get("lease_owner"), row
    done = journal(jpath)
    per_row = Counter((j["row"], j["op"]) for j in done)
    assert set(per_row) == {(n, op) for n in names for op in ("convert", "quantize", "info", "benchmark")}
    for (row_name, op), count in per_row.items():
        assert count == (2 if op == "benchmark" else 1), (row_name, op, count)
    assert len(journal(jpath, finished=False)) == len(done)  # nothing started twice and abandoned
    # at most one conversion/quantization at a time on this host (they share the lock dir)
    spans = sorted((j["start"], j["end"]) for j in done if j["op"] in ("convert", "quantize"))
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    # the work was shared: every runner did some
    pids = Counter(j["pid"] for j in done)
    assert len(pids) == 4, pids


def test_sigkill_mid_quantization_another_runner_finishes(
    store_config: StoreConfig, store: Store, tmp_path: Path
) -> None:
    (name,) = add_rows(store, EXP, 1, size=8, benchmark_only=True)
    jpath = tmp_path / "journal.jsonl"
    slow = start_runner(store_config, tmp_path, f"fixed:cost=0.01,quantize=60,journal={jpath}", tag="slow")
    try:
        wait_for(lambda: (store.get(EXP, name) or {}).get("status") == "quantizing", 30, "quantizing")
        assert "converted/model.fixed.onnx" in store.list_blobs(EXP, name)
        slow.send_signal(signal.SIGKILL)
        slow.wait(timeout=10)
    finally:
        if slow.poll() is None:
            slow.kill()
    leased = store.get(EXP, name)
    assert leased is not None and leased["lease_owner"]  # the dead runner's lease is still there
    other = start_runner(
        store_config, tmp_path, f"fixed:cost=0.01,journal={jpath}", "--max-benchmark-runs", "1", tag="b"
    )
    try:
        wait_for(lambda: (store.get(EXP, name) or {}).get("status") == "complete", 40, "completion")
    finally:
        assert stop([other]) == [0]
    row = store.get(EXP, name)
    assert row is not None and row["status"] == "complete" and not row.get("lease_owner")
    calls = [(j["op"], j["pid"]) for j in journal(jpath)]
    assert ("convert", slow.pid) in calls and ("quantize", slow.pid) not in calls
    assert [op for op, pid in calls if pid == other.pid] == [
        "quantize",
        "info",
        "benchmark",
    ]  # no re-conversion
    second_quantize = next(j for j in journal(jpath) if j["op"] == "quantize")
    expires = leased["lease_expires"].timestamp()
    assert second_quantize["start"] >= expires - 0.5  # it waited for the lease to expire (clock slack)
