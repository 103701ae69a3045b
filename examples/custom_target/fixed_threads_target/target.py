"""onnxruntime on the CPU with a fixed thread count: the Target protocol in a few lines."""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from archai_aml.onnx.info import onnx_model_info, write_layers_csv
from archai_aml.onnx.quantize import quantize_qdq
from archai_aml.targets import BenchmarkResult, ModelInfo, Target


class FixedThreadsTarget(Target):
    name = "ort-fixed-threads"

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads

    def _session(self, path: Path) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def convert(self, onnx_path: Path, output_dir: Path) -> Path:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(onnx_path, Path(output_dir) / "model.onnx"))

    def quantize(self, model_path: Path, calibration: Iterable[np.ndarray], output_dir: Path) -> Path:
        return quantize_qdq(Path(model_path), calibration, Path(output_dir) / "model.quant.onnx")

    def info(self, model_path: Path, output_dir: Path) -> ModelInfo:
        counted = onnx_model_info(model_path)
        csv = write_layers_csv(counted.layers, Path(output_dir) / "layers.csv")
        return ModelInfo(macs=counted.macs, params=counted.params, layers_csv=csv)

    def benchmark(self, model_path: Path, *, iterations: int = 50, warmup: int = 5) -> BenchmarkResult:
        session = self._session(model_path)
        meta = session.get_inputs()[0]
        x = {meta.name: np.zeros([d if isinstance(d, int) else 1 for d in meta.shape], np.float32)}
        for _ in range(warmup):
            session.run(None, x)
        ms = []
        for _ in range(iterations):
            start = time.perf_counter()
            session.run(None, x)
            ms.append((time.perf_counter() - start) * 1000.0)
        return BenchmarkResult(statistics.mean(ms), statistics.median(ms), statistics.pstdev(ms), ms)

    def run_batch(self, model_path: Path, inputs: np.ndarray, *, batch_size: int = 1) -> np.ndarray:
        session = self._session(model_path)
        meta = session.get_inputs()[0]
        step = meta.shape[0] if isinstance(meta.shape[0], int) else batch_size
        x = np.asarray(inputs, np.float32)
        return np.concatenate(
            [session.run(None, {meta.name: x[i : i + step]})[0] for i in range(0, len(x), step)]
        )

    def source(self, step: str, model_path: Path) -> str:
        return f"onnxruntime {ort.__version__} CPU, {self.threads} threads (ort-fixed-threads)"
