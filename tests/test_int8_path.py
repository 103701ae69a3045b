"""The cpu target's quantized outputs do not depend on the host's int8 kernel: the saturating non-VNNI x86
kernel is computed in numpy from the quantized model's integers (archai_aml.onnx.saturation), so these
tests exercise that path on every host, VNNI, AVX2-only or ARM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from archai_aml.onnx.int8_path import host_int8_path
from archai_aml.onnx.quantize import quantize_qdq
from archai_aml.onnx.saturation import emulate_u8s8_saturation
from archai_aml.ort.target import OrtCpuTarget
from archai_aml.testing.aihub import FakeHub
from archai_aml.testing.fixed_cost import tiny_model_bytes

# /proc/cpuinfo lines with the Linux kernel's flag names (arch/x86/include/asm/cpufeatures.h: "avx2",
# "avx512_vnni", "avx_vnni"; arch/arm64/kernel/cpuinfo.c hwcap_str: "asimddp")
EPYC_ROME = "flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni\n"
CASCADE_LAKE = "flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512vl avx512_vnni\n"
ALDER_LAKE = "flags\t\t: fpu sse2 avx avx2 avx_vnni\n"
GRAVITON2 = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"
CORTEX_A53 = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\n"


def test_int8_path_detection_from_cpuinfo() -> None:
    assert host_int8_path(EPYC_ROME, "x86_64").name == "avx2"
    assert host_int8_path(EPYC_ROME, "x86_64").saturation_prone
    assert host_int8_path(CASCADE_LAKE + EPYC_ROME, "x86_64").name == "avx512_vnni"
    assert not host_int8_path(ALDER_LAKE, "x86_64").saturation_prone
    assert host_int8_path(GRAVITON2, "aarch64").name == "arm_dotprod"
    assert host_int8_path(CORTEX_A53, "aarch64").name == "arm"
    assert host_int8_path("", "AMD64").name == "unknown" and host_int8_path("", "AMD64").saturation_prone
    assert host_int8_path().machine  # this host: whatever it is, it is described


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_model_bytes(classes=7, size=8))
    return path


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 8, 8)).astype(np.float32)


def _run(path: Path, x: np.ndarray, optimize: bool = True) -> np.ndarray:
    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])


def _under_saturating_kernel(path: Path, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Outputs of the one-Conv QDQ model as the non-VNNI kernel computes them, and the saturated pairs."""
    fake_quant = _run(path, x, optimize=False)  # QDQ as float arithmetic: the exact integer result
    runs = [emulate_u8s8_saturation(path, {"input": x[i : i + 1]}) for i in range(len(x))]
    assert all(len(r) == 1 for r in runs)  # the model's one Conv
    delta = np.concatenate([r[0].delta for r in runs])
    return fake_quant + delta, sum(r[0].saturated for r in runs)


def test_quantized_error_stays_in_bound_on_the_saturating_kernel(model: Path, tmp_path: Path) -> None:
    x = _images(5, seed=3)
    ref = _run(model, x)
    bound = 0.2 * np.abs(ref).max()  # test_aihub_target's bound (1.6 for this model)
    calibration = [_images(1, seed=i) for i in range(4)]
    # the settings the library used to choose (S8S8 per-channel, 8-bit weights): the emulated AVX2 kernel
    # saturates and the error goes past the bound, as measured on an AMD EPYC without VNNI (3.02)
    old = quantize_qdq(model, calibration, tmp_path / "old.onnx", reduce_range=False)
    emulated, saturated = _under_saturating_kernel(old, x)
    assert saturated > 0 and np.abs(emulated - ref).max() > bound
    # what the cpu target quantizes now: no pair can saturate, so every kernel gives the same integers
    target = OrtCpuTarget(progress=False)
    quant = target.quantize(model, calibration, tmp_path / "q")
    emulated, saturated = _under_saturating_kernel(quant, x)
    assert saturated == 0
    assert np.abs(emulated - ref).max() < bound
    # and this host's real kernel (whichever it is) agrees with the emulation
    np.testing.assert_allclose(_run(quant, x), emulated, atol=1e-5)
    source = target.source("f1", quant)
    assert "reduce_range" in source and f"int8 path {host_int8_path().name}" in source


def test_aihub_stand_in_quantizes_without_saturation(model: Path, tmp_path: Path) -> None:
    """The fake Hub's "device" is this host's onnxruntime: its quantized model must not saturate either."""
    from archai_aml.aihub import AiHubTarget

    target = AiHubTarget(device="Snapdragon X Elite CRD", client=FakeHub())
    bundle = target.quantize(model, [_images(1, seed=i) for i in range(4)], tmp_path / "q")
    qdq = next(p for p in (tmp_path / "q").iterdir() if p.name.startswith("model.qdq"))
    assert qdq.suffix == ".onnx", qdq
    x = _images(5, seed=3)
    emulated, saturated = _under_saturating_kernel(qdq, x)
    assert saturated == 0 and np.abs(emulated - _run(model, x)).max() < 0.2 * np.abs(_run(model, x)).max()
    assert bundle.is_file()
