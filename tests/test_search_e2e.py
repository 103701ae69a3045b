"""A real Archai search whose partial-training objective is AmlPartialTrainingEvaluator.

LocalJobRunner + embedded store, the face-segmentation example's search space and train.py (real, tiny
training on the procedural data set). A second run of the same search trains nothing again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from archai_aml.config import ArchaiAmlConfig, StoreConfig, TrainingConfig
from archai_aml.evaluators import AmlPartialTrainingEvaluator
from archai_aml.pipelines import LocalJobRunner
from archai_aml.store import open_store

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "face_segmentation"

COMMAND = (
    f"{sys.executable} train.py --data ${{{{inputs.data}}}} --output ${{{{outputs.output}}}} "
    "--model-id {model_id} --experiment {experiment} --epochs {epochs} "
    "--image-size 32 --train-length 16 --val-length 8 --batch-size 8 --threads 1 --no-mlflow --no-progress"
)


def run_search(space: Any, evaluator: AmlPartialTrainingEvaluator, out: Path) -> Any:
    from archai.discrete_search.algos import EvolutionParetoSearch
    from archai.discrete_search.api.search_objectives import SearchObjectives
    from archai.discrete_search.evaluators import TorchNumParameters

    objectives = SearchObjectives()
    objectives.add_objective("params", TorchNumParameters(), higher_is_better=False, compute_intensive=False)
    objectives.add_objective("val_iou", evaluator, higher_is_better=True, compute_intensive=True)
    search = EvolutionParetoSearch(
        space,
        objectives,
        str(out),
        num_iters=2,
        init_num_models=2,
        num_random_mix=1,
        max_unseen_population=2,
        mutations_per_parent=1,
        num_crossovers=0,
        save_pareto_model_weights=False,
        seed=3,
    )
    return search.search()


@pytest.mark.slow
def test_search_trains_once_and_reuses_rows(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from search_space import SegmentationSearchSpace
    finally:
        sys.path.remove(str(EXAMPLE))
    (tmp_path / "data").mkdir()
    cfg = ArchaiAmlConfig(
        experiment_name="e2e",
        store=StoreConfig(path=tmp_path / "store", table_name="search"),
        training=TrainingConfig(
            code_dir=EXAMPLE,
            data=str(tmp_path / "data"),
            command=COMMAND,
            epochs=0.5,
            local_root=tmp_path / "jobs",
            max_parallel=2,
            gpus=[],
            environment_variables={"OMP_NUM_THREADS": "1"},
            poll_interval_min_s=0.05,
            poll_interval_max_s=1.0,
        ),
    )
    store = open_store(cfg.store)
    runner = LocalJobRunner.from_config(cfg, store.config)

    def evaluator(out: str) -> AmlPartialTrainingEvaluator:
        return AmlPartialTrainingEvaluator(
            cfg, tmp_path / out, tr_epochs=0.5, job_runner=runner, store=store, progress=False
        )

    space = lambda: SegmentationSearchSpace(seed=3, depths=(2,), channels=(8, 16))  # noqa: E731
    first = run_search(space(), evaluator("out1"), tmp_path / "search1")
    df1 = first.get_search_state_df()
    assert len(df1) >= 3 and df1["val_iou"].notna().all(), df1
    assert ((df1["val_iou"] >= 0) & (df1["val_iou"] <= 1)).all()
    for p in runner.pipeline_ids:  # rows are final before the processes exit: let them
        runner.wait(p, timeout=60)
    trained = [r for p in runner.pipeline_ids for r in runner.records(p)]
    assert trained and all(r.returncode == 0 for r in trained)
    pipelines = list(runner.pipeline_ids)
    rows = {r["name"]: r for r in store.query("e2e", status="complete")}
    assert len(rows) == len(trained)  # every job's row is complete, with the metric the search saw
    for archid, iou in zip(df1["archid"], df1["val_iou"], strict=True):
        assert rows["id_" + archid]["val_iou"] == pytest.approx(iou)

    # the same search again (a restart): every model's row is reused, no job is launched
    second = run_search(space(), evaluator("out2"), tmp_path / "search2")
    df2 = second.get_search_state_df()
    assert runner.pipeline_ids == pipelines
    assert list(df2["archid"]) == list(df1["archid"])
    assert list(df2["val_iou"]) == pytest.approx(list(df1["val_iou"]))
    summary = json.loads((tmp_path / "out2" / "models.json").read_text())["models"]
    assert summary and all(m["reused"] for m in summary)
    store.close()
