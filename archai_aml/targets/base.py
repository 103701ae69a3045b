"""The target-backend protocol: what a runner needs from the hardware it measures on.

A target converts an ONNX model to its own format, quantizes it with calibration data, reports MACs and
parameters, benchmarks latency and runs batches for accuracy scoring. The CPU target on onnxruntime is
the embedded default; QNN (onnxruntime-qnn HTP, :mod:`archai_aml.qnn`) and SNPE (DLC over adb) sit beside it.
"""

from __future__ import annotations

import abc
import csv
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ModelInfo:
    """Size of a model: multiply-accumulates and parameters, and a per-layer CSV when the target writes one."""

    macs: int
    params: int
    layers_csv: Path | None = None


@dataclass(frozen=True)
class BenchmarkResult:
    """Latency of one benchmark run, in milliseconds per inference.

    ``latency_simulated`` is True when the figures come from a simulator or emulator of the target (the
    QNN HTP emulator of an x86-64 host) rather than the hardware itself: they are stored, but are not the
    target's latency (see :class:`~archai_aml.evaluators.RemoteAzureBenchmarkEvaluator`).
    """

    mean_ms: float
    median_ms: float
    stdev_ms: float
    samples_ms: list[float] = field(default_factory=list)
    csv: Path | None = None
    latency_simulated: bool = False

    def write_samples_csv(self, path: Path) -> BenchmarkResult:
        """Write one row per run (``run``, ``latency_ms``) to ``path``; returns this result with ``csv`` set
        to it (the runner uploads a result's CSV beside the model)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["run", "latency_ms"])
            writer.writerows([i, f"{s:.6f}"] for i, s in enumerate(self.samples_ms))
        return replace(self, csv=out)


class Target(abc.ABC):
    """One kind of hardware (and the software stack that drives it)."""

    #: Short name used on the command line and in status rows (``cpu``, ``qnn``, ``snpe``).
    name: str = "target"
    #: Whether benchmarking and on-target batch runs need an attached device (a runner without one skips them).
    needs_device: bool = False

    @abc.abstractmethod
    def convert(self, onnx_path: Path, output_dir: Path) -> Path:
        """Convert a float ONNX model to the target's format; returns the converted model's path."""

    @abc.abstractmethod
    def quantize(self, model_path: Path, calibration: Iterable[np.ndarray], output_dir: Path) -> Path:
        """Quantize a model (the float ONNX or the converted one) calibrated on input batches (NCHW float32)."""

    @abc.abstractmethod
    def info(self, model_path: Path, output_dir: Path) -> ModelInfo:
        """MACs and parameters of a model, with a per-layer CSV written under ``output_dir`` where possible."""

    @abc.abstractmethod
    def benchmark(self, model_path: Path, *, iterations: int = 50, warmup: int = 5) -> BenchmarkResult:
        """Warm up, then time ``iterations`` single-input inferences."""

    @abc.abstractmethod
    def run_batch(self, model_path: Path, inputs: np.ndarray, *, batch_size: int = 1) -> np.ndarray:
        """Run the model over ``inputs`` (N x C x H x W) and return its outputs stacked along N."""

    def companion_files(self, model_path: Path) -> list[str]:
        """Files a converted or quantized model loads from beside it (plain names in its folder), which
        travel with it to blob storage and back (an EP-context model's context binary); none by default."""
        return []

    def source(self, step: str, model_path: Path) -> str:
        """Where the figures of ``step`` (``info``, ``benchmark`` or ``f1``) on ``model_path`` came from, in a
        few words for the row's ``sources`` column: the tool, the device and, where the target knows them,
        versions and job ids. Called once after each step."""
        return f"{self.name} target ({type(self).__name__})"

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions and devices."""
