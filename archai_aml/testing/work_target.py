"""A target whose latency is a known function of the model's work: for the latency-predictor tests.

:class:`WorkLatencyTarget` is a real :class:`~archai_aml.targets.base.Target` (a
:class:`~archai_aml.testing.fixed_cost.FixedCostTarget` that costs no time): the runner converts, counts and
benchmarks with it as with any other target, but the latency it reports is
``scale * (overhead_ms + ms_per_mmac * MACs / 1e6)``, the MACs counted by
:func:`archai_aml.onnx.info.onnx_model_info`. A test can then say what a good prediction is, and change
``scale`` mid-search to stand for a device whose timings drift (a firmware update, thermal throttling).
"""

from __future__ import annotations

from pathlib import Path

from archai_aml.onnx.info import onnx_model_info
from archai_aml.targets.base import BenchmarkResult
from archai_aml.testing.fixed_cost import FixedCostTarget

__all__ = ["WorkLatencyTarget"]


class WorkLatencyTarget(FixedCostTarget):
    """Latency from the model's MACs (module docstring)."""

    name = "work"

    def __init__(self, *, overhead_ms: float = 0.05, ms_per_mmac: float = 0.5, scale: float = 1.0) -> None:
        super().__init__(0.0)
        self.overhead_ms = overhead_ms
        self.ms_per_mmac = ms_per_mmac
        self.scale = scale

    def latency_ms(self, model_path: Path) -> float:
        macs = onnx_model_info(model_path).macs
        return self.scale * (self.overhead_ms + self.ms_per_mmac * macs / 1e6)

    def benchmark(self, model_path: Path, *, iterations: int = 50, warmup: int = 5) -> BenchmarkResult:
        ms = self.latency_ms(Path(model_path))
        return BenchmarkResult(mean_ms=ms, median_ms=ms, stdev_ms=0.0, samples_ms=[ms])
