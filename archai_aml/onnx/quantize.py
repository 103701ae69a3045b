"""Static QDQ quantization with onnxruntime, calibrated on data-set images.

The flow follows onnxruntime's recommendation: pre-process the float model first
(``quant_pre_process``: symbolic and ONNX shape inference plus basic graph optimization, which merges
Conv+BatchNormalization so that the merged Conv gets quantized), then ``quantize_static`` in the QDQ
format (``QuantizeLinear``/``DequantizeLinear`` pairs around each quantized operator).

Defaults: activations and weights signed 8 bit (``QInt8``/``QInt8``, "S8S8", onnxruntime's default and
its recommended first choice for QDQ), weights per output channel, MinMax calibration, and signed weights
with ``reduce_range`` (7 bits) on every host, so that the non-VNNI x86 kernel cannot saturate and every
host computes the same quantized outputs (see :mod:`archai_aml.onnx.int8_path`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader

from archai_aml.errors import TargetError
from archai_aml.onnx.info import load_onnx

__all__ = ["BatchCalibrationReader", "default_reduce_range", "preprocess_for_quantization", "quantize_qdq"]

log = logging.getLogger(__name__)

_QUANT_TYPES = ("qint8", "quint8")
_CALIBRATION_METHODS = ("minmax", "entropy", "percentile", "distribution")


def _model_input(model: onnx.ModelProto) -> tuple[str, int | None]:
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise TargetError(
            f"calibration supports models with exactly one input, this one has {len(inputs)}: "
            f"{[i.name for i in inputs]}"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    batch = int(dims[0].dim_value) if dims and dims[0].HasField("dim_value") else None
    return inputs[0].name, batch


def _as_batches(array: np.ndarray, model_batch: int | None) -> Iterator[np.ndarray]:
    x = np.asarray(array, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise TargetError(f"calibration batches must be NCHW (or CHW) float arrays, got shape {x.shape}")
    if model_batch is None:
        yield x
        return
    if x.shape[0] % model_batch:
        log.warning(
            "calibration batch of %d images is not a multiple of the model's fixed batch %d; "
            "dropping the last %d",
            x.shape[0],
            model_batch,
            x.shape[0] % model_batch,
        )
    for i in range(0, x.shape[0] - model_batch + 1, model_batch):
        yield x[i : i + model_batch]


class BatchCalibrationReader(CalibrationDataReader):
    """An onnxruntime ``CalibrationDataReader`` over NCHW float32 batches (read once, lazily).

    Batches are re-cut to the model's fixed batch size when it has one (``1`` for most exported models).
    """

    def __init__(
        self, input_name: str, batches: Iterable[np.ndarray], model_batch: int | None = None
    ) -> None:
        self.input_name = input_name
        self._batches = iter(batches)
        self._model_batch = model_batch
        self._pending: Iterator[np.ndarray] = iter(())
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        while True:
            item = next(self._pending, None)
            if item is not None:
                self.count += int(item.shape[0])
                return {self.input_name: item}
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._pending = _as_batches(batch, self._model_batch)


def preprocess_for_quantization(model_path: Path, output_path: Path) -> Path:
    """``quant_pre_process`` (ONNX shape inference and basic graph optimization) before quantization.

    Symbolic shape inference is skipped: it only matters for models with symbolic dimensions in
    transformer-style ops, and when it fails onnxruntime saves ``sym_shape_infer_temp.onnx`` and external-data
    files into the current directory. ONNX shape inference covers the convolutional models searched here.
    """
    from onnxruntime.quantization import quant_pre_process

    try:
        quant_pre_process(str(model_path), str(output_path), skip_symbolic_shape=True)
    except Exception as exc:
        raise TargetError(f"quantization pre-processing of {model_path} failed: {exc}") from exc
    return output_path


def default_reduce_range(weight_type: str) -> bool:
    """Whether weights of ``weight_type`` are quantized with ``reduce_range`` by default: signed 8-bit
    weights are (U8S8 saturation, :mod:`archai_aml.onnx.int8_path`); unsigned ones (U8U8: a kernel without
    int16 pair sums) are not."""
    from archai_aml.onnx.int8_path import INT8_WEIGHT_REDUCE_RANGE

    return INT8_WEIGHT_REDUCE_RANGE and weight_type == "qint8"


def quantize_qdq(
    model_path: Path,
    calibration: Iterable[np.ndarray],
    output_path: Path,
    *,
    per_channel: bool = True,
    activation_type: str = "qint8",
    weight_type: str = "qint8",
    calibrate_method: str = "minmax",
    preprocess: bool = True,
    reduce_range: bool | None = None,
) -> Path:
    """Quantize ``model_path`` to a QDQ model at ``output_path`` calibrated on ``calibration`` batches.

    ``reduce_range``: 7-bit weights; ``None`` (default) means :func:`default_reduce_range` of
    ``weight_type`` (on for signed weights, on every host)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if activation_type not in _QUANT_TYPES or weight_type not in _QUANT_TYPES:
        raise TargetError(f"activation_type and weight_type must be one of {_QUANT_TYPES}")
    if calibrate_method not in _CALIBRATION_METHODS:
        raise TargetError(f"calibrate_method must be one of {_CALIBRATION_METHODS}, got {calibrate_method!r}")
    model = load_onnx(model_path)
    custom = sorted({n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if custom:
        log.warning(
            "%s uses operators of domain(s) %s (an onnxruntime-optimized model?); they are not quantized. "
            "Quantize the float ONNX export instead.",
            model_path,
            custom,
        )
    input_name, model_batch = _model_input(model)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    source = model_path
    if preprocess:
        source = preprocess_for_quantization(
            model_path, output_path.with_name(output_path.stem + ".pre.onnx")
        )
    reader = BatchCalibrationReader(input_name, calibration, model_batch)
    qtype = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
        "distribution": CalibrationMethod.Distribution,
    }[calibrate_method]
    try:
        quantize_static(
            str(source),
            str(output_path),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=qtype[activation_type],
            weight_type=qtype[weight_type],
            calibrate_method=method,
            reduce_range=default_reduce_range(weight_type) if reduce_range is None else reduce_range,
        )
    except TargetError:
        raise
    except Exception as exc:
        if reader.count == 0:
            raise TargetError(
                "no calibration data: pass at least one NCHW float32 batch of data-set images"
            ) from exc
        hint = (
            " (it holds onnxruntime-fused operators: quantize the float ONNX export instead)"
            if custom
            else ""
        )
        raise TargetError(f"static quantization of {model_path} failed{hint}: {exc}") from exc
    if reader.count == 0:
        raise TargetError("no calibration data: pass at least one NCHW float32 batch of data-set images")
    log.info("quantized %s on %d calibration images -> %s", model_path, reader.count, output_path)
    return output_path
