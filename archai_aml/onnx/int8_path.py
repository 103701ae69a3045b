"""Which int8 kernel onnxruntime's CPU provider takes on this host, and the quantization settings that make
the ``cpu`` target's quantized figures the same on every host.

onnxruntime's CPU kernels (MLAS) pick their int8 GEMM by CPUID at start-up; there is no session option to
choose one. On x86-64 without VNNI the U8S8 kernel multiplies with ``vpmaddubsw``, which adds two u8 x s8
products into a *saturated* int16 before widening (microsoft/onnxruntime
``onnxruntime/core/mlas/lib/amd64/SymQgemmU8KernelAvx512.asm``: ``MultiplyAccumulateCellU8S8Avx512Core`` =
``vpmaddubsw`` + ``vpmaddwd``, against ``vpdpbusds`` with VNNI). onnxruntime's quantization guide
(onnxruntime.ai/docs/performance/model-optimizations/quantization.html, "When and why do I need to try
U8U8?" and "When to use reduce-range and per-channel quantization?") says: "On x86-64 machines with AVX2
and AVX512 extensions, ONNX Runtime uses the VPMADDUBSW instruction for U8S8 for performance. This
instruction might suffer from saturation issues ... you can either try reduce_range or the U8U8 format
which doesn't have saturation issues. There is no such issue on other CPU architectures (x64 with VNNI
and ARM)" and "On AVX2 and AVX512 machines, you will generally need to enable reduce-range as well if
per-channel is enabled."

Detection (:func:`host_int8_path`) reads the kernel's CPU flags: ``/proc/cpuinfo`` ``flags`` on x86-64
(``avx512_vnni`` or ``avx_vnni``: the VNNI kernels; ``avx2`` without them: the saturating kernel),
``Features`` on ARM (``asimddp``: the dot-product kernels; ARM has no saturating path either way). Where
there is no ``/proc/cpuinfo`` (macOS, Windows) the path is ``unknown`` and x86 is taken as saturation-prone.

The choice (:data:`INT8_WEIGHT_REDUCE_RANGE`): signed 8-bit weights are always quantized with
``reduce_range`` (7 bits, [-64, 64]), on every host, not only on saturation-prone ones. With activations
in [0, 255] (an int8 activation is shifted to uint8 on x86) a pair sum is at most 2 * 255 * 64 = 32640 <
32767, so the non-VNNI kernel can never saturate, and its int32 results are then exactly those of the VNNI
and ARM kernels: the same model gives the same quantized model and the same quantized outputs on every
runner. Choosing it only on non-VNNI hosts would give different quantized models (and F1s) on different
runners again. The price is one bit of weight precision (:mod:`archai_aml.onnx.saturation` shows the error
on the test model stays well inside its bound).
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path

__all__ = ["INT8_WEIGHT_REDUCE_RANGE", "Int8Path", "host_int8_path", "quantization_note"]

#: quantize signed 8-bit weights to 7 bits on every host (see the module docstring for why)
INT8_WEIGHT_REDUCE_RANGE = True


@dataclass(frozen=True)
class Int8Path:
    """The int8 GEMM path: ``name`` (``avx512_vnni``, ``avx_vnni``, ``avx2``, ``arm_dotprod``, ``arm``,
    ``unknown``), the machine and whether U8S8 products can saturate in int16 there."""

    name: str
    machine: str
    saturation_prone: bool

    def describe(self) -> str:
        what = "U8S8 pairs may saturate in int16" if self.saturation_prone else "no int16 saturation"
        return f"{self.machine} int8 path {self.name} ({what})"


def _flags(cpuinfo: str) -> set[str]:
    out: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            out.update(value.split())
    return out


def host_int8_path(cpuinfo: str | None = None, machine: str | None = None) -> Int8Path:
    """The host's int8 path from ``cpuinfo`` (default: ``/proc/cpuinfo``) and ``machine`` (default:
    ``platform.machine()``)."""
    if cpuinfo is None and machine is None:
        return _cached_host()
    machine = (machine or platform.machine()).lower()
    x86 = machine in ("x86_64", "amd64", "i386", "i686", "x86")
    if cpuinfo is None:
        proc = Path("/proc/cpuinfo")
        cpuinfo = proc.read_text(encoding="utf-8", errors="replace") if proc.is_file() else ""
    flags = _flags(cpuinfo)
    if x86:
        if not flags:
            return Int8Path("unknown", machine, True)
        for name in ("avx512_vnni", "avx512vnni", "avx_vnni"):
            if name in flags:
                return Int8Path(name.replace("avx512vnni", "avx512_vnni"), machine, False)
        return Int8Path("avx2" if "avx2" in flags else "sse", machine, True)
    if machine in ("aarch64", "arm64") or machine.startswith("arm"):
        if "asimddp" in flags or "dotprod" in flags:
            return Int8Path("arm_dotprod", machine, False)
        return Int8Path("arm" if flags else "unknown", machine, False)
    return Int8Path("unknown", machine, False)


@functools.lru_cache(maxsize=1)
def _cached_host() -> Int8Path:
    return host_int8_path(cpuinfo=None, machine=platform.machine())


def quantization_note(
    *, per_channel: bool, weight_type: str, activation_type: str, reduce_range: bool
) -> str:
    """A few words for a row's ``sources``: the quantization settings and the host's int8 path."""
    kind = f"{'S' if activation_type == 'qint8' else 'U'}8{'S' if weight_type == 'qint8' else 'U'}8"
    weights = "per-channel" if per_channel else "per-tensor"
    rr = ", reduce_range (7-bit weights: no int16 saturation on any kernel)" if reduce_range else ""
    return f"quantized {kind} QDQ {weights}{rr}; host {host_int8_path().describe()}"
