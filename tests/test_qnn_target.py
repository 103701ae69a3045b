"""The qnn target for real on this machine: onnxruntime-qnn's HTP backend (the x86-64 emulator here)
quantizes, compiles, reloads and scores a segmentation-shaped model with CPU fallback disabled; an operator
the HTP does not take fails naming it; options come from the config and the command line."""

from __future__ import annotations

import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from archai_aml.config import TargetConfig, load_config
from archai_aml.data import open_dataset
from archai_aml.errors import ConfigError, TargetError
from archai_aml.qnn import QnnTarget, cpu_placed_nodes, htp_is_simulated
from archai_aml.qnn.target import copy_context_model
from archai_aml.scoring.segmentation import F1Accumulator
from archai_aml.targets import available_targets, get_target, target_kwargs
from tests.qnn_models import seg_model_bytes

SIZE = 16


def calibration(n: int = 8) -> list[np.ndarray]:
    data = open_dataset(None, split="train", length=n, image_size=SIZE)
    return [np.asarray(data[i][0], dtype=np.float32)[None] for i in range(n)]


def held_out_images(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    data = open_dataset(None, split="test", length=n, image_size=SIZE)
    pairs = [data[i] for i in range(n)]
    return np.stack([p[0] for p in pairs]).astype(np.float32), np.stack([p[1] for p in pairs])


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[QnnTarget, Path, Path]:
    """(target, float export, EP-context model) compiled once for the module."""
    folder = tmp_path_factory.mktemp("qnn")
    onnx_path = folder / "model.onnx"
    onnx_path.write_bytes(seg_model_bytes(SIZE))
    target = QnnTarget(progress=False)
    ctx = target.quantize(onnx_path, calibration(), folder / "quantized")
    yield target, onnx_path, ctx
    target.close()


def test_registered_with_options_from_config() -> None:
    assert "qnn" in available_targets()
    tc = TargetConfig(name="qnn", input_shape=[1, 3, SIZE, SIZE], qnn={"activation_type": "uint16"})
    kwargs = target_kwargs(tc)
    assert kwargs["activation_type"] == "uint16" and kwargs["input_shape"] == [1, 3, SIZE, SIZE]
    target = get_target("qnn", **kwargs)
    assert isinstance(target, QnnTarget) and target.activation_type == "uint16"
    over = target_kwargs(
        tc, "qnn", {"workers": "2", "embed_context": "true", "htp_performance_mode": "burst"}
    )
    assert over["workers"] == 2 and over["embed_context"] is True and over["htp_performance_mode"] == "burst"
    with pytest.raises(ConfigError, match="workers"):
        target_kwargs(tc, "qnn", {"workers": "0"})
    with pytest.raises(ConfigError, match="nonsense"):
        target_kwargs(tc, "qnn", {"nonsense": "1"})
    with pytest.raises(ConfigError, match="qnn target"):
        target_kwargs(tc, "cpu", {"workers": "2"})
    assert target_kwargs(tc, "cpu") == {}


def test_without_onnxruntime_qnn_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime_qnn", None)  # what an environment without it imports
    with pytest.raises(
        TargetError, match=r"target 'qnn': .*onnxruntime_qnn.*pip install 'archai-aml\[qnn\]'"
    ):
        get_target("qnn")


def test_bad_qnn_config_fails_at_load_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("target:\n  name: qnn\n  qnn:\n    activation_type: int4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"target\.qnn\.activation_type"):
        load_config(path)


def test_quantize_compiles_an_ep_context_model_with_everything_on_the_htp(
    compiled: tuple[QnnTarget, Path, Path],
) -> None:
    target, onnx_path, ctx = compiled
    assert ctx.name == "model_ctx.onnx"
    assert target.companion_files(ctx) == ["model_ctx_qnn.bin"]
    assert (ctx.parent / "model_ctx_qnn.bin").stat().st_size > 0
    model = onnx.load(str(ctx))
    assert [n.op_type for n in model.graph.node] == ["EPContext"]
    qdq = onnx.load(str(ctx.parent / "model.qdq.onnx"))
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in qdq.graph.node}
    assert cpu_placed_nodes(ctx.parent / "model.qdq.onnx") == []  # every node on the HTP
    assert cpu_placed_nodes(ctx) == []
    # the converted (float) model runs on the CPU provider, the quantized one on the HTP
    assert not target.runs_on_htp(ctx.parent / "model.qnn.onnx") and target.runs_on_htp(ctx)


def test_context_model_reloads_elsewhere_without_recompiling(
    compiled: tuple[QnnTarget, Path, Path], tmp_path: Path
) -> None:
    target, _, ctx = compiled
    x, _ = held_out_images(4)
    first = target.run_batch(ctx, x)
    moved = copy_context_model(ctx, tmp_path / "deployed")  # model + binary only, no QDQ model beside
    other = QnnTarget(progress=False)
    try:
        again = other.run_batch(moved, x)
        info = other.info(moved, tmp_path / "info")  # from the context model's metadata
    finally:
        other.close()
    assert np.array_equal(first, again)
    full = target.info(ctx, tmp_path / "info-full")  # from the QDQ model beside it, with a CSV
    assert (info.macs, info.params) == (full.macs, full.params) and full.macs > 0
    assert info.layers_csv is None and full.layers_csv is not None and full.layers_csv.is_file()
    (tmp_path / "deployed" / "model_ctx_qnn.bin").unlink()
    with pytest.raises(TargetError):
        QnnTarget(progress=False).run_batch(moved, x)


def test_f1_on_the_htp_is_close_to_the_float_model(compiled: tuple[QnnTarget, Path, Path]) -> None:
    target, onnx_path, ctx = compiled
    x, labels = held_out_images(12)
    float_out = target.run_batch(ctx.parent / "model.qnn.onnx", x)  # CPU provider
    htp_out = target.run_batch(ctx, x)
    assert htp_out.shape == float_out.shape == (12, 7, SIZE, SIZE)
    assert not np.array_equal(htp_out, float_out)  # uint8 arithmetic, not the float model
    spread = float(float_out.max() - float_out.min())
    assert float(np.abs(htp_out - float_out).max()) < 0.1 * spread
    agree = float((htp_out.argmax(1) == float_out.argmax(1)).mean())
    assert agree > 0.9, agree
    f1 = {}
    for key, out in (("float", float_out), ("htp", htp_out)):
        acc = F1Accumulator(7)
        acc.update(labels, out)
        f1[key] = float(acc.scores().mean_f1)
    assert abs(f1["float"] - f1["htp"]) < 0.05, f1


def test_benchmark_marks_emulated_latency(compiled: tuple[QnnTarget, Path, Path], tmp_path: Path) -> None:
    target, _, ctx = compiled
    result = target.benchmark(ctx, iterations=3, warmup=1).write_samples_csv(tmp_path / "runs.csv")
    assert len(result.samples_ms) == 3 and result.mean_ms > 0
    assert result.latency_simulated is htp_is_simulated()
    assert htp_is_simulated() is (platform.machine().lower() not in ("aarch64", "arm64"))
    assert htp_is_simulated("x86_64") and htp_is_simulated("AMD64")
    assert not htp_is_simulated("aarch64") and not htp_is_simulated("ARM64")


def test_parallel_workers_give_the_same_outputs(compiled: tuple[QnnTarget, Path, Path]) -> None:
    target, _, ctx = compiled
    x, _ = held_out_images(6)
    pooled = QnnTarget(workers=2, progress=False)
    try:
        out = pooled.run_batch(ctx, x)
    finally:
        pooled.close()
    assert np.array_equal(out, target.run_batch(ctx, x))


def test_uint16_activations_and_embedded_context(tmp_path: Path) -> None:
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(seg_model_bytes(SIZE))
    x, _ = held_out_images(4)
    outs = {}
    for act in ("uint8", "uint16"):
        target = QnnTarget(activation_type=act, embed_context=act == "uint16", progress=False)
        ctx = target.quantize(onnx_path, calibration(), tmp_path / act)
        outs[act] = target.run_batch(ctx, x)
        float_out = target.run_batch(tmp_path / act / "model.qnn.onnx", x)
        target.close()
    qdq16 = onnx.load(str(tmp_path / "uint16" / "model.qdq.onnx"))
    assert max(o.version for o in qdq16.opset_import if o.domain in ("", "ai.onnx")) >= 21
    zero_points = [i for i in qdq16.graph.initializer if i.name.endswith("zero_point")]
    assert any(z.data_type == onnx.TensorProto.UINT16 for z in zero_points)
    assert not (tmp_path / "uint16" / "model_ctx_qnn.bin").exists()  # embedded
    assert QnnTarget(progress=False).companion_files(tmp_path / "uint16" / "model_ctx.onnx") == []
    err8 = np.abs(outs["uint8"] - float_out).max()
    err16 = np.abs(outs["uint16"] - float_out).max()
    assert err16 < err8, (err16, err8)  # 16-bit activations are closer to the float model


def test_unsupported_operator_names_the_op_type_and_node(tmp_path: Path) -> None:
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(seg_model_bytes(SIZE, hardmax=True))
    target = QnnTarget(progress=False)
    with pytest.raises(TargetError) as info:
        target.quantize(onnx_path, calibration(2), tmp_path / "q")
    message = str(info.value)
    assert "Hardmax" in message and "hardmax_0" in message, message
    assert "CPU fallback is disabled" in message
    assert "classifier" not in message and "stem" not in message  # only the refused node is named
    # the float model fails the same way on the HTP, before any quantization
    converted = target.convert(onnx_path, tmp_path / "c")
    with pytest.raises(TargetError, match="hardmax_0"):
        target.benchmark(converted, iterations=1, warmup=0)
    assert [op for op, _ in cpu_placed_nodes(converted)] == ["Hardmax"]


def test_convert_fixes_symbolic_batch_and_refuses_symbolic_size(tmp_path: Path) -> None:
    model = onnx.load_from_string(seg_model_bytes(SIZE))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_param = "batch"
    src = tmp_path / "dyn.onnx"
    onnx.save(model, str(src))
    out = QnnTarget(progress=False).convert(src, tmp_path / "a")
    shape = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert shape == [1, 3, SIZE, SIZE]
    dims[2].dim_param = "h"
    onnx.save(model, str(src))
    with pytest.raises(TargetError, match="symbolic dimension 2"):
        QnnTarget(progress=False).convert(src, tmp_path / "b")
    out = QnnTarget(input_shape=[1, 3, SIZE, SIZE], progress=False).convert(src, tmp_path / "c")
    assert [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim][2] == SIZE


def test_no_calibration_data_is_an_error(tmp_path: Path) -> None:
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(seg_model_bytes(SIZE))
    with pytest.raises(TargetError, match="no calibration data"):
        QnnTarget(progress=False).quantize(onnx_path, [], tmp_path / "q")


@pytest.mark.slow
def test_olive_toolchain_compiles_the_same_model(
    compiled: tuple[QnnTarget, Path, Path], tmp_path: Path
) -> None:
    direct, onnx_path, direct_ctx = compiled
    target = QnnTarget(toolchain="olive", progress=False)
    try:
        ctx = target.quantize(onnx_path, calibration(), tmp_path / "olive")
        x, _ = held_out_images(4)
        out = target.run_batch(ctx, x)
        info = target.info(ctx, tmp_path / "info")
    finally:
        target.close()
    assert [n.op_type for n in onnx.load(str(ctx)).graph.node] == ["EPContext"]
    assert target.companion_files(ctx) and cpu_placed_nodes(ctx) == []
    reference = direct.run_batch(direct_ctx, x)
    assert float(np.abs(out - reference).max()) < 0.05 * float(reference.max() - reference.min())
    assert info.params == direct.info(direct_ctx, tmp_path / "i2").params
    shutil.rmtree(tmp_path / "olive", ignore_errors=True)


@pytest.mark.slow
def test_olive_toolchain_names_an_unsupported_operator_too(tmp_path: Path) -> None:
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(seg_model_bytes(SIZE, hardmax=True))
    with pytest.raises(TargetError) as info:
        QnnTarget(toolchain="olive", progress=False).quantize(onnx_path, calibration(2), tmp_path / "q")
    assert "Hardmax" in str(info.value) and "hardmax_0" in str(info.value), str(info.value)
