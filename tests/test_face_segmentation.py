"""The face-segmentation example: search space round trips, and train.py as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from archai_aml.config import StoreConfig
from archai_aml.data import open_dataset
from archai_aml.store import job_environment, open_store

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "face_segmentation"
sys.path.insert(0, str(EXAMPLE))

from search_space import (  # noqa: E402
    SegmentationSearchSpace,
    config_json,
    load_model,
)

TINY_ARCH = {
    "stem_stride": 2,
    "stem_channels": 8,
    "num_classes_hint": 0,
    "down": {
        "_config_type": "config_list",
        "_share_arch": False,
        "_repeat_times": 2,
        "_configs": {str(i): {"op": "conv3x3", "channels": 8} for i in range(4)},
    },
    "up": {
        "_config_type": "config_list",
        "_share_arch": False,
        "_repeat_times": 4,
        "_configs": {str(i): {"op": "conv5x5" if i == 0 else "conv3x3", "channels": 8} for i in range(4)},
    },
}


def _out_shape(model: torch.nn.Module, size: int = 40) -> tuple[int, ...]:
    model.eval()
    with torch.no_grad():
        return tuple(model(torch.zeros(1, 3, size, size)).shape)


def test_sample_mutate_crossover_build_working_models() -> None:
    space = SegmentationSearchSpace(num_classes=5, seed=11)
    parents = [space.random_sample() for _ in range(3)]
    children = [space.mutate(parents[0]), space.crossover(parents)]
    for m in parents + children:
        assert len(m.archid) == 40 and all(c in "0123456789abcdef" for c in m.archid)
        assert _out_shape(m.arch) == (1, 5, 40, 40)
    assert len({m.archid for m in parents}) == 3
    # the same seed samples the same architectures (archids are hashes of the configs)
    again = SegmentationSearchSpace(num_classes=5, seed=11)
    assert [again.random_sample().archid for _ in range(3)] == [m.archid for m in parents]


def test_save_load_arch_and_config_json_rebuild_the_same_model(tmp_path: Path) -> None:
    space = SegmentationSearchSpace(num_classes=7, seed=2)
    for i in range(3):
        model = space.random_sample()
        path = tmp_path / f"a{i}.json"
        space.save_arch(model, str(path))
        loaded = space.load_arch(str(path))
        assert loaded.archid == model.archid
        assert _out_shape(loaded.arch, 48) == _out_shape(model.arch, 48) == (1, 7, 48, 48)
        # the JSON the training pipeline uploads (sorted keys) rebuilds it too
        text = config_json(model)
        json_path = tmp_path / f"b{i}.json"
        json_path.write_text(text)
        rebuilt = load_model(json_path, num_classes=7)
        assert rebuilt.archid == model.archid
        assert [p.shape for p in rebuilt.arch.parameters()] == [p.shape for p in model.arch.parameters()]


def test_unused_decoder_blocks_do_not_change_the_archid(tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    other = json.loads(json.dumps(TINY_ARCH))
    other["up"]["_configs"]["3"]["op"] = "conv7x7"  # block 3 is unused at depth 2
    a.write_text(json.dumps(TINY_ARCH))
    b.write_text(json.dumps(other))
    assert load_model(a).archid == load_model(b).archid
    other["up"]["_configs"]["1"]["op"] = "conv7x7"  # block 1 is used
    b.write_text(json.dumps(other))
    assert load_model(a).archid != load_model(b).archid


def test_weights_round_trip(tmp_path: Path) -> None:
    space = SegmentationSearchSpace(num_classes=3, seed=5)
    model = space.random_sample()
    with torch.no_grad():
        for p in model.arch.parameters():
            p.add_(0.01)
    space.save_model_weights(model, str(tmp_path / "w.pt"))
    copy = space.model_from_dict(model.metadata["config"].to_dict())
    space.load_model_weights(copy, str(tmp_path / "w.pt"))
    x = torch.rand(2, 3, 32, 32)
    model.arch.eval()
    copy.arch.eval()
    with torch.no_grad():
        assert torch.equal(model.arch(x), copy.arch(x))


def _run_train(
    tmp_path: Path, store_config: StoreConfig, model_id: str, *extra: str
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        **job_environment(store_config),
        "AZUREML_RUN_ID": f"run-{model_id}",
        "AZUREML_ROOT_RUN_ID": "pipeline-1",
        "OMP_NUM_THREADS": "1",
    }
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    cmd = [
        sys.executable,
        "train.py",
        "--data",
        str(data),
        "--output",
        str(tmp_path / "out" / model_id),
        "--model-id",
        model_id,
        "--experiment",
        "exp",
        "--epochs",
        "0.5",
        "--image-size",
        "64",
        "--train-length",
        "32",
        "--val-length",
        "8",
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--no-mlflow",
        "--no-progress",
        *extra,
    ]
    return subprocess.run(cmd, cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=240)


def test_train_script_end_to_end(tmp_path: Path) -> None:
    config = StoreConfig(backend="embedded", path=tmp_path / "store", table_name="trainjobs")
    with open_store(config) as store:
        store.create("exp", "m1", {"status": "preparing", "epochs": 0.5})
        store.upload_bytes("exp", "m1", "m1.json", json.dumps(TINY_ARCH).encode())
    proc = _run_train(tmp_path, config, "m1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open_store(config) as store:
        row = store.get("exp", "m1")
    assert row is not None
    assert row["status"] == "complete", row
    assert 0.0 <= row["val_iou"] <= 1.0
    assert row["epochs"] == 0.5 and row["training_time"] > 0
    assert (row["job_id"], row["pipeline_id"]) == ("run-m1", "pipeline-1")
    out = tmp_path / "out" / "m1"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_iou"] == row["val_iou"]
    assert metrics["archid"] == load_model(out / "arch.json").archid

    # model.onnx loads in onnxruntime and matches the saved torch weights on a validation image
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    image, _ = open_dataset(tmp_path / "data", split="val", length=1, image_size=64)[0]
    onnx_out = session.run(None, {"input": image[None]})[0]
    assert onnx_out.shape == (1, 7, 64, 64)
    model = load_model(out / "arch.json", num_classes=7)
    model.arch.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    model.arch.eval()
    with torch.no_grad():
        torch_out = model.arch(torch.from_numpy(image[None])).numpy()
    assert np.allclose(onnx_out, torch_out, atol=1e-4)


def test_train_script_marks_failed_and_exits_nonzero(tmp_path: Path) -> None:
    config = StoreConfig(backend="embedded", path=tmp_path / "store", table_name="trainfail")
    with open_store(config) as store:
        store.create("exp", "m2", {"status": "preparing"})
    proc = _run_train(tmp_path, config, "m2")  # no ArchConfig blob uploaded
    assert proc.returncode != 0
    with open_store(config) as store:
        row = store.get("exp", "m2")
    assert row is not None and row["status"] == "failed"
    assert row["error"].startswith("ConfigError: the store has no blob exp/m2/m2.json")
    assert "no blob" in proc.stderr


def test_train_script_rejects_bad_flags() -> None:
    proc = subprocess.run(
        [sys.executable, "train.py", "--data", "x", "--output", "o", "--model-id", "m", "--experiment", "e"]
        + ["--epochs=0"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--epochs must be positive" in proc.stderr


def test_example_config_loads_and_keeps_the_pipeline_flags() -> None:
    from archai_aml.config import load_config

    config = load_config(EXAMPLE / "config.yaml")
    command = config.training.command
    for flag in ("--data ${{inputs.data}}", "--output ${{outputs.output}}", "--model-id {model_id}"):
        assert flag in command
    assert "--experiment {experiment} --epochs {epochs}" in command
    assert config.training.metric_key == "val_iou"


def test_train_script_runs_under_the_training_pipeline_and_local_executor(tmp_path: Path) -> None:
    """The pipeline side's default command (plus tiny-size flags) runs train.py end to end."""
    from archai_aml.config import ArchaiAmlConfig, TrainingConfig
    from archai_aml.pipelines.local import LocalJobRunner
    from archai_aml.pipelines.training import start_training_pipeline

    store_config = StoreConfig(backend="embedded", path=tmp_path / "store", table_name="pipe")
    data = tmp_path / "data"
    data.mkdir()
    (data / "procedural.json").write_text(json.dumps({"num_classes": 4, "lengths": {"train": 16, "val": 4}}))
    default = TrainingConfig().command
    config = ArchaiAmlConfig(
        experiment_name="fs",
        store=store_config,
        training=TrainingConfig(
            code_dir=EXAMPLE,
            command=default + " --image-size 32 --batch-size 8 --threads 1 --no-mlflow --no-progress",
            data=str(data),
            gpus=[],
            local_root=tmp_path / "jobs",
        ),
    )
    space = SegmentationSearchSpace(num_classes=4, seed=0, stem_strides=(2, 4), channels=(8,))
    model = space.random_sample()
    runner = LocalJobRunner(
        tmp_path / "jobs", max_parallel=1, gpus=[], env=job_environment(store_config, include_secrets=True)
    )
    with open_store(store_config) as store:
        job, (model_id,) = start_training_pipeline(
            "test", runner, store, [model], config, 0.5, tmp_path / "o"
        )
        status = runner.wait(str(job.name), timeout=180)
        row = store.get("fs", model_id)
    runner.close()
    assert status == "Completed", runner.logs(str(job.name), model_id)[-2000:]
    assert row is not None and row["status"] == "complete"
    assert 0.0 <= row["val_iou"] <= 1.0 and row["epochs"] == 0.5
    assert row["pipeline_id"] == str(job.name) and row["job_id"].startswith(str(job.name))
    out = tmp_path / "jobs" / "datastores" / "models" / "fs" / model_id
    assert json.loads((out / "metrics.json").read_text())["archid"] == model.archid
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((1, 3, 32, 32), np.float32)})[0].shape == (1, 4, 32, 32)


def test_train_script_fast_path_bf16_channels_last_workers(tmp_path: Path) -> None:
    """The settings used on a GPU (bf16 autocast, channels-last, loader workers), exercised on the CPU."""
    config = StoreConfig(backend="embedded", path=tmp_path / "store", table_name="trainfast")
    with open_store(config) as store:
        store.upload_bytes("exp", "m3", "m3.json", json.dumps(TINY_ARCH).encode())
    proc = _run_train(
        tmp_path, config, "m3", "--precision", "bf16", "--channels-last", "on", "--num-workers", "2"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "out" / "m3" / "metrics.json").read_text())
    assert (metrics["precision"], metrics["channels_last"]) == ("bf16", True)
    assert 0.0 <= metrics["val_iou"] <= 1.0 and metrics["train_images"] == 16  # half an epoch of 32
    assert metrics["loop_end"] > metrics["loop_start"]
    with open_store(config) as store:
        row = store.get("exp", "m3")
    assert row is not None and row["status"] == "complete" and row["val_iou"] == metrics["val_iou"]
