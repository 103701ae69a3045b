"""The snpe target against the documented behaviour of the real tools (issue 16): parsers on output quoted
from public sources, and the stand-ins (archai_aml.testing.snpe_sdk*) reproducing each case."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from archai_aml.errors import TargetError
from archai_aml.snpe import AdbDevice, SnpeTarget, find_sdk
from archai_aml.snpe.bench import parse_bench_csv
from archai_aml.snpe.dlc_info import parse_dlc_info, parse_tensor_cell
from archai_aml.testing.snpe_sdk import TestSdk, build_test_sdk

SERIAL = "emulator-5554"

# SNPE 2.22.6.240515, `snpe-dlc-info -i dlc/yolov5s_quantized.dlc`, quoted in
# Kaiwei0323/SNPE_Yolov5_Model_Conversion README.md ("Model Analysis"): the last layer of the table (its
# three inputs on three rows), the runtimes key, the input and output sections. The header row and the
# totals are added (header: the column names every generation prints; totals: the SNPE 1.68 sample in
# /work/shared/notes/qualcomm-sources.md, "Total MACs per inference: 40M (100%)").
SNPE2_22 = """\
| Id  | Name                             | Type              | Inputs                                                                                                              | Outputs                                                                                                              | Out Dims     | Runtimes | Parameters                               |
| 238 | /model.24/Concat_3               | Concat            | /model.24/Reshape_1_output_0 (data type: Float_32; tensor dimension: [1,19200,85]; tensor type: NATIVE)              | output0 (data type: Float_32; tensor dimension: [1,25200,85]; tensor type: APP_READ)                                 | 1x25200x85   | A D G C  | axis: 1                                  |
|     |                                  |                   | /model.24/Reshape_3_output_0 (data type: Float_32; tensor dimension: [1,4800,85]; tensor type: NATIVE)               |                                                                                                                      |              |          | packageName: qti.aisw                    |
|     |                                  |                   | /model.24/Reshape_5_output_0 (data type: Float_32; tensor dimension: [1,1200,85]; tensor type: NATIVE)               |                                                                                                                      |              |          |                                          |
---------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------
Note: The supported runtimes column assumes a processor target of Snapdragon 855
Key : A:AIP
      D:DSP
      G:GPU
      C:CPU

------------------------------------------------------------------------------
| Input Name  | Dimensions   | Type      | Encoding Info                     |
------------------------------------------------------------------------------
| images      | 1,640,640,3  | Float_32  | No encoding info for this tensor  |
------------------------------------------------------------------------------
------------------------------------------------------------------------------
| Output Name  | Dimensions  | Type      | Encoding Info                     |
------------------------------------------------------------------------------
| output0      | 1,25200,85  | Float_32  | No encoding info for this tensor  |
------------------------------------------------------------------------------
Total parameters: 1362816 (5 MB assuming single precision float)
Total MACs per inference: 40M (100%)
"""

# SNPE 1.54.2.2899, `snpe-dlc-info -i ./dlc/mnist-mobilenet.dlc` in a public SNPE tutorial (the `data`
# row and the totals as quoted there; the tutorial elides the other layers with "...")
SNPE1_54 = """\
DLC info for: /home/qq/Desktop/snpe/dlc/mnist-mobilenet.dlc
Model Version: N/A
Model Copyright:N/A
-------------------------------------------------------------------------------------------------------------------------------------------------------------------
| Id  | Name                       | Type                  | Inputs              | Outputs             | Out Dims   | Runtimes | Parameters                       |
-------------------------------------------------------------------------------------------------------------------------------------------------------------------
| 0   | t.1                        | data                  | t.1                 | t.1                 | 1x32x32x1  | A D G C  | input_preprocessing: passthrough |
...
Total parameters: 2219623 (8 MB assuming single precision float)
Total MACs per inference: 6M (100%)
DLC created with converter version: 1.54.2.2899
"""


def test_parses_snpe2_continuation_rows_tensor_cells_and_sections() -> None:
    info = parse_dlc_info(SNPE2_22)
    (concat,) = info.layers
    # all three inputs, each by its name (not "(data", "type:" ...), with its dims
    assert concat.inputs == [f"/model.24/Reshape_{i}_output_0" for i in (1, 3, 5)]
    assert concat.outputs == ["output0"]
    assert concat.tensors["/model.24/Reshape_3_output_0"].dims == [1, 4800, 85]
    assert "packageName: qti.aisw" in concat.parameters
    assert [(t.name, t.dims) for t in info.input_tensors()] == [("images", [1, 640, 640, 3])]
    assert info.output_tensors() == [("output0", [1, 25200, 85])]
    assert (info.params, info.macs, info.generation) == (1362816, 40_000_000, 2)


def test_parses_snpe1_data_layer() -> None:
    info = parse_dlc_info(SNPE1_54)
    assert [(t.name, t.dims) for t in info.input_tensors()] == [("t.1", [1, 32, 32, 1])]
    assert (info.params, info.macs, info.converter_version, info.generation) == (
        2219623,
        6_000_000,
        "1.54.2.2899",
        1,
    )


def test_tensor_cell_forms() -> None:
    t = parse_tensor_cell(
        "reference_input (data type: uFxp_8; tensor dimension: [1,1,4,4]; tensor type: APP_WRITE)"
    )
    assert t is not None and (t.name, t.dims, t.kind) == ("reference_input", [1, 1, 4, 4], "APP_WRITE")
    t = parse_tensor_cell("t.1")  # 1.x: a bare name
    assert t is not None and (t.name, t.dims) == ("t.1", [])
    assert parse_tensor_cell("  ") is None


def test_bench_csv_label_in_the_third_cell(tmp_path: Path) -> None:
    """The SDK's CSV writer puts two empty cells before each data row (issue 16)."""
    path = tmp_path / "benchmark_stats_model.csv"
    path.write_text(
        "Execution Metrics\n,,,DSP_ub_tf8_timing\n,,Total Inference Time,1234\n", encoding="utf-8"
    )
    assert parse_bench_csv(path, "DSP_ub_tf8_timing") == 1234.0


# --------------------------------------------------------------------------------------- stand-ins
def _use(built: TestSdk, monkeypatch: pytest.MonkeyPatch) -> TestSdk:
    for key, value in built.env().items():
        monkeypatch.setenv(key, value)
    return built


def _two_branch(path: Path) -> Path:
    """input -> conv_a -> a, input -> conv_b -> b, out = a + b: ``b`` is read only as Add's 2nd input."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal((7, 3, 1, 1)).astype(np.float32), n) for n in "wv"]
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["a"], name="conv_a"),
        helper.make_node("Conv", ["input", "v"], ["b"], name="conv_b"),
        helper.make_node("Add", ["a", "b"], ["output"], name="add"),
    ]
    graph = helper.make_graph(
        nodes, "two", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 7, 8, 8])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 8, 8)).astype(np.float32)


def _reference(model: Path, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])


@pytest.mark.parametrize("generation", [2, 1], ids=["snpe2", "snpe1"])
def test_second_inputs_on_continuation_rows_are_not_outputs(
    generation: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defects 1, 4 and 7: the network output found through continuation rows and 2.x cells, the device's
    output folder pulled with real adb semantics."""
    _use(build_test_sdk(tmp_path / "sdk", generation=generation), monkeypatch)
    model = _two_branch(tmp_path / "two.onnx")
    target = SnpeTarget(device=SERIAL, progress=False, inputs_per_run=4)
    dlc = target.convert(model, tmp_path / "conv")
    info = target.dlc_info(dlc)
    assert info.generation == generation and [n for n, _ in info.output_tensors()] == ["output"]
    x = _images(3, seed=2)
    np.testing.assert_allclose(target.run_batch(dlc, x), _reference(model, x), rtol=1e-5, atol=1e-5)


def test_device_commands_quote_the_architecture_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """17.3.3: the SDK's architecture folder name goes into device shell commands quoted."""
    sdk = _use(build_test_sdk(tmp_path / "sdk", arch="aarch64-android 8.0"), monkeypatch)
    found = find_sdk(sdk.root)
    dev = AdbDevice(SERIAL, adb=sdk.adb)
    assert dev.setup_sdk(found)
    arch = sdk.device_root(SERIAL) / "data/local/tmp/archai_aml/aarch64-android 8.0"
    assert (arch / ".sdk_version").read_text().strip() == found.version
    assert (arch / "bin" / "snpe-net-run").is_file() and (arch / "lib" / "libSNPE.so").is_file()
    assert "usage: snpe-net-run" in dev.shell(f"{dev.snpe_env(found)} && snpe-net-run --help")


def test_quantize_with_spaces_in_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """17.3.1: the input-list format splits on spaces; a working folder with one must not matter."""
    _use(build_test_sdk(tmp_path / "sdk", generation=2), monkeypatch)
    model = _two_branch(tmp_path / "two.onnx")
    target = SnpeTarget(device=SERIAL, progress=False)
    out = target.quantize(model, [_images(2, seed=5)], tmp_path / "work 2" / "exp 2" / "model")
    assert out.is_file() and out.name == "model.quant.dlc"


@pytest.mark.parametrize("generation", [2, 1], ids=["snpe2", "snpe1"])
def test_bench_script_of_each_layout(generation: int, tmp_path: Path) -> None:
    """Defect 2: benchmarks/SNPE/snpe_bench.py (2.x) or benchmarks/snpe_bench.py (1.x), named in the layout."""
    sdk = build_test_sdk(tmp_path / "sdk", generation=generation)
    expected = "benchmarks/SNPE/snpe_bench.py" if generation == 2 else "benchmarks/snpe_bench.py"
    found = find_sdk(sdk.root)
    assert found.bench == sdk.root / expected and expected in found.layout


def test_benchmark_on_snpe2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defects 3, 6 and 9 (2.x; test_snpe_target benchmarks 1.x too): -t for the 2.x script, the input from
    the 2.x input section (2.x has no data layer), the Total Inference Time label in the third cell."""
    _use(build_test_sdk(tmp_path / "sdk", generation=2), monkeypatch)
    target = SnpeTarget(device=SERIAL, progress=False)
    dlc = target.convert(_two_branch(tmp_path / "two.onnx"), tmp_path / "conv")
    result = target.benchmark(dlc, iterations=3)
    assert result.mean_ms > 0 and np.isnan(result.median_ms)
    assert "median and stdev not measured" in target.source("benchmark", dlc)


def test_sdk_without_bench_script_fails_at_discovery(tmp_path: Path) -> None:
    sdk = build_test_sdk(tmp_path / "sdk", generation=2)
    (sdk.root / "benchmarks" / "SNPE" / "snpe_bench.py").unlink()
    with pytest.raises(TargetError, match=r"no snpe_bench.py: expected .*benchmarks/SNPE/snpe_bench.py"):
        find_sdk(sdk.root)


def test_fake_adb_copies_a_folder_into_an_existing_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AOSP adb file_sync_client.cpp do_sync_pull: an existing destination gets the folder as a child;
    ``src/.`` lands its contents in the destination; AdbDevice.pull gives the contents either way."""
    sdk = _use(build_test_sdk(tmp_path / "sdk"), monkeypatch)
    out = sdk.device_root(SERIAL) / "data/local/tmp/run/output/Result_0"
    out.mkdir(parents=True)
    (out / "y.raw").write_bytes(b"1234")
    local = tmp_path / "local"
    local.mkdir()
    adb = [str(sdk.adb), "-s", SERIAL, "pull"]
    subprocess.run([*adb, "/data/local/tmp/run/output", str(local)], check=True, capture_output=True)
    assert (local / "output" / "Result_0" / "y.raw").is_file()
    dev = AdbDevice(SERIAL, adb=sdk.adb)
    for dst in (tmp_path / "fresh", local):  # not there yet / already there
        dev.pull("/data/local/tmp/run/output", dst)
        assert (dst / "Result_0" / "y.raw").read_bytes() == b"1234"
