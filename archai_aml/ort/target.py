"""The CPU target on onnxruntime: the embedded default target of archai-aml.

* ``convert``: onnxruntime graph optimization saved as ``<output_dir>/model.opt.onnx``. The default level is
  ``extended`` (constant folding, redundant-node elimination, Conv+BN/Conv+activation fusions into
  onnxruntime's ``com.microsoft`` operators). ``all`` adds layout transformations (NCHWc) that are specific
  to the CPU that ran them; a file saved with them may not load or may be slower on another machine, so it
  is not the default (onnxruntime applies them again at session creation anyway).
* ``quantize``: ``quant_pre_process`` then static QDQ quantization (see :mod:`archai_aml.onnx.quantize`)
  into ``<output_dir>/model.quant.onnx``; signed weights with ``reduce_range`` on every host, so that
  onnxruntime's non-VNNI x86 kernel cannot saturate (:mod:`archai_aml.onnx.int8_path`); the row's
  ``sources`` name the settings and the host's int8 path. Quantize the float ONNX export, not the converted model.
* ``info``: MACs and parameters counted from the ONNX graph (:mod:`archai_aml.onnx.info`), with
  ``<output_dir>/layers.csv``.
* ``benchmark``: one session with pinned thread counts, warm-up runs, then timed runs
  (``time.perf_counter_ns``); mean, median and standard deviation in milliseconds.
* ``run_batch``: runs inputs in batches (one at a time for models exported with a fixed batch of 1).
"""

from __future__ import annotations

import logging
import platform
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from archai_aml.errors import TargetError
from archai_aml.onnx.info import load_onnx, onnx_model_info, write_layers_csv
from archai_aml.onnx.int8_path import host_int8_path, quantization_note
from archai_aml.onnx.quantize import default_reduce_range, quantize_qdq
from archai_aml.targets.base import BenchmarkResult, ModelInfo, Target

__all__ = ["OrtCpuTarget"]

log = logging.getLogger(__name__)

OptimizationLevel = Literal["basic", "extended", "all"]
_LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class OrtCpuTarget(Target):
    """onnxruntime's CPU execution provider.

    ``intra_op_num_threads`` pins the number of threads of one inference (``None``: onnxruntime's default,
    one per physical core); pin it for comparable latencies. ``allow_spinning=False`` stops idle pool
    threads from busy-waiting, which keeps latencies steadier on a loaded machine at a small cost.
    ``input_shape`` fixes symbolic input dimensions for benchmarking and MACs counting (batch defaults to 1).
    ``max_rounds``/``stability_tolerance``: :meth:`benchmark` repeats its timed runs (up to ``max_rounds``
    rounds of ``iterations``) until two consecutive rounds have medians within ``stability_tolerance``
    (relative) of each other, and reports those two rounds; if no two consecutive rounds agree it reports
    the round with the lowest median (other processes only add time, as ``timeit`` reasons). This rides
    out bursts of load from other processes. ``max_rounds=1`` times exactly one round.
    """

    name = "cpu"
    needs_device = False

    def __init__(
        self,
        intra_op_num_threads: int | None = None,
        *,
        allow_spinning: bool = False,
        optimization_level: OptimizationLevel = "extended",
        input_shape: Sequence[int] | None = None,
        per_channel: bool = True,
        activation_type: str = "qint8",
        weight_type: str = "qint8",
        calibrate_method: str = "minmax",
        reduce_range: bool | None = None,
        max_rounds: int = 3,
        stability_tolerance: float = 0.02,
        progress: bool = True,
        seed: int = 0,
    ) -> None:
        if intra_op_num_threads is not None and intra_op_num_threads < 1:
            raise TargetError(f"intra_op_num_threads must be at least 1, got {intra_op_num_threads}")
        if optimization_level not in _LEVELS:
            raise TargetError(
                f"optimization_level must be one of {sorted(_LEVELS)}, got {optimization_level!r}"
            )
        self.intra_op_num_threads = intra_op_num_threads
        self.allow_spinning = allow_spinning
        self.optimization_level: OptimizationLevel = optimization_level
        self.input_shape = list(input_shape) if input_shape is not None else None
        self.per_channel = per_channel
        self.activation_type = activation_type
        self.weight_type = weight_type
        self.calibrate_method = calibrate_method
        self.reduce_range = default_reduce_range(weight_type) if reduce_range is None else reduce_range
        if max_rounds < 1 or stability_tolerance <= 0:
            raise TargetError("max_rounds must be >= 1 and stability_tolerance > 0")
        self.max_rounds = max_rounds
        self.stability_tolerance = stability_tolerance
        self.progress = progress
        self.seed = seed
        # run_batch is called once per chunk of a test set: keep the last model's session
        self._cached: tuple[tuple[str, int, int], ort.InferenceSession] | None = None

    # -- sessions -------------------------------------------------------------------------------------

    def _options(self, level: OptimizationLevel | None = None) -> ort.SessionOptions:
        so = ort.SessionOptions()
        so.graph_optimization_level = _LEVELS[level or "all"]
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if self.intra_op_num_threads is not None:
            so.intra_op_num_threads = self.intra_op_num_threads
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.allow_spinning else "0")
        so.log_severity_level = 3
        return so

    def _session(self, model_path: Path, options: ort.SessionOptions | None = None) -> ort.InferenceSession:
        path = Path(model_path)
        if not path.is_file():
            raise TargetError(f"model {path} does not exist: check the path (or that the download finished)")
        try:
            return ort.InferenceSession(
                str(path), sess_options=options or self._options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises InvalidProtobuf, Fail, InvalidGraph, ...
            raise TargetError(
                f"onnxruntime cannot load {path} ({type(exc).__name__}: {exc}): re-export the model, "
                "or re-download it if the file may be truncated"
            ) from exc

    def _input_array(self, session: ort.InferenceSession) -> tuple[str, np.ndarray]:
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise TargetError(f"the CPU target runs models with one input; this one has {len(inputs)}")
        meta = inputs[0]
        shape: list[int] = []
        for i, d in enumerate(meta.shape):
            if isinstance(d, int) and d > 0:
                shape.append(d)
            elif self.input_shape is not None and i < len(self.input_shape):
                shape.append(int(self.input_shape[i]))
            elif i == 0:
                shape.append(1)
            else:
                raise TargetError(
                    f"input {meta.name!r} has a symbolic dimension {i} ({d}): set input_shape on the target"
                )
        rng = np.random.default_rng(self.seed)
        return meta.name, rng.standard_normal(shape).astype(np.float32)

    def _cached_session(self, path: Path) -> ort.InferenceSession:
        try:
            st = path.stat()
        except OSError:
            return self._session(path)  # raises the TargetError for a missing file
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if self._cached is None or self._cached[0] != key:
            self._cached = None
            self._cached = (key, self._session(path))
        return self._cached[1]

    def source(self, step: str, model_path: Path) -> str:
        if step == "info":
            return "archai-aml's count over the ONNX graph (archai_aml.onnx.info)"
        where = (
            f"onnxruntime {ort.__version__} CPUExecutionProvider on {platform.machine()} ({platform.node()})"
        )
        if ".quant" in Path(model_path).name:  # what quantize() wrote: its settings and the host's int8 path
            note = quantization_note(
                per_channel=self.per_channel, weight_type=self.weight_type,
                activation_type=self.activation_type, reduce_range=self.reduce_range,
            )  # fmt: skip
            return f"{where}; {note}"
        return f"{where}; host {host_int8_path().describe()}"

    def close(self) -> None:
        """Drop the cached ``run_batch`` session."""
        self._cached = None

    # -- Target ---------------------------------------------------------------------------------------

    def convert(self, onnx_path: Path, output_dir: Path) -> Path:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        out = output_dir / "model.opt.onnx"
        so = self._options(self.optimization_level)
        so.optimized_model_filepath = str(out)
        self._session(Path(onnx_path), so)
        if not out.is_file():
            raise TargetError(f"onnxruntime did not write the optimized model {out}")
        log.info("optimized %s (level %s) -> %s", onnx_path, self.optimization_level, out)
        return out

    def quantize(self, model_path: Path, calibration: Iterable[np.ndarray], output_dir: Path) -> Path:
        output_dir = Path(output_dir)
        return quantize_qdq(
            Path(model_path),
            calibration,
            output_dir / "model.quant.onnx",
            per_channel=self.per_channel,
            activation_type=self.activation_type,
            weight_type=self.weight_type,
            calibrate_method=self.calibrate_method,
            reduce_range=self.reduce_range,
        )

    def info(self, model_path: Path, output_dir: Path) -> ModelInfo:
        model = load_onnx(model_path)  # read once, for the input name and the counting
        shapes = None
        if self.input_shape is not None:
            inits = {i.name for i in model.graph.initializer}
            names = [i.name for i in model.graph.input if i.name not in inits]
            if len(names) == 1:
                shapes = {names[0]: self.input_shape}
        result = onnx_model_info(model, input_shapes=shapes)
        if result.unknown_macs_layers:
            raise TargetError(
                f"MACs of {len(result.unknown_macs_layers)} layer(s) of {model_path} are unknown "
                f"({', '.join(result.unknown_macs_layers[:3])}...): set input_shape on the target if the "
                "model has symbolic dimensions, or count the float export"
            )
        layers_csv = write_layers_csv(result.layers, Path(output_dir) / "layers.csv")
        return ModelInfo(macs=result.macs, params=result.params, layers_csv=layers_csv)

    def benchmark(
        self,
        model_path: Path,
        *,
        iterations: int = 50,
        warmup: int = 5,
    ) -> BenchmarkResult:
        """Time single inferences after ``warmup`` untimed ones, in one session.

        Rounds of ``iterations`` timed runs repeat until two consecutive round medians agree (see the class
        docstring); the result holds the samples of those two rounds (of the lowest-median round if no two
        consecutive rounds agreed).
        :meth:`~archai_aml.targets.base.BenchmarkResult.write_samples_csv` writes the samples to a CSV.
        """
        if iterations < 1 or warmup < 0:
            raise TargetError(f"iterations must be >= 1 and warmup >= 0, got {iterations} and {warmup}")
        session = self._session(Path(model_path))
        name, x = self._input_array(session)
        feed = {name: x}
        for _ in range(warmup):
            session.run(None, feed)
        rounds: list[list[float]] = []
        stable = self.max_rounds == 1
        with tqdm(
            total=iterations * self.max_rounds, desc="benchmark", disable=not self.progress, leave=False
        ) as bar:
            for _ in range(self.max_rounds):
                timed: list[float] = []
                for _ in range(iterations):
                    start = time.perf_counter_ns()
                    session.run(None, feed)
                    timed.append((time.perf_counter_ns() - start) / 1e6)
                    bar.update(1)
                rounds.append(timed)
                if len(rounds) >= 2:
                    m_prev, m_last = statistics.median(rounds[-2]), statistics.median(rounds[-1])
                    if abs(m_prev - m_last) <= self.stability_tolerance * min(m_prev, m_last):
                        stable = True
                        break
        if stable:
            samples = [s for r in rounds[-2:] for s in r]
        else:
            # like timeit: other processes only ever add time, so the least disturbed round (lowest median)
            # is the best estimate of the model's own latency
            samples = min(rounds, key=statistics.median)
            log.warning(
                "latency of %s did not settle within %.1f%% over %d rounds (round medians %s ms); "
                "the machine is probably busy: reporting the round with the lowest median",
                model_path,
                100 * self.stability_tolerance,
                len(rounds),
                ", ".join(f"{statistics.median(r):.3f}" for r in rounds),
            )
        result = BenchmarkResult(
            mean_ms=statistics.fmean(samples),
            median_ms=statistics.median(samples),
            stdev_ms=statistics.stdev(samples) if len(samples) > 1 else 0.0,
            samples_ms=samples,
        )
        log.info(
            "benchmark %s: median %.3f ms, mean %.3f ms, stdev %.3f ms over %d runs (threads=%s)",
            model_path,
            result.median_ms,
            result.mean_ms,
            result.stdev_ms,
            len(samples),
            self.intra_op_num_threads,
        )
        return result

    def run_batch(self, model_path: Path, inputs: np.ndarray, *, batch_size: int = 1) -> np.ndarray:
        """Outputs of the model's first output for ``inputs`` (N x C x H x W), stacked along N."""
        if batch_size < 1:
            raise TargetError(f"batch_size must be at least 1, got {batch_size}")
        x = np.asarray(inputs, dtype=np.float32)
        session = self._cached_session(Path(model_path))
        meta = session.get_inputs()
        if len(meta) != 1:
            raise TargetError(f"the CPU target runs models with one input; this one has {len(meta)}")
        rank = len(meta[0].shape)
        if x.ndim != rank:
            raise TargetError(f"inputs have shape {x.shape} but the model's input has rank {rank}")
        fixed = meta[0].shape[0]
        step = fixed if isinstance(fixed, int) and fixed > 0 else batch_size
        if x.shape[0] % step and isinstance(fixed, int):
            raise TargetError(
                f"the model has a fixed batch of {fixed}; {x.shape[0]} inputs are not a multiple of it"
            )
        outputs = []
        for i in tqdm(range(0, x.shape[0], step), desc="run_batch", disable=not self.progress, leave=False):
            try:
                outputs.append(session.run(None, {meta[0].name: x[i : i + step]})[0])
            except Exception as exc:
                raise TargetError(
                    f"onnxruntime failed on inputs {i}..{i + step - 1} of {model_path}: {exc}"
                ) from exc
        if not outputs:
            raise TargetError("run_batch got no inputs")
        return np.concatenate(outputs, axis=0)
