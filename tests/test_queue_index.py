"""The queue index on both backends: it orders work exactly as the full queue does, a poll reads a bounded
number of entities whatever the number of open rows, and a runner that dies between a row's update and the
index update loses nothing and runs nothing twice."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from archai_aml.runner import Runner
from archai_aml.runner.queue import Capabilities, build_queue
from archai_aml.runner.queue_index import QueueIndex, index_store, sortable
from archai_aml.store import Store
from archai_aml.store.counting import CountingStore
from archai_aml.testing.crash import CrashingStore, SimulatedCrash
from tests.runner_models import add_rows, journal
from tests.test_runner import EXP, fixed, settings


def test_sortable_keys_sort_like_the_numbers() -> None:
    values = [-1e300, -101.5, -1.0, -1e-9, -0.0, 0.0, 1e-9, 1.0, 20.0, 30.0, 31.0, 100.25, 1e300]
    keys = [sortable(v) for v in values]
    assert keys == sorted(keys) and len(set(keys)) == len(values) - 1  # -0.0 and 0.0 share a key
    assert all(len(k) == 16 for k in keys)
    shuffled = random.Random(0).sample(values, len(values))
    assert sorted(shuffled, key=sortable) == sorted(shuffled)


def mixed_rows(store: Store) -> None:
    """Rows in every stage: new, converted with k benchmark runs, benchmarked (F1 pending, by mean latency),
    benchmark-only, a priority override, done and in error."""
    conv = {"macs": 1, "quantized": True, "status": "converted"}
    runs = lambda k: json.dumps([1.0 + i for i in range(k)])  # noqa: E731
    rows = {
        "a_new": {"status": "new"},
        "b_new": {"status": "new"},
        "c_run0": dict(conv),
        "d_run1": {**conv, "total_inference_avg": runs(1)},
        "e_done_runs": {**conv, "total_inference_avg": runs(2), "mean": 3.5},
        "f_done_runs": {**conv, "total_inference_avg": runs(2), "mean": 0.5, "f1_onnx": 0.9},
        "g_bo": {**conv, "benchmark_only": True},
        "h_override": {"status": "new", "priority": 5},
        "i_override": {**conv, "total_inference_avg": runs(2), "mean": 9.0, "priority": 1000},
        "j_complete": {**conv, "status": "complete"},
        "k_error": {**conv, "error": "broken"},
    }
    for name, values in rows.items():
        store.create(EXP, name, values)


@pytest.mark.parametrize(
    "caps",
    [
        Capabilities(max_benchmark_runs=2),
        Capabilities(max_benchmark_runs=2, can_quantize=False),
        Capabilities(max_benchmark_runs=2, use_device=False),
        Capabilities(max_benchmark_runs=2, benchmark_only=True),
    ],
    ids=["all", "no-quantization", "no-device", "benchmark-only"],
)
def test_the_index_orders_work_exactly_as_the_full_queue(store: Store, caps: Capabilities) -> None:
    mixed_rows(store)
    rows = store.query(EXP, status_not=("complete", "error"))
    index = QueueIndex(store, EXP, benchmark_only=caps.benchmark_only, max_benchmark_runs=2, page=3)
    index.rebuild(rows)
    expected = [(i.priority, i.name, i.kind, i.run) for i in build_queue(rows, caps)]
    got = [(i.priority, i.name, i.kind, i.run) for i in index.best_items(caps)]
    # the same items; equal priorities may come in any order (a random one, against lease races)
    assert sorted(got) == sorted(expected) and [p for p, *_ in got] == [p for p, *_ in expected]
    assert len(got) > 3  # several pages of 3 were read


def test_sync_moves_a_rows_entries_and_a_reader_repairs_what_it_missed(store: Store) -> None:
    row = store.create(EXP, "m", {"status": "new"})
    index = QueueIndex(store, EXP, max_benchmark_runs=2)
    index.sync(None, row)
    table = index_store(store)
    assert [e["name"][:1] for e in table.query(EXP)] == ["c"]
    converted = store.merge(EXP, "m", {"macs": 1, "quantized": True})
    index.sync(row, converted)
    assert sorted(e["lane"] for e in table.query(EXP)) == ["b", "o"]
    # a writer that does not know the index finishes the row: the next reader deletes its entries
    store.merge(EXP, "m", {"status": "complete"})
    assert list(index.best_items(Capabilities(max_benchmark_runs=2))) == []
    assert table.query(EXP) == []


def counted_poll(store: Store, tmp_path: Path) -> Counter[str]:
    counting = CountingStore(store)
    runner = Runner(counting, fixed(tmp_path), settings(tmp_path, benchmark_only=True, max_benchmark_runs=1))
    runner.queue.index.rebuild(store.query(EXP))  # the rows were written without the index
    counting.counts.clear()
    assert runner.poll_once() is True
    runner.close()
    return counting.counts


def test_a_poll_reads_the_same_few_entities_whatever_the_number_of_open_rows(
    store: Store, tmp_path: Path
) -> None:
    add_rows(store, EXP, 4, size=8)
    few = counted_poll(store, tmp_path / "few")
    for i in range(4, 150):  # open rows behind the head, all of them with work
        store.create(EXP, f"id_{i:03d}", {"status": "new", "priority": 50.0})
    many = counted_poll(store, tmp_path / "many")
    assert many["query"] == few["query"] == 0  # no full scan of the rows
    assert many["query_range"] == few["query_range"] <= 4  # lanes c and b, and the meta check
    assert many["get"] == few["get"]
    assert sum(many.values()) == sum(few.values())


@pytest.mark.parametrize(
    "method", ["replace", "delete"], ids=["after-the-row-update", "between-the-index-writes"]
)
def test_a_crash_between_a_row_update_and_its_index_update_loses_nothing(
    store: Store, tmp_path: Path, method: str
) -> None:
    names = add_rows(store, EXP, 3, size=8, benchmark_only=True)
    QueueIndex(store, EXP, benchmark_only=True, max_benchmark_runs=1).rebuild(store.query(EXP))
    # the first index write of the first release dies: the row is released (converted), the index is not
    # updated at all (``replace``: the new entry) or only half (``delete``: the old entry stays)
    crashing = CrashingStore(store, method=method, table_suffix="queue")
    one = settings(tmp_path, max_benchmark_runs=1)
    with pytest.raises(SimulatedCrash):
        Runner(crashing, fixed(tmp_path), one).run()
    assert crashing.fired
    converted = [n for n in names if (store.get(EXP, n) or {}).get("quantized")]
    assert len(converted) == 1 and not (store.get(EXP, converted[0]) or {}).get("lease_owner")
    # another runner takes over through the index alone (no full scan of the rows), does every item left
    counting = CountingStore(store)
    assert Runner(counting, fixed(tmp_path), one).run(max_items=5) == 5
    assert counting.counts["query"] == 0
    for name in names:
        assert (store.get(EXP, name) or {}).get("status") == "complete"
    per_item = Counter((j["row"], j["op"]) for j in journal(tmp_path / "journal.jsonl"))
    assert per_item == Counter(
        {(n, op): 1 for n in names for op in ("convert", "quantize", "info", "benchmark")}
    )
    assert [e["name"] for e in index_store(store).query(EXP)] == ["!meta"]  # every entry moved on, then out
