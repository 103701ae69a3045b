"""Subclassing an evaluator: overriding ``metric_from_row`` changes what both evaluators return, for rows
measured or trained now and for rows reused from the store. The remote-benchmark subclass is the one
docs/architecture.md shows (its code block is executed here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from archai.discrete_search.api import ArchaiModel
from overrides import overrides

from archai_aml import AmlPartialTrainingEvaluator, RemoteAzureBenchmarkEvaluator
from archai_aml.runner import Runner, RunnerSettings
from archai_aml.store import Store
from archai_aml.store.base import Entity
from archai_aml.testing.fixed_cost import FixedCostTarget, tiny_model_bytes
from tests.pipeline_helpers import expected_metric, make_models
from tests.test_aml_training_evaluator import evaluator as training_evaluator

ROOT = Path(__file__).resolve().parents[1]
EXP = "hooks"


def documented_subclass() -> type[RemoteAzureBenchmarkEvaluator]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Subclassing an evaluator", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/architecture.md", "exec"), namespace)  # noqa: S102 - our own docs
    cls = namespace["PessimisticLatency"]
    assert issubclass(cls, RemoteAzureBenchmarkEvaluator)
    return cls  # type: ignore[no-any-return]


def test_documented_latency_subclass(store: Store, tmp_path: Path) -> None:
    cls = documented_subclass()
    # a row measured long ago: reused through the hook
    store.create(EXP, "id_old", {"status": "complete", "mean": 2.0, "stdev": 10.0, "benchmark_only": True})
    # a row the runner measures now, twice (FixedCostTarget: a real ONNX run of a fixed-cost model)
    store.upload_bytes(EXP, "id_new", "model.onnx", tiny_model_bytes(size=16))
    ev = cls((1, 3, 16, 16), store, EXP, overwrite=False, retry_interval=0.05, max_retries=40, progress=False)
    ev.send(ArchaiModel(None, archid="old"))  # type: ignore[arg-type]
    ev.send(ArchaiModel(None, archid="new"))  # type: ignore[arg-type]
    settings = RunnerSettings(
        experiment=EXP, max_benchmark_runs=2, working=tmp_path / "w", lock_dir=tmp_path / "l",
        lease_ttl=3.0, poll_interval=0.05, benchmark_iterations=3,
    )  # fmt: skip
    Runner(store, FixedCostTarget(0.0), settings).run(once=True)
    old, new = ev.fetch_all()
    assert old == pytest.approx(2.0 * 1.2)
    row = store.get(EXP, "id_new")
    assert row is not None and row["status"] == "complete" and "stdev" in row
    assert new == pytest.approx(row["mean"] * (1 + 2 * row["stdev"] / 100))
    assert new != pytest.approx(row["mean"])  # two runs of a real model never take exactly the same time
    # the base class still returns the plain column
    plain = RemoteAzureBenchmarkEvaluator((1, 3, 16, 16), store, EXP, overwrite=False, progress=False)
    plain.send(ArchaiModel(None, archid="old"))  # type: ignore[arg-type]
    assert plain.fetch_all() == [2.0]


class PercentIou(AmlPartialTrainingEvaluator):
    """IoU in percent; a row without it is "no result"."""

    @overrides
    def metric_from_row(self, row: Entity) -> float | None:
        value = super().metric_from_row(row)
        return None if value is None else 100.0 * value


def test_training_subclass_reads_rows_through_the_hook(tmp_path: Path) -> None:
    models = make_models(2)
    base = training_evaluator(tmp_path)
    ev = PercentIou(
        base.config, tmp_path / "out", job_runner=base.job_runner, store=base.store, progress=False
    )
    for m in models:
        ev.send(m)
    assert ev.fetch_all() == [pytest.approx(100 * expected_metric(f"id_m00{i}")) for i in range(2)]
    # reused rows go through the hook too; the plain evaluator reads the plain column
    again = PercentIou(
        base.config, tmp_path / "out", job_runner=base.job_runner, store=base.store, progress=False
    )
    again.send(models[1])
    assert again.fetch_all() == [pytest.approx(100 * expected_metric("id_m001"))] and again.pipelines == []
    base.send(models[1])
    assert base.fetch_all() == [pytest.approx(expected_metric("id_m001"))]
