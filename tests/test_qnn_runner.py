"""The qnn target in the runner: ``archai-aml runner --target qnn`` takes a queued row to completion on the
embedded store (conversion, EP-context model and its binary in blob storage, HTP F1, simulated latency);
a model with an operator the HTP refuses gets the message in its row and the runner goes on; the
remote-benchmark evaluator refuses simulated latency as an objective unless allowed."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from archai.discrete_search.api import ArchaiModel

from archai_aml.config import StoreConfig
from archai_aml.errors import SimulatedLatencyError
from archai_aml.evaluators import RemoteAzureBenchmarkEvaluator
from archai_aml.qnn import QnnTarget
from archai_aml.runner import Runner, RunnerSettings
from archai_aml.store import open_store
from tests.qnn_models import seg_model_bytes

ROOT = Path(__file__).resolve().parents[1]
SIZE = 16
EMULATED = platform.machine().lower() not in ("aarch64", "arm64")


def add_row(store, exp: str, name: str, model: bytes, **columns: object) -> None:  # type: ignore[no-untyped-def]
    store.upload_bytes(exp, name, "model.onnx", model)
    store.create(exp, name, {"status": "new", "shape": json.dumps([1, 3, SIZE, SIZE]), **columns})


def settings(tmp_path: Path, exp: str, **kw: object) -> RunnerSettings:
    base: dict[str, object] = dict(
        experiment=exp, max_benchmark_runs=1, working=tmp_path / "work", lock_dir=tmp_path / "lock",
        lease_ttl=30.0, poll_interval=0.05, benchmark_iterations=3, calibration_images=4,
        f1_onnx_images=4, f1_1k_images=4, f1_10k_images=6, seed=0,
    )  # fmt: skip
    base.update(kw)
    return RunnerSettings(**base)  # type: ignore[arg-type]


@pytest.mark.slow
def test_runner_cli_takes_a_queued_row_to_completion_on_the_htp(tmp_path: Path) -> None:
    store_config = StoreConfig(backend="embedded", path=tmp_path / "store")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""experiment_name: qnnexp
store: {{backend: embedded, path: {tmp_path / "store"}}}
target:
  name: qnn
  input_shape: [1, 3, {SIZE}, {SIZE}]
  max_benchmark_runs: 1
  benchmark_iterations: 3
  calibration_images: 4
  f1_onnx_images: 4
  f1_1k_images: 4
  f1_10k_images: 6
  qnn: {{htp_performance_mode: burst}}
runner: {{lease_ttl_s: 30, poll_interval_s: 0.1, working: {tmp_path / "work"}, lock_dir: {tmp_path / "lock"}}}
""",
        encoding="utf-8",
    )
    with open_store(store_config) as store:
        add_row(store, "qnnexp", "id_000", seg_model_bytes(SIZE))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = Path(sys.executable).with_name("archai-aml")
    cmd = [str(cli)] if cli.is_file() else [sys.executable, "-m", "archai_aml.cli"]
    bad = subprocess.run(
        [*cmd, "--config", str(config), "runner", "--target", "qnn", "--once", "--qnn-option", "workers=0"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode != 0 and "workers" in bad.stderr, bad.stderr
    done = subprocess.run(
        [*cmd, "--config", str(config), "runner", "--target", "qnn", "--once", "--qnn-option", "workers=2",
         "--stats", str(tmp_path / "stats.json")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with open_store(store_config) as store:
        row = store.get("qnnexp", "id_000")
        blobs = set(store.list_blobs("qnnexp", "id_000"))
    assert row is not None and row["status"] == "complete", row
    assert not row.get("error")
    for col in ("f1_onnx", "f1_1k", "f1_1k_f", "f1_10k"):
        assert 0.0 <= row[col] <= 1.0, (col, row[col])
    assert row["mean"] > 0 and row["macs"] > 0 and row["params"] > 0 and row["quantized"] is True
    assert row["latency_simulated"] is EMULATED
    sources = json.loads(row["sources"])  # where each figure came from
    htp = "x86-64 emulator, simulated" if EMULATED else "Snapdragon HTP"
    assert sources["mean"].startswith("onnxruntime-qnn ") and htp in sources["mean"]
    assert sources["f1_1k"] == sources["f1_10k"] == sources["mean"]
    assert "CPUExecutionProvider (float model)" in sources["f1_1k_f"]
    assert row["quantized_model"] == "quantized/model_ctx.onnx"
    assert row["converted_model"] == "converted/model.qnn.onnx"
    assert {"quantized/model_ctx.onnx", "quantized/model_ctx_qnn.bin", "model.info.csv"} <= blobs
    stats = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert stats["kinds"] == {
        "convert": 1,
        "benchmark": 1,
        "f1_onnx": 1,
        "f1_1k": 1,
        "f1_1k_f": 1,
        "f1_10k": 1,
    }


def test_unsupported_operator_goes_into_the_row_and_the_runner_goes_on(tmp_path: Path) -> None:
    with open_store(StoreConfig(backend="embedded", path=tmp_path / "store")) as store:
        add_row(store, "exp", "id_bad", seg_model_bytes(SIZE, hardmax=True), benchmark_only=True, priority=1)
        add_row(store, "exp", "id_good", seg_model_bytes(SIZE), benchmark_only=True, priority=2)
        target = QnnTarget(progress=False)
        runner = Runner(store, target, settings(tmp_path, "exp"))
        try:
            runner.run(once=True)
        finally:
            target.close()
        bad, good = store.get("exp", "id_bad"), store.get("exp", "id_good")
    assert bad is not None and bad["status"] == "error"
    assert "Hardmax" in bad["error"] and "hardmax_0" in bad["error"], bad["error"]
    assert good is not None and good["status"] == "complete" and good["mean"] > 0, good
    assert good["latency_simulated"] is EMULATED


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 7, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


@pytest.mark.skipif(not EMULATED, reason="on an ARM64 Snapdragon the latency is real")
def test_evaluator_refuses_simulated_latency_unless_allowed(tmp_path: Path) -> None:
    with open_store(StoreConfig(backend="embedded", path=tmp_path / "store")) as store:
        kwargs = dict(
            store=store, experiment_name="lat", overwrite=False, retry_interval=0.05, progress=False
        )
        refusing = RemoteAzureBenchmarkEvaluator((1, 3, SIZE, SIZE), **kwargs)  # type: ignore[arg-type]
        refusing.send(ArchaiModel(Tiny(), archid="tiny"))
        target = QnnTarget(progress=False)
        try:
            Runner(store, target, settings(tmp_path, "lat")).run(once=True)
        finally:
            target.close()
        row = store.get("lat", "id_tiny")
        assert row is not None and row["status"] == "complete" and row["latency_simulated"] is True
        with pytest.raises(SimulatedLatencyError, match="allow_simulated_latency=True") as info:
            refusing.fetch_all()
        assert "id_tiny" in str(info.value) and "simulator" in str(info.value)
        allowing = RemoteAzureBenchmarkEvaluator(
            (1, 3, SIZE, SIZE),
            allow_simulated_latency=True,
            **kwargs,  # type: ignore[arg-type]
        )
        allowing.send(ArchaiModel(Tiny(), archid="tiny"))
        assert allowing.fetch_all() == [pytest.approx(row["mean"])]
        by_macs = RemoteAzureBenchmarkEvaluator((1, 3, SIZE, SIZE), metric_key="macs", **kwargs)  # type: ignore[arg-type]
        by_macs.send(ArchaiModel(Tiny(), archid="tiny"))
        assert by_macs.fetch_all() == [row["macs"]]  # not a latency column: nothing to refuse


def test_a_runner_resumes_from_a_stored_context_model_and_its_binary(tmp_path: Path) -> None:
    """A row whose EP-context model and binary are in blob storage (a runner died after uploading them) is
    not quantized again: the next runner downloads both, counts MACs from the model's metadata and
    benchmarks it."""
    src = tmp_path / "model.onnx"
    src.write_bytes(seg_model_bytes(SIZE))
    first = QnnTarget(progress=False)
    ctx = first.quantize(src, [_image()], tmp_path / "q")
    first.close()
    with open_store(StoreConfig(backend="embedded", path=tmp_path / "store")) as store:
        add_row(store, "exp", "id_000", src.read_bytes(), benchmark_only=True)
        store.upload("exp", "id_000", ctx, blob_name="quantized/model_ctx.onnx")
        store.upload(
            "exp", "id_000", ctx.parent / "model_ctx_qnn.bin", blob_name="quantized/model_ctx_qnn.bin"
        )
        target = QnnTarget(progress=False)
        calls: list[str] = []
        original = target.quantize

        def counting(*args: object, **kwargs: object) -> Path:
            calls.append("quantize")
            return original(*args, **kwargs)  # type: ignore[arg-type]

        target.quantize = counting  # type: ignore[method-assign]
        try:
            Runner(store, target, settings(tmp_path, "exp")).run(once=True)
        finally:
            target.close()
        row = store.get("exp", "id_000")
    assert calls == []  # the stored artifact was used
    assert row is not None and row["status"] == "complete", row
    assert row["quantized_model"] == "quantized/model_ctx.onnx" and row["macs"] > 0 and row["mean"] > 0


def _image() -> object:
    import numpy as np

    return np.random.default_rng(0).random((1, 3, SIZE, SIZE), dtype=np.float32)
