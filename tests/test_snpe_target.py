"""The ``snpe`` target end to end on the test SDK (archai_aml.testing.snpe_sdk): real subprocesses for every
SDK tool and adb, a device that is a folder, ``snpe-net-run`` computing outputs with onnxruntime; and the
``archai-aml runner --target snpe`` process taking a queued row to completion on the embedded store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from archai_aml.config import StoreConfig
from archai_aml.errors import TargetError
from archai_aml.snpe import AdbDevice, SnpeTarget, find_sdk
from archai_aml.snpe.tools import parse_dlc_info
from archai_aml.store import job_environment, open_store
from archai_aml.targets import get_target
from archai_aml.testing.fixed_cost import tiny_model_bytes
from archai_aml.testing.snpe_sdk import TestSdk, build_test_sdk
from tests.runner_models import add_rows

SERIAL = "emulator-5554"
ROOT = Path(__file__).resolve().parents[1]


def _use(built: TestSdk, monkeypatch: pytest.MonkeyPatch) -> TestSdk:
    for key, value in built.env().items():
        monkeypatch.setenv(key, value)
    return built


@pytest.fixture(params=[2, 1], ids=["snpe2", "snpe1"])
def any_sdk(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestSdk:
    """Both SDK generations (2.x / QAIRT tool names, 1.x tool names)."""
    return _use(build_test_sdk(tmp_path / "sdk", generation=request.param), monkeypatch)


@pytest.fixture
def sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestSdk:
    return _use(build_test_sdk(tmp_path / "sdk"), monkeypatch)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_model_bytes(classes=7, size=8))
    return path


def _reference(model: Path, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])


def _images(n: int, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def test_convert_quantize_info_run_and_benchmark(any_sdk: TestSdk, model: Path, tmp_path: Path) -> None:
    sdk = any_sdk
    target = get_target("snpe", device=SERIAL, htp_socs="sm8650", progress=False, inputs_per_run=3)
    assert isinstance(target, SnpeTarget) and target.sdk.generation == sdk.generation
    dlc = target.convert(model, tmp_path / "conv")
    quant = target.quantize(model, [_images(1, seed=i) for i in range(4)], tmp_path / "q")
    assert dlc.name == "model.dlc" and quant.name == "model.quant.dlc"
    info = target.info(quant, tmp_path / "info")
    # 7x3 weights; 7*3*8*8 = 1344 MACs, which snpe-dlc-info prints rounded as "1k"
    assert (info.macs, info.params) == (1000, 21)
    assert info.layers_csv is not None and "Total MACs per inference" in info.layers_csv.read_text()
    x = _images(7, seed=9)
    ref = _reference(model, x)
    # 7 inputs in runs of 3: outputs come back matched to their inputs, NCHW
    np.testing.assert_allclose(target.run_batch(dlc, x), ref, rtol=1e-5, atol=1e-5)
    yq = target.run_batch(quant, x)
    assert yq.shape == ref.shape and 0 < np.abs(yq - ref).max() < 0.2 * np.abs(ref).max()
    # the runtime and DSP libraries went to the device once, with a marker naming the SDK version
    arch = sdk.device_root(SERIAL) / "data/local/tmp/archai_aml" / target.sdk.device_arch
    assert (arch / ".sdk_version").read_text().strip() == sdk.version
    assert (arch / "bin" / "snpe-net-run").is_file() and (arch / "lib" / "libSNPE.so").is_file()
    assert not AdbDevice(SERIAL).setup_sdk(target.sdk)  # already there: nothing pushed
    result = target.benchmark(quant, iterations=5)
    assert result.mean_ms > 0 and result.csv is not None
    assert "DSP_ub_tf8_timing" in result.csv.read_text()


def test_missing_or_wrong_sdk_names_the_variable_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SNPE_ROOT", raising=False)
    with pytest.raises(TargetError, match="SNPE_ROOT is not set"):
        SnpeTarget()
    monkeypatch.setenv("SNPE_ROOT", str(tmp_path))
    with pytest.raises(TargetError, match=rf"SNPE_ROOT={tmp_path} is not an SNPE SDK.*x86_64-linux-clang"):
        find_sdk()
    sdk = build_test_sdk(tmp_path / "sdk")
    (sdk.root / "bin/x86_64-linux-clang/snpe-dlc-graph-prepare").unlink()
    with pytest.raises(TargetError, match="no snpe-dlc-graph-prepare"):
        find_sdk(sdk.root)


def test_failing_tool_reports_its_first_error_line(sdk: TestSdk, model: Path, tmp_path: Path) -> None:
    target = SnpeTarget(device=SERIAL, progress=False)
    # 16x16 calibration images for an 8x8 model: the quantizer refuses the raw files
    with pytest.raises(
        TargetError,
        match=r"snpe-dlc-quant(ize)? failed \(exit 1\): \[ERROR\] Input file .*/[0-9a-f]{20}.raw has 3072 bytes",
    ):
        target.quantize(model, [_images(1, size=16)], tmp_path / "q")


def test_flaky_pushes_are_retried_and_a_dead_link_fails(sdk: TestSdk, model: Path, tmp_path: Path) -> None:
    target = SnpeTarget(device=SERIAL, progress=False, retries=5, retry_pause=0.01)
    dlc = target.convert(model, tmp_path / "conv")
    sdk.flaky_pushes(SERIAL, 3)
    x = _images(2)
    np.testing.assert_allclose(target.run_batch(dlc, x), _reference(model, x), rtol=1e-5, atol=1e-5)
    assert (sdk.device_root(SERIAL) / ".fake/flaky_pushes").read_text() == "0"
    sdk.flaky_pushes(SERIAL, 100)
    dev = AdbDevice(SERIAL, retries=2, retry_pause=0.01)
    with pytest.raises(TargetError, match=r"failed 2 times: adb: error: failed to copy"):
        dev.push(model, "/data/local/tmp/m.onnx")
    with pytest.raises(TargetError, match="not reachable"):
        AdbDevice("no-such-serial").state()


def test_dlc_info_parser_reads_si_totals() -> None:
    text = "\n".join(
        [
            "DLC info for: /m.dlc",
            "| Id | Name | Type | Inputs | Outputs | Out Dims | Runtimes | Parameters |",
            "| 0 | x | data | x | x | 1x8x8x3 | A D G C | input_preprocessing: passthrough |",
            "| 1 | conv | conv | x | y | 1x8x8x7 | A D G C | param count: 21 (100%) |",
            "|   |      |      |   |   |         |         | MACs per inference: 40M (100%) |",
            "Total parameters: 1362816 (5 MB assuming single precision float)",
            "Total MACs per inference: 40M (100%)",
            "DLC created with converter version: 1.68.0.3932",
        ]
    )  # the totals lines are those of a real SNPE 1.68 dlc-info (see docs/qualcomm.md)
    info = parse_dlc_info(text)
    assert (info.macs, info.params, info.converter_version) == (40_000_000, 1362816, "1.68.0.3932")
    assert info.output_tensors() == [("y", [1, 8, 8, 7])]
    assert "MACs per inference" in info.layers[1].parameters


def test_runner_cli_takes_a_row_to_complete_on_snpe(tmp_path: Path) -> None:
    sdk = build_test_sdk(tmp_path / "sdk")
    store_config = StoreConfig(
        backend="embedded", path=tmp_path / "store", table_name="t" + uuid.uuid4().hex[:12]
    )
    with open_store(store_config) as store:
        (name,) = add_rows(store, "snpe", 1, size=16)
    env = {**os.environ, **job_environment(store_config, include_secrets=True), **sdk.env()}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [
        sys.executable, "-m", "archai_aml.runner", "runner", "--target", "snpe", "--device", SERIAL,
        "--experiment", "snpe", "--once", "--working", str(tmp_path / "work"), "--lock-dir", str(tmp_path),
        "--max-benchmark-runs", "2", "--benchmark-iterations", "3", "--f1-sizes", "6,6,6",
        "--sdk-root", str(sdk.root), "--stats", str(tmp_path / "stats.json"),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open_store(store_config) as store:
        row = store.get("snpe", name)
        blobs = set(store.list_blobs("snpe", name))
    assert row is not None and row["status"] == "complete", (row, proc.stderr[-3000:])
    assert (
        row["converted_model"] == "converted/model.dlc"
        and row["quantized_model"] == "quantized/model.quant.dlc"
    )
    assert (row["macs"], row["params"]) == (5000, 21)  # 7*3*16*16 = 5376 MACs, printed "5k" by snpe-dlc-info
    runs = json.loads(row["total_inference_avg"])
    assert len(runs) == 2 and all(r > 0 for r in runs) and row["mean"] == pytest.approx(sum(runs) / 2)
    assert row["stdev"] >= 0
    for col in ("f1_onnx", "f1_1k", "f1_1k_f", "f1_10k"):
        assert 0.0 <= row[col] <= 1.0, (col, row[col])
    # the float DLC ran on the device over the same images as the float ONNX on the CPU: same outputs, same F1
    assert row["f1_1k_f"] == pytest.approx(row["f1_onnx"], abs=1e-9)
    assert abs(row["f1_1k"] - row["f1_onnx"]) < 0.2
    sources = json.loads(row["sources"])  # where each figure came from
    assert sources["macs"] == sources["params"] and sources["macs"].startswith("snpe-dlc-info (SNPE ")
    assert sources["mean"].startswith("snpe_bench.py (SNPE ") and f"device {SERIAL}" in sources["mean"]
    assert "DSP" in sources["f1_1k"] and "CPU" in sources["f1_1k_f"] and "snpe-net-run" in sources["f1_10k"]
    assert sources["f1_onnx"].startswith("onnxruntime ") and "CPUExecutionProvider" in sources["f1_onnx"]
    assert {"model.info.csv", "benchmark/benchmark_1.csv", "test_results_f1_1k.csv"} <= blobs
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["kinds"] == {
        "convert": 1,
        "benchmark": 2,
        "f1_onnx": 1,
        "f1_1k": 1,
        "f1_1k_f": 1,
        "f1_10k": 1,
    }


def test_device_side_error_reaches_the_caller(sdk: TestSdk, model: Path, tmp_path: Path) -> None:
    target = SnpeTarget(device=SERIAL, progress=False, runtime="dsp")
    dlc = target.convert(model, tmp_path / "conv")
    assert target.run_batch(dlc, _images(1)).shape == (1, 7, 8, 8)
    # someone wiped the DSP libraries; the marker still says the SDK is there, so nothing is re-pushed
    for lib in (sdk.device_root(SERIAL) / "data/local/tmp/archai_aml/dsp/lib").iterdir():
        lib.unlink()
    with pytest.raises(
        TargetError,
        match=r"snpe-net-run .* failed on emulator-5554 \(exit 1\): \[ERROR\] Unable to load the DSP",
    ):
        SnpeTarget(device=SERIAL, progress=False, runtime="dsp").run_batch(dlc, _images(1))
