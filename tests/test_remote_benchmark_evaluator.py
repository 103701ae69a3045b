"""RemoteAzureBenchmarkEvaluator against a real store with real runners: an Archai search gets
latencies for every model from an in-process runner on the CPU target; reuse, overwrite, export errors,
models without ``arch``, one query per poll, and a timeout that says no runner is alive."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from archai.discrete_search.algos.random_search import RandomSearch
from archai.discrete_search.api import ArchaiModel, DiscreteSearchSpace, SearchObjectives
from overrides import overrides

from archai_aml.errors import EvaluationTimeoutError
from archai_aml.evaluators import RemoteAzureBenchmarkEvaluator
from archai_aml.runner import Runner, RunnerSettings
from archai_aml.store import Store
from archai_aml.store.counting import CountingStore
from archai_aml.targets import get_target
from archai_aml.testing.fixed_cost import FixedCostTarget, tiny_model_bytes

EXP = "search"
SHAPE = (1, 3, 16, 16)


class TinyNet(torch.nn.Module):
    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        cin = 3
        for _ in range(depth):
            layers += [torch.nn.Conv2d(cin, width, 3, padding=1), torch.nn.ReLU()]
            cin = width
        layers.append(torch.nn.Conv2d(cin, 7, 1))
        self.body = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TinySpace(DiscreteSearchSpace):
    def __init__(self, seed: int = 0) -> None:
        self.rng = torch.Generator().manual_seed(seed)

    def _model(self, width: int, depth: int) -> ArchaiModel:
        return ArchaiModel(
            TinyNet(width, depth), archid=f"w{width}d{depth}", metadata={"w": width, "d": depth}
        )

    @overrides
    def random_sample(self) -> ArchaiModel:
        width = int(torch.randint(2, 9, (1,), generator=self.rng))
        depth = int(torch.randint(1, 4, (1,), generator=self.rng))
        return self._model(width, depth)

    @overrides
    def save_arch(self, model: ArchaiModel, file: str) -> None:
        Path(file).write_text(json.dumps(model.metadata))

    @overrides
    def load_arch(self, file: str) -> ArchaiModel:
        m = json.loads(Path(file).read_text())
        return self._model(m["w"], m["d"])

    @overrides
    def save_model_weights(self, model: ArchaiModel, file: str) -> None:
        torch.save(model.arch.state_dict(), file)

    @overrides
    def load_model_weights(self, model: ArchaiModel, file: str) -> None:
        model.arch.load_state_dict(torch.load(file))


def runner_settings(tmp_path: Path, **kw: Any) -> RunnerSettings:
    base: dict[str, Any] = dict(
        experiment=EXP, max_benchmark_runs=2, working=tmp_path / "work", lock_dir=tmp_path / "lock",
        lease_ttl=3.0, poll_interval=0.05, benchmark_iterations=5, calibration_images=2,
    )  # fmt: skip
    base.update(kw)
    return RunnerSettings(**base)


def evaluator(store: Store, **kw: Any) -> RemoteAzureBenchmarkEvaluator:
    base: dict[str, Any] = dict(max_retries=40, retry_interval=0.1, progress=False)
    base.update(kw)
    return RemoteAzureBenchmarkEvaluator(SHAPE, store, EXP, "mean", **base)


def test_search_gets_latencies_from_an_in_process_runner(store: Store, tmp_path: Path) -> None:
    runner = Runner(store, get_target("cpu", intra_op_num_threads=1), runner_settings(tmp_path))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        objectives = SearchObjectives()
        objectives.add_objective("latency", evaluator(store), higher_is_better=False)
        algo = RandomSearch(
            TinySpace(), objectives, str(tmp_path / "out"), num_iters=1, samples_per_iter=3,
            save_pareto_model_weights=False, seed=1,
        )  # fmt: skip
        results = algo.search()
    finally:
        runner.stop()
        thread.join(timeout=30)
    archids = results.results[0]["archid"]
    latencies = [float(v) for v in results.results[0]["latency"]]
    assert len(archids) == 3 and all(v > 0 for v in latencies), latencies
    for archid, latency in zip(archids, latencies, strict=True):
        row = store.get(EXP, f"id_{archid}")
        assert row is not None and row["status"] == "complete" and row["benchmark_only"] is True
        assert json.loads(row["shape"]) == list(SHAPE) and row["mean"] == pytest.approx(latency, rel=1e-5)
        assert len(json.loads(row["total_inference_avg"])) == 2


def run_fixed(store: Store, tmp_path: Path) -> int:
    target = FixedCostTarget(0.0)
    return Runner(store, target, runner_settings(tmp_path, max_benchmark_runs=1)).run(once=True)


def test_reuse_overwrite_and_export_errors(store: Store, tmp_path: Path) -> None:
    good = ArchaiModel(TinyNet(2, 1), archid="good")

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("cannot trace me")

    bad = ArchaiModel(Broken(), archid="bad")
    ev = evaluator(store, overwrite=False)
    ev.send(good)
    ev.send(bad)
    assert store.get(EXP, "id_bad")["status"] == "error"  # type: ignore[index]
    assert "cannot trace me" in store.get(EXP, "id_bad")["error"]  # type: ignore[index]
    assert run_fixed(store, tmp_path) == 2
    first = ev.fetch_all()
    assert first[1] is None and isinstance(first[0], float)

    # reuse: no new upload, no write, the stored value comes back
    old = store.get(EXP, "id_good")
    assert old is not None
    version = old["_version"]
    ev.send(good)
    assert store.get(EXP, "id_good")["_version"] == version  # type: ignore[index]
    assert ev.fetch_all() == [first[0]]

    # overwrite: results and derived artifacts are reset, the model is measured again
    ev2 = evaluator(store, overwrite=True)
    ev2.send(good)
    row = store.get(EXP, "id_good")
    assert row is not None and row["status"] == "new" and "mean" not in row and "macs" not in row
    assert store.list_blobs(EXP, "id_good") == ["model.onnx"]
    assert run_fixed(store, tmp_path) == 2
    again = ev2.fetch_all()
    row = store.get(EXP, "id_good")
    assert row is not None and row["model_date"] > old["model_date"] and row["status"] == "complete"
    assert again == [row["mean"]]


def test_model_without_arch_needs_an_uploaded_onnx(store: Store, tmp_path: Path) -> None:
    store.upload_bytes(EXP, "id_pre", "model.onnx", tiny_model_bytes(size=16))
    ev = evaluator(store)
    ev.send(ArchaiModel(None, archid="pre"))  # type: ignore[arg-type]
    ev.send(ArchaiModel(None, archid="absent"))  # type: ignore[arg-type]
    assert store.get(EXP, "id_pre")["status"] == "new"  # type: ignore[index]
    assert "model.onnx is missing" in store.get(EXP, "id_absent")["error"]  # type: ignore[index]
    run_fixed(store, tmp_path)
    values = ev.fetch_all()
    assert isinstance(values[0], float) and values[1] is None


def test_one_query_per_poll_and_batch_filter_beyond_15(store: Store, tmp_path: Path) -> None:
    counting = CountingStore(store)
    for i in range(17):
        store.upload_bytes(EXP, f"id_m{i}", "model.onnx", tiny_model_bytes(size=16, seed=i))
    ev = RemoteAzureBenchmarkEvaluator(SHAPE, counting, EXP, "mean", retry_interval=0.05, progress=False)
    for i in range(17):
        ev.send(ArchaiModel(None, archid=f"m{i}"))  # type: ignore[arg-type]
    run_fixed(store, tmp_path)
    before = counting.counts["query"]
    values = ev.fetch_all()
    assert len(values) == 17 and all(isinstance(v, float) for v in values)
    assert counting.counts["query"] - before == 1  # everything was done: one poll, one query


def test_timeout_names_pending_models_and_dead_runners(store: Store, tmp_path: Path) -> None:
    store.upload_bytes(EXP, "id_wait", "model.onnx", tiny_model_bytes())
    ev = evaluator(store, max_retries=3, retry_interval=0.05)
    ev.send(ArchaiModel(None, archid="wait"))  # type: ignore[arg-type]
    with pytest.raises(EvaluationTimeoutError, match="id_wait.*no runner alive"):
        ev.fetch_all()
