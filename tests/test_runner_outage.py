"""Long-running loops through a storage outage: Azurite, persisted to a folder, is stopped and started
again on the same ports under a working runner (every row completes exactly once, no benchmark twice)
and under a completion monitor waiting for training jobs. Their stores retry for well under a second, so
the outage reaches the loops themselves: they back off and go on."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from archai_aml.runner import Runner
from archai_aml.runner.usage import usage_store
from archai_aml.store import open_store
from archai_aml.testing.azurite import Azurite
from tests.runner_models import add_rows, journal
from tests.test_runner import EXP, fixed, settings

pytestmark = pytest.mark.azure

FAST_FAIL = {"retry_total": 1, "retry_backoff": 0.1}  # a call gives up after about 0.1 s


def test_a_runner_rides_out_an_azurite_restart(
    persisted: Azurite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = persisted.store_config(table_name="outage", container_name="outage")
    rows, runs = 4, 2
    with open_store(config) as seed:
        names = add_rows(seed, EXP, rows, benchmark_only=True)
    store = open_store(config, **FAST_FAIL)
    client = open_store(config)  # a plain client with the default retries, writing through the outage
    runner = Runner(
        store,
        fixed(tmp_path, convert=0.3, benchmark=0.3),
        settings(tmp_path, max_benchmark_runs=runs, lease_ttl=4.0, poll_interval=0.2),
    )
    thread = threading.Thread(target=runner.run, name="runner", daemon=True)
    caplog.set_level(logging.WARNING, logger="archai_aml")
    thread.start()
    deadline = time.monotonic() + 60
    while not journal(tmp_path / "journal.jsonl") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert journal(tmp_path / "journal.jsonl"), "the runner did not start working"
    client_errors: list[BaseException] = []
    writes = 0
    with persisted.outage(8.0):
        end = time.monotonic() + 8.0
        while time.monotonic() < end:
            try:
                client.merge(EXP, "client", {"n": writes})
                writes += 1
            except Exception as exc:
                client_errors.append(exc)
    assert thread.is_alive(), "the runner died in the outage"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = client.query(EXP, status="complete")
        if len(done) == rows:
            break
        time.sleep(0.2)
    runner.stop()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert client_errors == [] and writes >= 1
    done_rows = {r["name"]: r for r in client.query(EXP, status="complete")}
    assert set(done_rows) == set(names)
    calls = Counter((j["row"], j["op"]) for j in journal(tmp_path / "journal.jsonl"))
    started = Counter((j["row"], j["op"]) for j in journal(tmp_path / "journal.jsonl", finished=False))
    for name in names:
        assert calls[name, "convert"] == 1 and calls[name, "benchmark"] == runs, calls
        assert started[name, "benchmark"] == runs  # no benchmark begun twice either
        assert len(done_rows[name]["total_inference_avg"].split(",")) == runs
    usage = [u for dev in usage_store(client).partitions() for u in usage_store(client).query(dev)]
    assert len(usage) == rows * runs  # one usage row per benchmark run, none twice
    assert runner.outage.history, "the outage never reached the runner's loop"
    outage_warnings = [r for r in caplog.records if "looks unreachable" in r.getMessage()]
    assert len(outage_warnings) == len(runner.outage.history)  # one warning per outage, not per poll
    client.close()
    store.close()


def test_the_completion_monitor_waits_through_an_azurite_restart(persisted: Azurite, tmp_path: Path) -> None:
    from archai_aml.pipelines import CompletionMonitor, LocalJobRunner, start_training_pipeline
    from tests.pipeline_helpers import make_config, make_models

    config = persisted.store_config(table_name="monitor", container_name="monitor")
    cfg = make_config(tmp_path, config, env={"STUB_SLEEP": "6"}, max_parallel=2)
    with open_store(config) as store:
        jobs = LocalJobRunner.from_config(cfg, store.config)
        job, ids = start_training_pipeline("t", jobs, store, make_models(2), cfg, 1, tmp_path / "out")
    fragile = open_store(config, **FAST_FAIL)
    monitor = CompletionMonitor(
        fragile, jobs, cfg.experiment_name, timeout_seconds=120, poll_interval_min_s=0.05,
        poll_interval_max_s=1.0, progress=False,
    )  # fmt: skip
    outcome: dict[str, object] = {}

    def wait() -> None:
        try:
            outcome["result"] = monitor.wait(ids, str(job.name))
        except BaseException as exc:
            outcome["error"] = exc

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    time.sleep(1.0)
    polls_before = monitor.queries
    with persisted.outage(4.0):
        time.sleep(2.0)
        outage_polls = monitor.outage_polls
    waiter.join(timeout=120)
    assert "error" not in outcome, outcome
    result = outcome["result"]
    assert sorted(result.completed) == sorted(ids)  # type: ignore[attr-defined]
    assert outage_polls >= 1 and monitor.queries > polls_before
    fragile.close()
