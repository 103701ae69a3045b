"""AmlPartialTrainingEvaluator on LocalJobRunner + the embedded store, with real jobs."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archai_aml.config import StoreConfig
from archai_aml.errors import EvaluationTimeoutError, TrainingFailedError
from archai_aml.evaluators import AmlPartialTrainingEvaluator
from archai_aml.pipelines import CANCELED, LocalJobRunner
from archai_aml.store import open_store
from tests.pipeline_helpers import expected_metric, make_config, make_models


def evaluator(tmp_path: Path, **kw) -> AmlPartialTrainingEvaluator:  # type: ignore[no-untyped-def]
    env = kw.pop("env", None)
    training = kw.pop("training", {})
    cfg = make_config(tmp_path, StoreConfig(path=tmp_path / "store", table_name="evals"), env=env, **training)
    store = open_store(cfg.store)
    runner = kw.pop("job_runner", None) or LocalJobRunner.from_config(cfg, store.config)
    return AmlPartialTrainingEvaluator(
        cfg, tmp_path / "out", job_runner=runner, store=store, progress=False, **kw
    )


def test_metrics_in_send_order_and_restart_reuses_rows(tmp_path: Path) -> None:
    models = make_models(3)
    ev = evaluator(tmp_path, training={"max_parallel": 3})
    for m in reversed(models):
        ev.send(m)
    ev.send(models[0])  # sent twice: trained once
    metrics = ev.fetch_all()
    ids = ["id_m002", "id_m001", "id_m000", "id_m000"]
    assert metrics == [pytest.approx(expected_metric(i)) for i in ids]
    runner = ev.job_runner
    assert len(runner.pipeline_ids) == 1 and len(runner.records(runner.pipeline_ids[0])) == 3
    summary = json.loads((tmp_path / "out" / "models.json").read_text())["models"]
    assert [s["model_id"] for s in summary] == ids and all(s["status"] == "complete" for s in summary)
    assert ev.models == [] and ev.fetch_all() == []  # reset after fetch_all

    # a new search process (same store): nothing is trained again
    again = evaluator(tmp_path, job_runner=runner)
    for m in models:
        again.send(m)
    assert again.fetch_all() == [pytest.approx(expected_metric(f"id_m00{i}")) for i in range(3)]
    assert len(runner.pipeline_ids) == 1 and again.pipelines == []
    # more epochs than the rows hold: trained again
    more = evaluator(tmp_path, job_runner=runner, tr_epochs=2)
    more.send(models[1])
    assert more.fetch_all() == [pytest.approx(expected_metric("id_m001"))]
    assert len(runner.pipeline_ids) == 2
    row = more.store.get("exp", "id_m001")
    assert row is not None and row["epochs"] == 2.0


def test_failed_models_give_none_under_threshold_and_raise_over_it(tmp_path: Path) -> None:
    ev = evaluator(
        tmp_path, env={"STUB_FAIL": "id_m001"}, training={"max_failure_rate": 0.5, "max_parallel": 3}
    )
    for m in make_models(3):
        ev.send(m)
    metrics = ev.fetch_all()
    assert metrics[1] is None and metrics[0] == pytest.approx(expected_metric("id_m000"))
    summary = json.loads((tmp_path / "out" / "models.json").read_text())["models"]
    assert summary[1]["status"] == "failed" and "stub training crashed" in summary[1]["error"]

    bad = evaluator(
        tmp_path, env={"STUB_FAIL": "id_x000,id_x001"}, training={"max_failure_rate": 0.5, "max_parallel": 3}
    )
    for m in make_models(3, prefix="x"):
        bad.send(m)
    with pytest.raises(TrainingFailedError, match="id_x000.*stub training crashed"):
        bad.fetch_all()


def test_timeout_cancels_pipeline_and_marks_rows(tmp_path: Path) -> None:
    ev = evaluator(tmp_path, env={"STUB_SLEEP": "30"}, timeout_seconds=1.0)
    ev.send(make_models(1)[0])
    with pytest.raises(EvaluationTimeoutError, match="id_m000"):
        ev.fetch_all()
    assert ev.job_runner.status(ev.pipelines[0]) == CANCELED
    row = ev.store.get("exp", "id_m000")
    assert row is not None and row["status"] == "canceled" and "timed out" in row["error"]


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Python raises KeyboardInterrupt on SIGINT only under its default handler, which it does not install
    when it starts with SIGINT ignored (a background job of a non-interactive shell): install it here."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_cancels_pipeline_and_marks_rows(tmp_path: Path) -> None:
    ev = evaluator(tmp_path, env={"STUB_SLEEP": "30"}, training={"max_parallel": 1})
    for m in make_models(2):
        ev.send(m)
    main = threading.get_ident()

    def interrupt() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until the first job reports "training"
            row = ev.store.get("exp", "id_m000")
            if row is not None and row.get("status") == "training":
                break
            time.sleep(0.05)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        ev.fetch_all()
    assert time.monotonic() - start < 15
    pipeline = ev.pipelines[0]
    assert ev.job_runner.status(pipeline) == CANCELED
    for model_id in ("id_m000", "id_m001"):
        row = ev.store.get("exp", model_id)
        assert row is not None and row["status"] == "canceled", row
    assert all(r.proc is None or r.proc.poll() is not None for r in ev.job_runner.records(pipeline))
