"""After the search: train_pareto.py, snp_test.py and export.py run for real, as subprocesses, on a tiny search
output made here (the embedded store; the LocalJobRunner running train.py; an in-process runner on the
onnxruntime CPU target; onnxruntime checking the export).

The search output is what search.py leaves (``pareto.json``, the partial-training rows of ``tiny`` with
their ArchConfig blobs and the latency rows of ``tiny-latency``), written directly so the test does not
spend minutes on the search itself: its partial ``val_iou`` and latency values are inputs, not results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from archai_aml.config import StoreConfig
from archai_aml.onnx.export import ExportCheckError, check_onnx, export_onnx
from archai_aml.pareto import front_from_store, front_of_rows, load_front
from archai_aml.store import Store, open_store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "face_segmentation"
sys.path.insert(0, str(EXAMPLE))

from search_space import SegmentationSearchSpace, config_json, load_model  # noqa: E402

CONFIG = """
experiment_name: tiny
store:
  path: ${ARCHAI_AML_OUTPUT}/store
training:
  code_dir: ${ARCHAI_AML_EXAMPLE_DIR}
  command: >-
    python train.py --data ${{inputs.data}} --output ${{outputs.output}}
    --model-id {model_id} --experiment {experiment} --epochs {epochs}
    --image-size 32 --train-length 16 --val-length 8 --batch-size 8 --threads 1 --no-mlflow --no-progress
  data: ${ARCHAI_AML_OUTPUT}/data
  max_parallel: 2
  gpus: []
  environment_variables: {OMP_NUM_THREADS: "1"}
  timeout_seconds: 300
  poll_interval_max_s: 0.5
  local_root: ${ARCHAI_AML_OUTPUT}/jobs
target:
  input_shape: [1, 3, 32, 32]
  max_benchmark_runs: 1
  benchmark_iterations: 5
  calibration_images: 2
  f1_onnx_images: 8
  f1_1k_images: 8
  f1_10k_images: 16
runner:
  poll_interval_s: 0.2
  lease_ttl_s: 30
  working: ${ARCHAI_AML_OUTPUT}/runner
  lock_dir: ${ARCHAI_AML_OUTPUT}/locks
"""


def make_search_output(out: Path, n: int = 3) -> list[str]:
    """pareto.json + the rows and blobs a finished search leaves; returns the Pareto model ids."""
    space = SegmentationSearchSpace(seed=3, depths=(2,), channels=(8,))
    models = []
    while len(models) < n:
        m = space.random_sample()
        if m.archid not in {x.archid for x in models}:
            models.append(m)
    entries = []
    with open_store(StoreConfig(path=out / "store")) as store:
        for i, m in enumerate(models):
            model_id = "id_" + m.archid
            store.upload_bytes("tiny", model_id, f"{model_id}.json", config_json(m).encode())
            store.create("tiny", model_id, {"status": "complete", "val_iou": 0.1 * (i + 1), "epochs": 0.5,
                                            "archid": m.archid})  # fmt: skip
            store.create(
                "tiny-latency", model_id, {"status": "complete", "mean": 1.0 + i, "benchmark_only": True}
            )
            entries.append({"archid": m.archid, "iteration": 1, "val_iou": 0.1 * (i + 1), "latency_ms": 1.0 + i,
                            "params": sum(p.numel() for p in m.arch.parameters()), "is_pareto": True,
                            "arch_config": json.loads(config_json(m))})  # fmt: skip
    (out / "pareto.json").write_text(json.dumps({"models": entries}, indent=2))
    return ["id_" + m.archid for m in models]


def script(name: str, config: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHAI_AML_")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / name), "--config", str(config), "--output", str(out), "--no-progress", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    return proc


def pipelines(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "jobs").iterdir() if p.name.startswith("train_"))


def test_pareto_front_keeps_the_non_dominated_rows() -> None:
    rows = [
        {"iou": 0.5, "lat": 2.0},  # front
        {"iou": 0.4, "lat": 3.0},  # dominated by 0
        {"iou": 0.6, "lat": 5.0},  # front
        {"iou": 0.3, "lat": 1.0},  # front
        {"iou": None, "lat": 0.1},  # unmeasured: never on the front
        {"iou": 0.5, "lat": 2.0},  # equal to 0: neither dominates
    ]
    assert front_of_rows(rows, {"iou": True, "lat": False}) == [0, 2, 3, 5]


def test_front_from_the_status_table_and_from_pareto_json(tmp_path: Path) -> None:
    ids = make_search_output(tmp_path)
    with open_store(StoreConfig(path=tmp_path / "store")) as store:
        store.create("tiny", "id_dominated", {"status": "complete", "val_iou": 0.05, "archid": "dominated"})
        store.create("tiny-latency", "id_dominated", {"status": "complete", "mean": 9.0})
        from_table = front_from_store(store, "tiny")
        from_json = load_front(store, "tiny", tmp_path)
    assert [m.model_id for m in from_table] == ids  # sorted by latency; the dominated row left out
    assert [m.model_id for m in from_json] == ids
    assert all(
        m.arch_config and m.arch_config == n.arch_config for m, n in zip(from_table, from_json, strict=True)
    )


def test_a_wrong_export_fails_the_check(tmp_path: Path) -> None:
    space = SegmentationSearchSpace(seed=1, depths=(2,), channels=(8,))
    a, b = space.random_sample().arch, space.random_sample().arch
    path = export_onnx(a, tmp_path / "a.onnx", [1, 3, 32, 32], opset=13)
    assert check_onnx(a, path, [1, 3, 32, 32]).opset == 13
    with pytest.raises(ExportCheckError, match="differ from PyTorch"):
        check_onnx(b, path, [1, 3, 32, 32])


@pytest.mark.slow
def test_train_pareto_then_snp_test_then_export(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "out"
    out.mkdir()
    ids = make_search_output(out)

    # --- train_pareto.py: one pipeline for the whole front, metric to every row
    script("train_pareto.py", config, out, "--epochs", "1")
    assert len(pipelines(out)) == 1
    store: Store
    with open_store(StoreConfig(path=out / "store")) as store:
        for i, model_id in enumerate(ids):
            row = store.get("tiny", model_id)
            final = store.get("tiny-final", model_id)
            assert row is not None and final is not None and final["status"] == "complete"
            assert 0.0 <= row["final_val_iou"] <= 1.0 and row["final_val_iou"] == final["val_iou"]
            assert row["final_epochs"] == 1.0 and row["final_experiment"] == "tiny-final"
            # the search's own row is left as the search wrote it
            assert row["status"] == "complete" and row["val_iou"] == pytest.approx(0.1 * (i + 1))
            assert row["epochs"] == 0.5
            assert {"model.onnx", "model.pt", "arch.json"} <= set(store.list_blobs("tiny-final", model_id))
        versions = {m: store.get("tiny", m)["_version"] for m in ids}  # type: ignore[index]
    # the rank agreement of partial and full training is in pareto.json, results.csv and its own CSV
    rank = json.loads((out / "pareto.json").read_text())["rank_agreement"]
    assert rank["n"] == len(ids) and rank["partial"] == "val_iou" and rank["full"] == "final_val_iou"
    assert rank["judged"] is (len(ids) >= 5)
    assert (out / "rank_agreement.csv").read_text().splitlines()[0].startswith("partial,full,models,judged")
    # resumable: run again, nothing is trained
    again = script(
        "train_pareto.py", config, out, "--epochs", "1", "--from-store"
    )  # the front from the table
    assert len(pipelines(out)) == 1 and "already done" in again.stderr
    with open_store(StoreConfig(path=out / "store")) as store:
        assert {m: store.get("tiny", m)["_version"] for m in ids} == versions  # type: ignore[index]
        # one model lost its result (say, a new search row): only it is trained, in a second pipeline
        store.merge("tiny", ids[0], {"final_val_iou": None, "final_epochs": None})
        store.merge("tiny-final", ids[0], {"status": "failed"})
    script("train_pareto.py", config, out, "--epochs", "1")
    assert len(pipelines(out)) == 2
    with open_store(StoreConfig(path=out / "store")) as store:
        assert store.get("tiny", ids[0])["final_val_iou"] is not None  # type: ignore[index]
        assert {m: store.get("tiny", m)["_version"] for m in ids[1:]} == {m: versions[m] for m in ids[1:]}  # type: ignore[index]

    # --- snp_test.py: a runner on the CPU target scores the fully trained models
    script("snp_test.py", config, out, "--local-runners", "1", "--retry-interval", "0.2")
    with open_store(StoreConfig(path=out / "store")) as store:
        for model_id in ids:
            row = store.get("tiny", model_id)
            test = store.get("tiny-target", model_id)
            assert test is not None and test["status"] == "complete" and not test["benchmark_only"]
            assert row is not None and row["target_experiment"] == "tiny-target"
            for c in ("f1_1k", "f1_10k", "f1_1k_f", "f1_onnx"):
                assert 0.0 <= row[c] <= 1.0 and row[c] == test[c], c
            assert row["target_mean_ms"] == test["mean"] > 0
            # the model measured is the fully trained one
            assert store.download_bytes("tiny-target", model_id, "model.onnx") == store.download_bytes(
                "tiny-final", model_id, "model.onnx"
            )
        tested = {m: store.get("tiny-target", m)["_version"] for m in ids}  # type: ignore[index]
    # no runner: everything is done already (the front read from the status table this time)
    script("snp_test.py", config, out, "--retry-interval", "0.2", "--max-retries", "3", "--from-store")
    with open_store(StoreConfig(path=out / "store")) as store:
        assert {m: store.get("tiny-target", m)["_version"] for m in ids} == tested  # type: ignore[index]
        state = torch.load(
            __import__("io").BytesIO(store.download_bytes("tiny-final", ids[1], "model.pt")),
            weights_only=True,
        )
        (tmp_path / "arch.json").write_bytes(store.download_bytes("tiny-final", ids[1], "arch.json"))

    # --- export.py: the fully trained weights from the store, dynamic batch, checked against PyTorch
    onnx_path = tmp_path / "export" / "model.onnx"
    proc = script("export.py", config, out, "--model-id", ids[1], "--to", str(onnx_path), "--dynamic-batch",
                  "--opset", "17", "--input-shape", "1,3,32,32")  # fmt: skip
    assert "onnxruntime matches PyTorch" in proc.stderr
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    model = load_model(
        tmp_path / "arch.json", num_classes=int(state["classifier.weight"].shape[0])
    ).arch.eval()
    model.load_state_dict(state)
    x = np.random.default_rng(7).random((4, 3, 32, 32), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected, rtol=1e-3, atol=1e-4)
    mtime = onnx_path.stat().st_mtime_ns
    kept = script("export.py", config, out, "--model-id", ids[1], "--to", str(onnx_path), "--dynamic-batch",
                  "--input-shape", "1,3,32,32")  # fmt: skip
    assert "kept" in kept.stderr and onnx_path.stat().st_mtime_ns == mtime


def test_a_failed_full_training_is_reported_and_leaves_the_search_row_alone(tmp_path: Path) -> None:
    """train_pareto on the library level with the pipeline tests' stub training script (a real subprocess
    through the job helper): one model fails, the others get their final_val_iou."""
    from archai_aml.pareto import ParetoModel
    from archai_aml.pareto.full_training import train_pareto
    from tests.pipeline_helpers import expected_metric, make_config

    config = make_config(tmp_path, StoreConfig(path=tmp_path / "store"), env={"STUB_FAIL": "id_m001"})
    models = [ParetoModel(f"m{i:03d}", {"width": 8 * (i + 1)}) for i in range(3)]
    with open_store(config.store) as store:
        for m in models:
            store.create("exp", m.model_id, {"status": "complete", "val_iou": 0.2, "epochs": 1.0})
        result = train_pareto(models, config, store, epochs=3, output=tmp_path / "final", progress=False)
        assert result.trained == ["id_m000", "id_m002"] and list(result.failed) == ["id_m001"]
        assert "stub training crashed" in result.failed["id_m001"] and len(result.pipelines) == 1
        for m in models:
            row = store.get("exp", m.model_id)
            assert row is not None and row["status"] == "complete" and row["val_iou"] == 0.2
            if m.model_id == "id_m001":
                assert row.get("final_val_iou") is None
                assert store.get("exp-final", m.model_id)["status"] == "failed"  # type: ignore[index]
            else:
                assert row["final_val_iou"] == pytest.approx(expected_metric(m.model_id))
                assert row["final_epochs"] == 3.0
        # the stub's ArchConfig is the one the front carried
        arch = json.loads(store.download_bytes("exp-final", "id_m002", "id_m002.json"))
        assert arch == {"width": 24}
