"""CompletionMonitor against real jobs: one query per poll, failures, jobs that never start, timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archai_aml.config import ArchaiAmlConfig, StoreConfig
from archai_aml.errors import EvaluationTimeoutError, TrainingFailedError
from archai_aml.pipelines import CompletionMonitor, LocalJobRunner, start_training_pipeline
from archai_aml.store import Store, open_store
from tests.pipeline_helpers import expected_metric, make_config, make_models


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[Store]:
    """The embedded store only: these failure paths do not depend on the backend (and each costs seconds)."""
    with open_store(StoreConfig(path=tmp_path / "store", table_name="monitor")) as s:
        yield s


def launch(
    tmp_path: Path, store: Store, cfg: ArchaiAmlConfig, n: int
) -> tuple[LocalJobRunner, str, list[str]]:
    runner = LocalJobRunner.from_config(cfg, store.config)
    job, ids = start_training_pipeline("t", runner, store, make_models(n), cfg, 1, tmp_path / "out")
    return runner, str(job.name), ids


def monitor(store: Store, runner: Any, cfg: ArchaiAmlConfig, **kw: Any) -> CompletionMonitor:
    t = cfg.training
    args: dict[str, Any] = {
        "timeout_seconds": 60,
        "max_failure_rate": t.max_failure_rate,
        "poll_interval_min_s": t.poll_interval_min_s,
        "poll_interval_max_s": t.poll_interval_max_s,
        "progress": False,
    }
    args.update(kw)
    return CompletionMonitor(store, runner, cfg.experiment_name, **args)


def test_failures_under_threshold_are_reported_in_rows(
    tmp_path: Path, store: Store, store_config: StoreConfig
) -> None:
    cfg = make_config(tmp_path, store_config, env={"STUB_FAIL": "id_m001"}, max_parallel=3)
    runner, batch, ids = launch(tmp_path, store, cfg, 3)
    result = monitor(store, runner, cfg, max_failure_rate=0.5).wait(ids, batch)
    assert result.failed == ["id_m001"]
    assert result.rows["id_m001"]["status"] == "failed"
    assert "stub training crashed for id_m001" in result.rows["id_m001"]["error"]
    assert result.rows["id_m000"]["val_iou"] == pytest.approx(expected_metric("id_m000"))
    assert result.completed == ["id_m000", "id_m002"]


def test_failures_over_threshold_raise_naming_each_model(tmp_path: Path, local_store: Store) -> None:
    store = local_store
    cfg = make_config(
        tmp_path, store.config or StoreConfig(), env={"STUB_FAIL": "id_m000,id_m002"}, max_parallel=3
    )
    runner, batch, ids = launch(tmp_path, store, cfg, 3)
    with pytest.raises(TrainingFailedError) as info:
        monitor(store, runner, cfg, max_failure_rate=0.5).wait(ids, batch)
    text = str(info.value)
    assert "2 of 3 models" in text
    assert "id_m000" in text and "id_m002" in text and "stub training crashed for id_m002" in text
    assert "id_m001" not in text


def test_job_that_never_starts_is_marked(tmp_path: Path, local_store: Store) -> None:
    store = local_store
    cfg = make_config(tmp_path, store.config or StoreConfig(), env={"STUB_NEVER_START": "id_m000"})
    runner, batch, ids = launch(tmp_path, store, cfg, 2)
    result = monitor(store, runner, cfg, max_failure_rate=0.5).wait(ids, batch)
    row = store.get("exp", "id_m000")
    assert row is not None and row["status"] == "failed to start"
    assert "before the training script reported" in row["error"]
    assert result.failed == ["id_m000"] and result.rows["id_m001"]["status"] == "complete"


def test_timeout_names_the_pending_models(tmp_path: Path, local_store: Store) -> None:
    store = local_store
    cfg = make_config(tmp_path, store.config or StoreConfig(), env={"STUB_SLEEP": "30"})
    runner, batch, ids = launch(tmp_path, store, cfg, 1)
    start = time.monotonic()
    try:
        with pytest.raises(EvaluationTimeoutError, match="id_m000"):
            monitor(store, runner, cfg, timeout_seconds=0.5).wait(ids, batch)
        assert time.monotonic() - start < 5
    finally:
        runner.cancel(batch)


def test_canceled_pipeline_ends_the_wait(tmp_path: Path, local_store: Store) -> None:
    store = local_store
    cfg = make_config(tmp_path, store.config or StoreConfig(), env={"STUB_SLEEP": "30"}, max_parallel=1)
    runner, batch, ids = launch(tmp_path, store, cfg, 2)
    threading.Timer(1.0, runner.cancel, args=(batch,)).start()
    with pytest.raises(TrainingFailedError):
        monitor(store, runner, cfg, timeout_seconds=20).wait(ids, batch)
    statuses = {m: (store.get("exp", m) or {}).get("status") for m in ids}
    # the running job was killed mid-training; the queued one never started
    assert statuses["id_m001"] == "canceled"
    assert statuses["id_m000"] in ("canceled", "failed")


def test_backoff_keeps_polls_few(tmp_path: Path, local_store: Store) -> None:
    store = local_store
    cfg = make_config(tmp_path, store.config or StoreConfig(), env={"STUB_SLEEP": "1.5"})
    runner, batch, ids = launch(tmp_path, store, cfg, 1)
    mon = monitor(store, runner, cfg, poll_interval_min_s=0.01, poll_interval_max_s=0.4)
    result = mon.wait(ids, batch)
    assert result.completed == ids
    # a fixed 10 ms poll would make ~150 queries in 1.5 s; doubling to 0.4 s keeps it to a handful
    assert mon.queries == result.polls and result.polls < 25


@pytest.mark.azure
def test_one_store_request_per_poll_on_azurite(tmp_path: Path, azurite: Any) -> None:
    from archai_aml.store.azure.http_counter import HttpCounter

    cfg_store = azurite.store_config(table_name="tmon" + str(int(time.time() * 1000) % 10**8))
    counter = HttpCounter()
    with open_store(cfg_store) as writer, open_store(cfg_store, per_call_policies=[counter]) as store:
        cfg = make_config(tmp_path, cfg_store, command="exit 0", max_parallel=20)
        runner = LocalJobRunner.from_config(cfg, cfg_store)
        job, ids = start_training_pipeline("t", runner, writer, make_models(20), cfg, 1, tmp_path)
        runner.wait(str(job.name), timeout=60)
        for m in ids:  # the jobs did nothing: report for them, as a training script would
            writer.merge("exp", m, {"status": "complete", "val_iou": 0.5})
        mon = monitor(store, runner, cfg)
        store.get("exp", ids[0])  # a first use makes the table if missing: not a poll's cost
        counter.counts.clear()
        result = mon.wait(ids, str(job.name))
        assert len(result.completed) == 20
        assert counter.total == result.polls == 1


def test_row_taken_over_by_another_batch_is_not_overwritten(tmp_path: Path, local_store: Store) -> None:
    store = local_store
    cfg = make_config(tmp_path, store.config or StoreConfig(), command="exit 0")
    runner, batch, ids = launch(tmp_path, store, cfg, 1)
    store.merge("exp", ids[0], {"batch": "newer", "status": "training"})  # another submission took it
    result = monitor(store, runner, cfg, max_failure_rate=1.0).wait(ids, batch)
    assert result.failed == ids and "newer" in result.rows[ids[0]]["error"]
    row = store.get("exp", ids[0])
    assert row is not None and (row["batch"], row["status"]) == ("newer", "training")
