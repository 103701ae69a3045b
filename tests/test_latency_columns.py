"""The runner's robust latency columns (``median``, ``min``) beside ``mean``, measured by a real onnxruntime
CPU target, and the predictor and evaluator that learn one of them."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

import pytest

from archai_aml.evaluators import RemoteAzureBenchmarkEvaluator
from archai_aml.ort import OrtCpuTarget
from archai_aml.predict import LatencyPredictor, PredictedLatencyEvaluator
from archai_aml.runner import Runner
from archai_aml.store import Store
from tests.runner_models import add_rows
from tests.test_predict import SHAPE, features_of, models
from tests.test_runner import EXP, settings


def _samples(store: Store, name: str, blob: str) -> list[float]:
    text = store.download_bytes(EXP, name, blob).decode("utf-8")
    return [float(r["latency_ms"]) for r in csv.DictReader(io.StringIO(text))]


def test_runner_writes_median_and_min_beside_mean(store: Store, tmp_path: Path) -> None:
    (name,) = add_rows(store, EXP, 1, benchmark_only=True)
    target = OrtCpuTarget(intra_op_num_threads=1, max_rounds=1, progress=False)
    runner = Runner(store, target, settings(tmp_path, max_benchmark_runs=2, benchmark_iterations=7))
    runner.run(once=True)
    row = store.get(EXP, name)
    assert row is not None and row["status"] == "complete", row
    runs = [_samples(store, name, f"benchmark/benchmark_{i}.csv") for i in (1, 2)]
    assert [len(r) for r in runs] == [7, 7]
    # mean keeps its meaning (the mean of the runs' means); median is the median of the runs' medians,
    # min the fastest single inference of all runs
    assert row["mean"] == pytest.approx(statistics.fmean(statistics.fmean(r) for r in runs))
    medians = [statistics.median(r) for r in runs]
    assert json.loads(row["total_inference_median"]) == pytest.approx(medians)
    assert row["median"] == pytest.approx(statistics.median(medians))
    assert row["min"] == pytest.approx(min(min(r) for r in runs))
    assert 0 < row["min"] <= row["median"]
    sources = json.loads(row["sources"])
    assert sources["median"] == sources["min"] == sources["mean"]
    assert "onnxruntime" in sources["min"]


def test_remeasuring_a_model_clears_the_robust_columns(store: Store) -> None:
    (model,) = models(0, 1)
    name = f"id_{model.archid}"
    store.create(EXP, name, {"status": "complete", "mean": 3.0, "median": 2.0, "min": 1.0,
                             "total_inference_median": "[2.0]"})  # fmt: skip
    RemoteAzureBenchmarkEvaluator(SHAPE, store, EXP, "min", overwrite=True, progress=False).send(model)
    row = store.get(EXP, name)
    assert row is not None and row["status"] == "new"
    assert all(row.get(c) is None for c in ("mean", "median", "min", "total_inference_median"))


def test_predictor_learns_the_column_it_is_given_and_the_evaluator_matches_it(store: Store) -> None:
    features = {"total_macs": 1.0}
    p = LatencyPredictor("cpu", "cpu@h", min_rows=2, metric_key="min")
    row = {"name": "id_a", "status": "complete", "mean": 9.0, "min": 1.5, "target": "cpu", "device": "cpu@h"}
    assert p.measured_here(row)
    assert not p.measured_here({**row, "min": None})  # a row without the column is not a measurement of it
    from archai_aml.predict.features import FEATURE_NAMES

    p.add_row(row, dict.fromkeys(FEATURE_NAMES, 0.0) | features)
    assert p.rows == 1 and "(min)" in p.describe()
    fleet = RemoteAzureBenchmarkEvaluator([1, 3, 8, 8], store, EXP, "mean", progress=False)
    with pytest.raises(ValueError, match="learns 'min' but the fleet returns 'mean'"):
        PredictedLatencyEvaluator(fleet, p)


def test_predictor_from_store_on_each_backend_reads_only_its_own_measurements(store: Store) -> None:
    """The predictor's store path (rows and their ONNX blobs) on SQLite and on Azurite."""
    exporter = RemoteAzureBenchmarkEvaluator(SHAPE, store, EXP, "median", progress=False)
    pool = models(0, 6)
    kinds = ["ok", "ok", "ok", "other_device", "simulated", "predicted"]
    for i, (m, kind) in enumerate(zip(pool, kinds, strict=True)):
        name = f"id_{m.archid}"
        store.upload_bytes(EXP, name, "model.onnx", exporter._export(m))
        row = {"status": "complete", "median": 1.0 + i, "target": "cpu", "device": "cpu@h"}
        if kind == "other_device":
            row["device"] = "cpu@other"
        elif kind == "simulated":
            row["latency_simulated"] = True
        elif kind == "predicted":
            row.update({"median": None, "latency_source": "predicted", "predicted_mean": 2.0})
        store.create(EXP, name, row)
    p = LatencyPredictor.from_store(store, EXP, "cpu", "cpu@h", min_rows=3, metric_key="median")
    assert p.rows == 3 and p.ready
    assert p.predict(features_of(pool[0])).median > 0
    on_mean = LatencyPredictor.from_store(store, EXP, "cpu", "cpu@h", min_rows=3)  # these rows have no mean
    assert on_mean.rows == 0
