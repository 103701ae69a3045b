"""The onnxruntime CPU target on real exported torch models."""

from __future__ import annotations

import csv

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from archai_aml.errors import TargetError
from archai_aml.ort import OrtCpuTarget
from archai_aml.scoring import outputs_to_predictions
from archai_aml.targets import available_targets, get_target, register_target
from tests.ort_models import TinySegNet, export, seg_net


def _smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """Low-frequency images (like real photos, unlike white noise) so that activations are well calibrated."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    imgs = np.empty((n, 3, size, size), dtype=np.float32)
    for i in range(n):
        for c in range(3):
            a, b, p = rng.uniform(0.5, 3.0, size=3)
            imgs[i, c] = np.sin(2 * np.pi * (a * xx + b * yy) + p) + 0.1 * rng.standard_normal((size, size))
    return imgs


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("seg")
    path, net = seg_net(d / "seg.onnx", size=32)
    return path, net


@pytest.fixture()
def target() -> OrtCpuTarget:
    return OrtCpuTarget(intra_op_num_threads=1, progress=False)


def _run(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_convert_gives_same_outputs(seg_model, target, tmp_path) -> None:
    path, net = seg_model
    out = target.convert(path, tmp_path / "conv")
    assert out == tmp_path / "conv" / "model.opt.onnx" and out.stat().st_size > 0
    x = _smooth_images(1, 32, seed=1)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run(out, x), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_run(path, x), expected, rtol=1e-4, atol=1e-5)
    # the extended level fuses Conv+Relu into onnxruntime's FusedConv
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "FusedConv" in ops
    # MACs of the fused graph (shapes of FusedConv come from an onnxruntime run) equal the export's
    assert target.info(out, tmp_path / "i1") == target.info(path, tmp_path / "i1")


def test_info_needs_input_shape_for_symbolic_dims(seg_model, tmp_path) -> None:
    model = onnx.load(str(seg_model[0]))
    for vi in (model.graph.input[0], model.graph.output[0]):
        vi.type.tensor_type.shape.dim[2].dim_param = "h"
        vi.type.tensor_type.shape.dim[3].dim_param = "w"
    sym = tmp_path / "sym.onnx"
    onnx.save(model, str(sym))
    with pytest.raises(TargetError, match="input_shape"):
        OrtCpuTarget(1, progress=False).info(sym, tmp_path / "a")
    fixed = OrtCpuTarget(1, input_shape=[1, 3, 32, 32], progress=False).info(sym, tmp_path / "b")
    assert fixed.macs == OrtCpuTarget(1, progress=False).info(seg_model[0], tmp_path / "c").macs


def test_quantize_static_qdq_close_and_smaller(tmp_path, target) -> None:
    torch.manual_seed(0)
    net = TinySegNet(num_classes=3, width=32)
    path = export(net, tmp_path / "wide.onnx", (1, 3, 32, 32))
    calibration = [_smooth_images(4, 32, seed=s) for s in range(3)]  # batches of 4 for a batch-1 model
    q = target.quantize(path, iter(calibration), tmp_path / "q")
    assert q == tmp_path / "q" / "model.quant.onnx"
    ops = [n.op_type for n in onnx.load(str(q)).graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > 0
    assert q.stat().st_size < 0.5 * path.stat().st_size
    x = _smooth_images(4, 32, seed=99)
    ref = target.run_batch(path, x)
    got = target.run_batch(q, x)
    agreement = float((outputs_to_predictions(ref) == outputs_to_predictions(got)).mean())
    assert agreement > 0.9, agreement
    # info counts the int8 weights of the QDQ model like the float ones
    assert target.info(q, tmp_path / "qi").params == target.info(path, tmp_path / "fi").params


def test_quantize_without_calibration_data_fails(seg_model, target, tmp_path) -> None:
    with pytest.raises(TargetError, match="calibration"):
        target.quantize(seg_model[0], iter([]), tmp_path / "q")


def test_quantizing_a_converted_model_says_to_use_the_export(seg_model, target, tmp_path) -> None:
    converted = target.convert(seg_model[0], tmp_path / "c")
    with pytest.raises(TargetError, match="float ONNX export"):
        target.quantize(converted, iter([_smooth_images(2, 32, seed=0)]), tmp_path / "q")


def test_info_writes_layer_csv(seg_model, target, tmp_path) -> None:
    info = target.info(seg_model[0], tmp_path / "info")
    assert info.params == sum(p.numel() for p in seg_model[1].parameters())
    assert info.layers_csv is not None
    rows = list(csv.DictReader(info.layers_csv.open()))
    assert sum(int(r["macs"]) for r in rows) == info.macs > 0


def test_benchmark_stats(seg_model, tmp_path) -> None:
    target = OrtCpuTarget(intra_op_num_threads=1, max_rounds=1, progress=False)
    result = target.benchmark(seg_model[0], iterations=20, warmup=3).write_samples_csv(tmp_path / "runs.csv")
    assert len(result.samples_ms) == 20
    assert all(s > 0 for s in result.samples_ms)
    assert min(result.samples_ms) <= result.median_ms <= max(result.samples_ms)
    assert min(result.samples_ms) <= result.mean_ms <= max(result.samples_ms)
    assert result.stdev_ms >= 0
    assert result.csv is not None
    rows = list(csv.DictReader(result.csv.open()))
    assert len(rows) == 20 and float(rows[0]["latency_ms"]) == pytest.approx(result.samples_ms[0], abs=1e-5)


def test_benchmark_repeats_until_two_rounds_agree(seg_model) -> None:
    lenient = OrtCpuTarget(1, max_rounds=3, stability_tolerance=10.0, progress=False)
    assert len(lenient.benchmark(seg_model[0], iterations=10, warmup=1).samples_ms) == 20  # rounds 1+2 agree
    strict = OrtCpuTarget(1, max_rounds=3, stability_tolerance=1e-12, progress=False)
    result = strict.benchmark(seg_model[0], iterations=10, warmup=1)
    assert len(result.samples_ms) == 10  # never settles: the lowest-median round is reported
    assert result.median_ms > 0


def test_run_batch_fixed_and_dynamic_batch(tmp_path, target) -> None:
    fixed, net = seg_net(tmp_path / "fixed.onnx", size=16)
    dynamic, _ = seg_net(tmp_path / "dyn.onnx", size=16, dynamic_batch=True)
    x = _smooth_images(5, 16, seed=3)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(target.run_batch(fixed, x, batch_size=4), expected, rtol=1e-4, atol=1e-5)
    out = target.run_batch(dynamic, x, batch_size=2)  # 2 + 2 + 1
    assert out.shape == (5, 3, 16, 16)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(TargetError, match="rank"):
        target.run_batch(fixed, x[0])
    # the session is cached between calls, but a model rewritten in place is reloaded
    _, net2 = seg_net(fixed, size=16, seed=1)
    with torch.no_grad():
        expected2 = net2(torch.from_numpy(x)).numpy()
    assert not np.allclose(expected2, expected)
    np.testing.assert_allclose(target.run_batch(fixed, x), expected2, rtol=1e-4, atol=1e-5)
    target.close()


def test_corrupt_models_raise_target_error(seg_model, target, tmp_path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "truncated.onnx"
    data = seg_model[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    for bad in (garbage, truncated):
        with pytest.raises(TargetError, match="cannot load"):
            target.benchmark(bad, iterations=1)
        with pytest.raises(TargetError, match="cannot load"):
            target.convert(bad, tmp_path / "c")
        with pytest.raises(TargetError, match="cannot load"):
            target.run_batch(bad, np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(TargetError, match="does not exist"):
        target.benchmark(tmp_path / "missing.onnx")


def test_registry() -> None:
    t = get_target("cpu", intra_op_num_threads=1)
    assert isinstance(t, OrtCpuTarget) and t.intra_op_num_threads == 1 and t.name == "cpu"
    assert "cpu" in available_targets()
    with pytest.raises(TargetError, match="unknown target"):
        get_target("tpu")
    register_target("cpu-basic", lambda: OrtCpuTarget(optimization_level="basic"))
    assert get_target("cpu-basic").optimization_level == "basic"  # type: ignore[attr-defined]
