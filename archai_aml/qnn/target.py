"""The ``qnn`` target: Qualcomm's QNN HTP (Hexagon NPU) through onnxruntime-qnn.

* ``convert``: the float model the HTP takes (static input shape, onnxruntime's pre-processing and
  ``qnn_preprocess_model``) as ``<output_dir>/model.qnn.onnx``; ``f1_1k_f`` runs it on the CPU provider.
* ``quantize``: convert, QDQ quantization with ``get_qnn_qdq_config`` calibrated on the given batches
  (``model.qdq.onnx``), then :meth:`QnnTarget.compile`: the EP-context model ``model_ctx.onnx`` with its
  context binary ``model_ctx_qnn.bin`` beside it (or embedded, ``embed_context=True``). That is the deployable
  artifact (the counterpart of SNPE's ``model.quant.dlc``): it loads on the HTP without compiling again.
  With ``toolchain="olive"`` the same three steps run as Olive passes (``QNNPreprocess``,
  ``OnnxStaticQuantization`` on ``QNNExecutionProvider``, ``EPContextBinaryGenerator``).
* ``info``: MACs and parameters of the QDQ model (written into the EP-context model's metadata at compile
  time, so a downloaded context model still reports them).
* ``benchmark``: timed single inferences on the HTP; ``latency_simulated`` is True on an x86-64 host (the
  emulator) and False on an ARM64 Snapdragon.
* ``run_batch``: a quantized or EP-context model on the HTP (``workers`` > 1: in that many processes), a
  float model on onnxruntime's CPU provider.

Every HTP session has CPU fallback disabled; a node the HTP does not take fails with a
:class:`~archai_aml.errors.TargetError` naming the operator type(s) and node name(s).
"""

from __future__ import annotations

import logging
import platform
import shutil
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnxruntime as ort
from tqdm.auto import tqdm

from archai_aml._optional import require
from archai_aml.errors import TargetError
from archai_aml.onnx.info import load_onnx, onnx_model_info, write_layers_csv
from archai_aml.qnn.prepare import CALIBRATION_METHODS, QUANT_TYPES, qnn_convert, qnn_quantize
from archai_aml.qnn.session import context_files, htp_is_simulated, htp_session, is_context_model
from archai_aml.targets.base import BenchmarkResult, ModelInfo, Target

__all__ = ["HTP_PERFORMANCE_MODES", "QnnTarget"]

log = logging.getLogger(__name__)

#: ``htp_performance_mode`` values of the QNN EP.
HTP_PERFORMANCE_MODES = (
    "burst", "balanced", "default", "high_performance", "high_power_saver", "low_balanced",
    "extreme_power_saver", "low_power_saver", "power_saver", "sustained_high_performance",
)  # fmt: skip
_QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "EPContext"}
_META_MACS, _META_PARAMS, _META_SOURCE = "archai_aml.macs", "archai_aml.params", "archai_aml.source"


class QnnTarget(Target):
    """QNN HTP through onnxruntime-qnn (see the module docstring).

    Args:
        input_shape: fills the model's symbolic input dimensions (its static ones are kept); default:
            batch 1, other dimensions must be static.
        activation_type / weight_type: ``uint8`` (default) or ``uint16``.
        per_channel: per-channel weight quantization (default False, onnxruntime's QNN default).
        calibrate_method: ``minmax`` (default), ``entropy`` or ``percentile``.
        htp_performance_mode, soc_model, htp_arch: QNN EP provider options (None: the EP's default).
        provider_options: any other QNN EP provider options (strings).
        embed_context: embed the context binary in the EP-context model instead of writing it beside it.
        toolchain: ``onnxruntime`` (direct calls, default) or ``olive`` (Olive passes).
        workers: processes that run HTP batches in parallel (1: in this process).
        progress: tqdm bars; seed: of the random benchmark input.
    """

    name = "qnn"
    needs_device = False  # the HTP is the host's own (or its emulator): no device serial to attach

    def __init__(
        self,
        *,
        input_shape: Sequence[int] | None = None,
        activation_type: str = "uint8",
        weight_type: str = "uint8",
        per_channel: bool = False,
        calibrate_method: str = "minmax",
        htp_performance_mode: str | None = None,
        soc_model: str | None = None,
        htp_arch: str | None = None,
        provider_options: dict[str, str] | None = None,
        embed_context: bool = False,
        toolchain: Literal["onnxruntime", "olive"] = "onnxruntime",
        workers: int = 1,
        progress: bool = True,
        seed: int = 0,
    ) -> None:
        if activation_type not in QUANT_TYPES or weight_type not in QUANT_TYPES:
            raise TargetError(f"activation_type and weight_type must be one of {QUANT_TYPES}")
        if calibrate_method not in CALIBRATION_METHODS:
            raise TargetError(f"calibrate_method must be one of {CALIBRATION_METHODS}")
        if htp_performance_mode is not None and htp_performance_mode not in HTP_PERFORMANCE_MODES:
            raise TargetError(f"htp_performance_mode must be one of {HTP_PERFORMANCE_MODES}")
        if toolchain not in ("onnxruntime", "olive"):
            raise TargetError(f"toolchain must be 'onnxruntime' or 'olive', got {toolchain!r}")
        if workers < 1:
            raise TargetError(f"workers must be at least 1, got {workers}")
        require("onnxruntime_qnn", feature="the qnn target", extra="qnn")
        self.input_shape = list(input_shape) if input_shape is not None else None
        self.activation_type = activation_type
        self.weight_type = weight_type
        self.per_channel = per_channel
        self.calibrate_method = calibrate_method
        self.provider_options: dict[str, str] = {k: str(v) for k, v in (provider_options or {}).items()}
        for key, value in (
            ("htp_performance_mode", htp_performance_mode), ("soc_model", soc_model), ("htp_arch", htp_arch),
        ):  # fmt: skip
            if value is not None:
                self.provider_options[key] = str(value)
        self.embed_context = embed_context
        self.toolchain = toolchain
        self.workers = workers
        self.progress = progress
        self.seed = seed
        self._sessions: dict[tuple[str, int, int], ort.InferenceSession] = {}
        self._pool: Any = None
        self._htp_model: tuple[str, int, int] | None = None  # the file runs_on_htp last read, and its answer
        self._htp_answer: bool | None = None
        self._pool_key: tuple[str, int, int] | None = None
        self._cpu: Any = None

    # -- sessions -------------------------------------------------------------------------------------

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int]:
        st = path.stat()
        return str(path.resolve()), st.st_mtime_ns, st.st_size

    def _session(self, path: Path) -> ort.InferenceSession:
        if not path.is_file():
            raise TargetError(f"model {path} does not exist: check the path (or that the download finished)")
        key = self._key(path)
        if key not in self._sessions:
            self._sessions.clear()  # one model at a time
            self._sessions[key] = htp_session(path, self.provider_options)
        return self._sessions[key]

    def close(self) -> None:
        """Drop cached sessions and stop the worker processes."""
        self._sessions.clear()
        if self._pool is not None:
            self._pool.close()
        self._pool = self._pool_key = None
        if self._cpu is not None:
            self._cpu.close()

    def companion_files(self, model_path: Path) -> list[str]:
        """The context binary an EP-context model loads from beside it (none when embedded)."""
        path = Path(model_path)
        return context_files(path) if path.suffix == ".onnx" and is_context_model(path) else []

    # -- Target ---------------------------------------------------------------------------------------

    def convert(self, onnx_path: Path, output_dir: Path) -> Path:
        return qnn_convert(Path(onnx_path), Path(output_dir) / "model.qnn.onnx", self.input_shape)

    def quantize(self, model_path: Path, calibration: Iterable[np.ndarray], output_dir: Path) -> Path:
        """Convert, QDQ-quantize and compile ``model_path`` (the float export); returns the EP-context model."""
        output_dir = Path(output_dir)
        converted = self.convert(Path(model_path), output_dir)
        if self.toolchain == "olive":
            from archai_aml.qnn.olive import olive_compile

            ctx = olive_compile(self, converted, calibration, output_dir)
            self._write_info(ctx, converted)
            return ctx
        qdq = qnn_quantize(
            converted,
            calibration,
            output_dir / "model.qdq.onnx",
            activation_type=self.activation_type,
            weight_type=self.weight_type,
            per_channel=self.per_channel,
            calibrate_method=self.calibrate_method,
        )
        return self.compile(qdq, output_dir)

    def compile(self, qdq_path: Path, output_dir: Path) -> Path:
        """The EP-context model of a QDQ model, ``<output_dir>/model_ctx.onnx`` (binary beside it)."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        ctx = output_dir / "model_ctx.onnx"
        for old in (ctx, output_dir / "model_ctx_qnn.bin"):
            old.unlink(missing_ok=True)  # onnxruntime refuses to overwrite a context model
        start = time.perf_counter()
        htp_session(Path(qdq_path), self.provider_options, context_path=ctx, embed_context=self.embed_context)
        if not ctx.is_file():
            raise TargetError(f"the QNN EP did not write the EP-context model {ctx}")
        self._write_info(ctx, Path(qdq_path))
        log.info("compiled %s for the HTP in %.1f s -> %s", qdq_path, time.perf_counter() - start, ctx)
        return ctx

    def _write_info(self, ctx: Path, source: Path) -> None:
        """MACs, parameters and the source model's name in the EP-context model's metadata."""
        counted = onnx_model_info(load_onnx(source))
        model = onnx.load(str(ctx), load_external_data=False)
        meta = {p.key: p.value for p in model.metadata_props}
        meta.update(
            {_META_MACS: str(counted.macs), _META_PARAMS: str(counted.params), _META_SOURCE: source.name}
        )
        onnx.helper.set_model_props(model, meta)
        onnx.save(model, str(ctx))

    def info(self, model_path: Path, output_dir: Path) -> ModelInfo:
        path = Path(model_path)
        model = load_onnx(path)
        if is_context_model(model):
            meta = {p.key: p.value for p in model.metadata_props}
            source = path.parent / meta.get(_META_SOURCE, "")
            if meta.get(_META_SOURCE) and source.is_file():
                path, model = source, load_onnx(source)
            elif _META_MACS in meta and _META_PARAMS in meta:
                return ModelInfo(macs=int(meta[_META_MACS]), params=int(meta[_META_PARAMS]))
            else:
                raise TargetError(
                    f"{path} is an EP-context model without archai-aml's MACs/parameters metadata: "
                    "count the QDQ or float model instead"
                )
        result = onnx_model_info(model)
        if result.unknown_macs_layers:
            raise TargetError(
                f"MACs of {len(result.unknown_macs_layers)} layer(s) of {path} are unknown: set input_shape"
            )
        csv_path = write_layers_csv(result.layers, Path(output_dir) / "layers.csv")
        return ModelInfo(macs=result.macs, params=result.params, layers_csv=csv_path)

    def _input(self, session: ort.InferenceSession) -> tuple[str, np.ndarray]:
        meta = session.get_inputs()
        if len(meta) != 1:
            raise TargetError(f"the qnn target runs models with one input; this one has {len(meta)}")
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in meta[0].shape]
        return meta[0].name, np.random.default_rng(self.seed).random(shape, dtype=np.float32)

    def benchmark(self, model_path: Path, *, iterations: int = 50, warmup: int = 5) -> BenchmarkResult:
        """Time ``iterations`` single inferences on the HTP after ``warmup`` untimed ones."""
        if iterations < 1 or warmup < 0:
            raise TargetError(f"iterations must be >= 1 and warmup >= 0, got {iterations} and {warmup}")
        session = self._session(Path(model_path))
        name, x = self._input(session)
        for _ in range(warmup):
            session.run(None, {name: x})
        samples: list[float] = []
        for _ in tqdm(range(iterations), desc="benchmark (HTP)", disable=not self.progress, leave=False):
            start = time.perf_counter_ns()
            session.run(None, {name: x})
            samples.append((time.perf_counter_ns() - start) / 1e6)
        simulated = htp_is_simulated()
        result = BenchmarkResult(
            mean_ms=statistics.fmean(samples),
            median_ms=statistics.median(samples),
            stdev_ms=statistics.stdev(samples) if len(samples) > 1 else 0.0,
            samples_ms=samples,
            latency_simulated=simulated,
        )
        log.info(
            "benchmark %s on the %s HTP: median %.3f ms over %d runs",
            model_path, "emulated" if simulated else "device", result.median_ms, len(samples),
        )  # fmt: skip
        return result

    def source(self, step: str, model_path: Path) -> str:
        if step == "info":
            return "archai-aml's count over the QDQ ONNX graph compiled for the HTP (archai_aml.onnx.info)"
        if step == "f1" and not self.runs_on_htp(Path(model_path)):
            return f"onnxruntime {ort.__version__} CPUExecutionProvider (float model) on {platform.machine()}"
        where = "x86-64 emulator, simulated" if htp_is_simulated() else "Snapdragon HTP"
        return f"onnxruntime-qnn {_qnn_version()} HTP backend ({where}) on {platform.node()}"

    def runs_on_htp(self, model_path: Path) -> bool:
        """Whether :meth:`run_batch` runs the model on the HTP (quantized or EP-context) or the CPU (float).
        Read once per model file (run_batch asks for every chunk, source() once more)."""
        stat = Path(model_path).stat()
        key = (str(Path(model_path).resolve()), stat.st_mtime_ns, stat.st_size)
        if self._htp_model != key or self._htp_answer is None:
            model = onnx.load(str(model_path), load_external_data=False)
            self._htp_model, self._htp_answer = (
                key,
                any(n.op_type in _QUANTIZED_OPS for n in model.graph.node),
            )
        return self._htp_answer

    def run_batch(self, model_path: Path, inputs: np.ndarray, *, batch_size: int = 1) -> np.ndarray:
        """The model's first output for ``inputs`` (N x C x H x W): on the HTP for a quantized model, on
        onnxruntime's CPU provider for a float one."""
        path = Path(model_path)
        if not path.is_file():
            raise TargetError(f"model {path} does not exist: check the path (or that the download finished)")
        x = np.asarray(inputs, dtype=np.float32)
        if x.shape[0] == 0:
            raise TargetError("run_batch got no inputs")
        if not self.runs_on_htp(path):
            if self._cpu is None:
                from archai_aml.targets import get_target

                self._cpu = get_target("cpu", input_shape=self.input_shape, progress=False)
            return self._cpu.run_batch(path, x, batch_size=batch_size)
        session = self._session(path)
        meta = session.get_inputs()[0]
        fixed = meta.shape[0]
        step = fixed if isinstance(fixed, int) and fixed > 0 else batch_size
        if x.ndim != len(meta.shape) or x.shape[0] % step:
            raise TargetError(f"inputs of shape {x.shape} do not fit the model's input {meta.shape}")
        if self.workers > 1 and x.shape[0] >= 2 * step:
            return self._parallel(path, x, step)
        outputs = []
        for i in tqdm(
            range(0, x.shape[0], step), desc="run_batch (HTP)", disable=not self.progress, leave=False
        ):
            try:
                outputs.append(session.run(None, {meta.name: x[i : i + step]})[0])
            except Exception as exc:
                raise TargetError(f"the HTP failed on inputs {i}..{i + step - 1} of {path}: {exc}") from exc
        return np.concatenate(outputs, axis=0)

    def _parallel(self, path: Path, x: np.ndarray, step: int) -> np.ndarray:
        from archai_aml.qnn.pool import HtpPool

        key = self._key(path)
        if self._pool_key != key:
            if self._pool is not None:
                self._pool.close()
            self._pool = HtpPool(path, self.provider_options, self.workers)
            self._pool_key = key
        result: np.ndarray = self._pool.run(x, step)
        return result


def _qnn_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("onnxruntime-qnn")
    except PackageNotFoundError:
        return "(version unknown)"


def copy_context_model(ctx: Path, dest_dir: Path) -> Path:
    """Copy an EP-context model and its context binaries into ``dest_dir``; returns the copy's path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    for name in [ctx.name, *context_files(ctx)]:
        shutil.copyfile(ctx.parent / name, dest_dir / name)
    return dest_dir / ctx.name
