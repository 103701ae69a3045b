"""A target whose every operation takes a fixed, configurable time: for scheduling tests and benchmarks.

It is a real :class:`~archai_aml.targets.base.Target`: it parses the ONNX model (a corrupt model fails
as it would on real hardware), writes real model files, measures the time it sleeps as the latency, runs
batches through onnxruntime, and appends JSON lines to a journal file when each call starts and ends (``end`` null on the start line), so a test can count
how many times each row's work ran and on which process.

Spec strings (``archai-aml runner --target fixed:cost=0.5,quantize=2,journal=/tmp/j.jsonl``): ``cost``
is the default seconds per work item; ``convert``, ``quantize``, ``info``, ``benchmark``, ``batch``
override single operations (a convert work item is convert + quantize + info).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from archai_aml.errors import ConfigError, TargetError
from archai_aml.targets.base import BenchmarkResult, ModelInfo, Target

__all__ = ["FixedCostTarget", "tiny_model_bytes"]

_OPS = ("convert", "quantize", "info", "benchmark", "batch")


def tiny_model_bytes(classes: int = 7, size: int = 16, seed: int = 0) -> bytes:
    """A real ONNX model to feed this target: a 1x1 convolution from 3 channels to ``classes`` logits on
    1x3xSIZExSIZE inputs (built with onnx.helper, no torch import)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((classes, 3, 1, 1)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["input", "w"], ["output"])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, classes, size, size])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


class FixedCostTarget(Target):
    """Sleeps a fixed time per operation and journals every call (see the module docstring)."""

    name = "fixed"
    needs_device = False

    def __init__(
        self,
        cost: float = 0.5,
        *,
        convert: float | None = None,
        quantize: float = 0.0,
        info: float = 0.0,
        benchmark: float | None = None,
        batch: float | None = None,
        journal: str | Path | None = None,
    ) -> None:
        self.costs = {
            "convert": cost if convert is None else convert,
            "quantize": quantize,
            "info": info,
            "benchmark": cost if benchmark is None else benchmark,
            "batch": cost if batch is None else batch,
        }
        self.journal = Path(journal) if journal else None
        self._ort: Target | None = None  # runs the batches (its session is kept between calls)
        import onnx  # noqa: F401 - imported once here (runner start-up), not inside the first timed item

    @classmethod
    def from_spec(cls, spec: str) -> FixedCostTarget:
        """Build from ``fixed`` or ``fixed:cost=0.5,quantize=2,journal=PATH``."""
        _, _, rest = spec.partition(":")
        kwargs: dict[str, float | str] = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in ("cost", "journal", *_OPS):
                raise ConfigError(
                    f"target spec {spec!r}: unknown part {part!r}; use cost=, journal= or one of {_OPS}"
                )
            if key == "journal":
                kwargs[key] = value
            else:
                try:
                    kwargs[key] = float(value)
                except ValueError:
                    raise ConfigError(f"target spec {spec!r}: {key} must be a number of seconds") from None
        return cls(**kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------------------------------ helpers
    def _record(self, op: str, model_path: Path, start: float, end: float | None) -> None:
        if self.journal is None:
            return
        # the row's folder is the parent of the model (or of its converted/, quantized/ folder)
        folder = model_path.parent
        row = folder.parent.name if folder.name in ("converted", "quantized") else folder.name
        line = json.dumps({"op": op, "row": row, "pid": os.getpid(), "start": start, "end": end})
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())  # one small O_APPEND write: atomic between processes
        finally:
            os.close(fd)

    def _work(self, op: str, model_path: Path) -> float:
        start = time.time()
        self._record(op, model_path, start, None)  # a start line: a call killed mid-way still shows
        time.sleep(self.costs[op])
        end = time.time()
        self._record(op, model_path, start, end)
        return end - start

    @staticmethod
    def _check_onnx(path: Path) -> None:
        import onnx

        try:
            onnx.checker.check_model(onnx.load(str(path)))
        except Exception as exc:  # onnx raises several unrelated types for a broken file
            raise TargetError(f"{path.name} is not a valid ONNX model: {exc}") from exc

    # ------------------------------------------------------------------------------------------- Target
    def convert(self, onnx_path: Path, output_dir: Path) -> Path:
        self._check_onnx(onnx_path)
        output_dir.mkdir(parents=True, exist_ok=True)
        self._work("convert", onnx_path)
        out = output_dir / "model.fixed.onnx"
        shutil.copyfile(onnx_path, out)
        return out

    def quantize(self, model_path: Path, calibration: Iterable[np.ndarray], output_dir: Path) -> Path:
        output_dir.mkdir(parents=True, exist_ok=True)
        self._work("quantize", model_path)
        out = output_dir / "model.fixed.quant.onnx"
        shutil.copyfile(model_path, out)
        return out

    def info(self, model_path: Path, output_dir: Path) -> ModelInfo:
        import onnx
        from onnx import numpy_helper

        self._work("info", model_path)
        model = onnx.load(str(model_path))
        params = int(sum(numpy_helper.to_array(t).size for t in model.graph.initializer))
        output_dir.mkdir(parents=True, exist_ok=True)
        csv = output_dir / "model.info.csv"
        rows = ["layer,op_type"] + [f"{n.name},{n.op_type}" for n in model.graph.node]
        csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
        # Not a MAC count: this target only schedules; it reports the parameter count for both.
        return ModelInfo(macs=params, params=params, layers_csv=csv)

    def benchmark(self, model_path: Path, *, iterations: int = 50, warmup: int = 5) -> BenchmarkResult:
        seconds = self._work("benchmark", model_path)
        per_inference = seconds * 1000.0 / max(iterations, 1)
        return BenchmarkResult(
            mean_ms=per_inference, median_ms=per_inference, stdev_ms=0.0, samples_ms=[per_inference]
        )

    def run_batch(self, model_path: Path, inputs: np.ndarray, *, batch_size: int = 1) -> np.ndarray:
        from archai_aml.targets import get_target

        self._work("batch", model_path)
        if self._ort is None:
            self._ort = get_target("cpu", progress=False)
        return self._ort.run_batch(model_path, inputs, batch_size=batch_size)

    def close(self) -> None:
        if self._ort is not None:
            self._ort.close()
