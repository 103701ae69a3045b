"""The latency predictor and PredictedLatencyEvaluator, on a real embedded store with a real runner.

The runner measures on :class:`~archai_aml.testing.work_target.WorkLatencyTarget`, whose latency is a known
function of the model's MACs, so what a good prediction is can be said; its ``scale`` is changed to make the
device drift."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from archai.discrete_search.api import ArchaiModel

from archai_aml.config import StoreConfig
from archai_aml.errors import PredictorError
from archai_aml.evaluators import RemoteAzureBenchmarkEvaluator
from archai_aml.predict import LatencyPredictor, PredictedLatencyEvaluator, graph_features
from archai_aml.predict.columns import LATENCY_SOURCE
from archai_aml.runner import Runner, RunnerSettings
from archai_aml.store import Store, open_store
from archai_aml.testing.work_target import WorkLatencyTarget
from tests.ort_models import hand_built_model

EXP = "lat"
SHAPE = (1, 3, 16, 16)


class Net(torch.nn.Module):
    def __init__(self, width: int, depth: int, kernel: int) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        cin = 3
        for _ in range(depth):
            layers += [torch.nn.Conv2d(cin, width, kernel, padding=kernel // 2), torch.nn.ReLU()]
            cin = width
        layers.append(torch.nn.Conv2d(cin, 4, 1))
        self.body = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def models(start: int, count: int) -> list[ArchaiModel]:
    """Distinct small CNNs (width, depth, kernel from a fixed enumeration)."""
    grid = [(w, d, k) for d in (1, 2, 3) for k in (1, 3, 5) for w in (4, 6, 8, 12, 16)]
    picked = grid[start : start + count]
    assert len(picked) == count
    return [ArchaiModel(Net(w, d, k), archid=f"w{w}d{d}k{k}") for w, d, k in picked]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(StoreConfig(path=tmp_path / "store", table_name="lat"))
    yield s
    s.close()


class Fleet:
    """A runner thread on the work-latency target."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        self.target = WorkLatencyTarget()
        settings = RunnerSettings(
            experiment=EXP, max_benchmark_runs=1, working=tmp_path / "work", lock_dir=tmp_path / "lock",
            lease_ttl=5.0, poll_interval=0.02, benchmark_iterations=1, calibration_images=1, device="dev1",
        )  # fmt: skip
        self.runner = Runner(store, self.target, settings)
        self.thread = threading.Thread(target=self.runner.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(timeout=30)


@pytest.fixture
def fleet(store: Store, tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(store, tmp_path)
    yield f
    f.stop()


def evaluator(store: Store, predictor: LatencyPredictor, **kw: Any) -> PredictedLatencyEvaluator:
    inner = RemoteAzureBenchmarkEvaluator(
        SHAPE, store, EXP, "mean", overwrite=False, max_retries=200, retry_interval=0.02, progress=False
    )
    return PredictedLatencyEvaluator(inner, predictor, **kw)


def features_of(model: ArchaiModel) -> dict[str, float]:
    inner = RemoteAzureBenchmarkEvaluator(SHAPE, None, EXP, progress=False)  # type: ignore[arg-type]
    return graph_features(inner._export(model))


# ------------------------------------------------------------------------------------------- features
def test_features_count_macs_per_operator_kind(tmp_path: Path) -> None:
    f = graph_features(hand_built_model(tmp_path / "m.onnx"))
    # hand_built_model's docstring: 13839 MACs, 2766 parameters; one conv, one depthwise, one ConvTranspose
    assert f["total_macs"] == 13839 and f["total_params"] == 2766
    assert (f["conv_count"], f["dwconv_count"], f["convt_count"], f["matmul_count"]) == (1, 1, 1, 2)
    assert (f["conv_macs"], f["dwconv_macs"], f["convt_macs"], f["matmul_macs"]) == (6912, 2304, 2048, 2575)
    assert f["conv_act_bytes"] == 4 * 4 * 8 * 8 and f["conv_params"] == 112
    assert f["total_conv_stride2"] == 1  # the ConvTranspose's stride 2
    assert f["resize_count"] == 1 and f["resize_macs"] == 0


# ------------------------------------------------------------------------------------------ predictor
def test_predictor_refuses_too_few_rows_and_another_target() -> None:
    p = LatencyPredictor("cpu", "cpu@a", min_rows=5)
    feats = [features_of(m) for m in models(0, 5)]
    for i, f in enumerate(feats[:4]):
        p.add(f"m{i}", f, 1.0 + i)
    with pytest.raises(PredictorError, match="4 measured row.*needs 5"):
        p.predict(feats[4])
    p.add("m4", feats[4], 5.0)
    assert p.predict(feats[0]).median > 0
    with pytest.raises(PredictorError, match="cpu/cpu@a measurements, not qnn/cpu@a"):
        p.predict(feats[0], target="qnn")
    with pytest.raises(PredictorError, match="not cpu/cpu@b"):
        p.predict(feats[0], device="cpu@b")
    row = {"name": "x", "status": "complete", "mean": 2.0, "target": "cpu", "device": "cpu@a"}
    assert p.measured_here(row)
    assert not p.measured_here({**row, "target": "qnn"})  # never mixes targets
    assert not p.measured_here({**row, "device": "cpu@b"})
    assert not p.measured_here({**row, "latency_simulated": True})  # nor simulated with measured
    assert not p.measured_here({**row, LATENCY_SOURCE: "predicted"})
    assert not p.add_row({**row, "target": "qnn"}, feats[0]) and p.rows == 5


def test_predictor_learns_a_known_latency_function() -> None:
    target = WorkLatencyTarget()
    train, held_out = models(0, 30), models(30, 15)

    def truth(m: ArchaiModel, tmp: Path) -> float:
        inner = RemoteAzureBenchmarkEvaluator(SHAPE, None, EXP, progress=False)  # type: ignore[arg-type]
        path = tmp / f"{m.archid}.onnx"
        path.write_bytes(inner._export(m))
        return target.latency_ms(path)

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = LatencyPredictor("work", "dev", min_rows=10)
        for m in train:
            p.add(str(m.archid), features_of(m), truth(m, Path(tmp)))
        errors = [abs(p.predict(features_of(m)).median / truth(m, Path(tmp)) - 1) for m in held_out]
    assert sum(e <= 0.10 for e in errors) / len(errors) >= 0.8, errors


# ------------------------------------------------------------------------------------------ evaluator
def test_routing_learns_from_the_fleet_then_predicts(store: Store, fleet: Fleet) -> None:
    p = LatencyPredictor("work", "dev1", min_rows=8)
    ev = evaluator(store, p, round_size=4, spot_check_fraction=0.0, confidence=0.25)
    batch = models(0, 20)
    for m in batch:
        ev.send(m)
    values = ev.fetch_all()
    assert all(v is not None and v > 0 for v in values)
    predicted = [a for a, s in ev.sources.items() if s == "predicted"]
    measured = [a for a, s in ev.sources.items() if s == "measured"]
    assert len(ev.fleet_models) == len(measured) >= 8 and predicted, ev.sources  # rounds of 4 until ready
    assert ev.fleet_models[:8] == [str(m.archid) for m in batch[:8]]
    for m, v in zip(batch, values, strict=True):
        row = store.get(EXP, f"id_{m.archid}")
        assert row is not None and row[LATENCY_SOURCE] == ev.sources[str(m.archid)]
        if row[LATENCY_SOURCE] == "predicted":
            assert "mean" not in row and row["predicted_mean"] == pytest.approx(v)  # never a measured column
            assert row["status"] == "complete" and "predicted_mean" in row["sources"]
            assert row["predicted_low"] <= v <= row["predicted_high"]
        else:
            assert row["mean"] == pytest.approx(v) and row["target"] == "work" and row["device"] == "dev1"
            assert "measured" in row["sources"]
    # the runner never measured a predicted row
    worked_on = {name for name, _ in fleet.runner.done}
    assert worked_on == {f"id_{a}" for a in measured}


def test_spot_checks_and_loss_of_trust(store: Store, fleet: Fleet, caplog: pytest.LogCaptureFixture) -> None:
    p = LatencyPredictor("work", "dev1", min_rows=8)
    ev = evaluator(store, p, round_size=8, spot_check_fraction=1.0, confidence=0.25, drift_window=3)
    for m in models(0, 12):
        ev.send(m)
    ev.fetch_all()
    # every confident model was measured anyway and compared with its prediction
    assert ev.spot_checks and all(c.relative_error < 0.25 for c in ev.spot_checks) and ev.trusted

    fleet.target.scale = 2.0  # the device is now twice as slow: the predictions drift by -50 %
    with caplog.at_level(logging.WARNING, logger="archai_aml.predict.evaluator"):
        for m in models(12, 10):
            ev.send(m)
        values = ev.fetch_all()
    assert not ev.trusted and ev.drift_events
    assert "no longer trusted" in caplog.text and "work/dev1" in caplog.text
    lost_at = len(ev.spot_checks)
    # after the loss, everything is measured: no more predictions
    for m in models(22, 4):
        ev.send(m)
    later = ev.fetch_all()
    assert all(ev.sources[str(m.archid)] == "measured" for m in models(22, 4))
    assert len(ev.spot_checks) == lost_at and all(v is not None for v in values + later)


def test_predictor_from_store_uses_only_measured_rows_of_its_target(store: Store, fleet: Fleet) -> None:
    ev = evaluator(store, LatencyPredictor("work", "dev1", min_rows=30), spot_check_fraction=0.0)
    for m in models(0, 6):
        ev.send(m)
    ev.fetch_all()  # 6 measured rows
    store.merge(EXP, "id_w4d1k1", {"latency_simulated": True})
    store.merge(EXP, "id_w6d1k1", {"target": "qnn"})
    p = LatencyPredictor.from_store(store, EXP, "work", "dev1", min_rows=2)
    assert p.rows == 4
    other = LatencyPredictor.from_store(store, EXP, "cpu", "dev1", min_rows=2)
    assert other.rows == 0 and not other.ready
