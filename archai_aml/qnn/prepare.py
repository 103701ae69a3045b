"""The float model the HTP takes, and its QDQ quantization with onnxruntime's QNN recipe.

* :func:`qnn_convert`: fixes the input shape (the QNN EP takes static shapes only), runs onnxruntime's
  ``quant_pre_process`` (ONNX shape inference, constant folding, Conv+BatchNormalization merge) and then
  ``qnn_preprocess_model`` (QNN-specific fusions: LayerNorm, Gelu, ...; it writes nothing when it changes
  nothing, and the input is then kept as it is).
* :func:`qnn_quantize`: ``get_qnn_qdq_config`` (the QDQ settings the HTP needs: uint8/uint16 activations,
  uint8/uint16 weights, opset raised to 21 for 16-bit types) calibrated on data-set images, then
  ``onnxruntime.quantization.quantize``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader

from archai_aml.errors import TargetError
from archai_aml.onnx.info import load_onnx

__all__ = ["QUANT_TYPES", "qnn_convert", "qnn_quantize"]

log = logging.getLogger(__name__)

#: Quantization types the HTP takes for activations and weights.
QUANT_TYPES = ("uint8", "uint16")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


def _single_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise TargetError(f"the qnn target takes models with one input; this one has {len(inputs)}")
    return inputs[0]


def fix_input_shape(model: onnx.ModelProto, input_shape: Sequence[int] | None) -> list[int]:
    """Give the model's input static dimensions: its own where it has them, else ``input_shape``'s, else
    batch 1. Returns the shape."""
    inp = _single_input(model)
    dims = inp.type.tensor_type.shape.dim
    if input_shape is not None and len(input_shape) != len(dims):
        raise TargetError(
            f"input {inp.name!r} has rank {len(dims)} but input_shape is {list(input_shape)}: "
            "set target.input_shape to a shape of the model's rank"
        )
    shape: list[int] = []
    for i, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value > 0:
            shape.append(int(d.dim_value))
            continue
        if input_shape is None and i != 0:
            raise TargetError(
                f"input {inp.name!r} has a symbolic dimension {i} ({d.dim_param or '?'}) and the QNN EP "
                "takes static shapes only: set input_shape on the target"
            )
        value = int(input_shape[i]) if input_shape is not None else 1
        d.ClearField("dim_param")
        d.dim_value = value
        shape.append(value)
    return shape


def qnn_convert(onnx_path: Path, output_path: Path, input_shape: Sequence[int] | None = None) -> Path:
    """The float model the HTP takes (static input shape, pre-processed for QNN) at ``output_path``."""
    from onnxruntime.quantization import quant_pre_process
    from onnxruntime.quantization.execution_providers.qnn import qnn_preprocess_model

    model = load_onnx(onnx_path)
    shape = fix_input_shape(model, input_shape)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    fixed = output_path.with_name(output_path.stem + ".fixed.onnx")
    pre = output_path.with_name(output_path.stem + ".pre.onnx")
    onnx.save(model, str(fixed))
    try:
        quant_pre_process(str(fixed), str(pre), skip_symbolic_shape=True)
        # onnxruntime 1.32's qnn_preprocess_model fails (TypeError in save_and_reload_optimize_model) on a
        # model with metadata_props, which quant_pre_process adds: drop them
        pre_model = onnx.load(str(pre))
        meta = {p.key: p.value for p in pre_model.metadata_props}
        del pre_model.metadata_props[:]
        onnx.save(pre_model, str(pre))
        changed = qnn_preprocess_model(str(pre), str(output_path))
    except TargetError:
        raise
    except Exception as exc:
        raise TargetError(f"QNN pre-processing of {onnx_path} failed ({type(exc).__name__}: {exc})") from exc
    finally:
        fixed.unlink(missing_ok=True)
    if not changed or not output_path.is_file():
        shutil.copyfile(pre, output_path)
    pre.unlink(missing_ok=True)
    out_model = onnx.load(str(output_path))
    onnx.helper.set_model_props(out_model, meta)  # what quant_pre_process said (quantize checks for it)
    onnx.save(out_model, str(output_path))
    log.info("QNN pre-processed %s (input %s) -> %s", onnx_path, shape, output_path)
    return output_path


class _Reader(CalibrationDataReader):
    """NCHW float32 batches cut to the model's (static) batch size, read once, counting images."""

    def __init__(self, name: str, batch: int, batches: Iterable[np.ndarray]) -> None:
        self.name = name
        self.batch = batch
        self._items = self._cut(batches)
        self.count = 0

    def _cut(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for b in batches:
            x = np.asarray(b, dtype=np.float32)
            x = x[None] if x.ndim == 3 else x
            for i in range(0, x.shape[0] - self.batch + 1, self.batch):
                yield x[i : i + self.batch]

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._items, None)
        if item is None:
            return None
        self.count += int(item.shape[0])
        return {self.name: item}


def qnn_quantize(
    model_path: Path,
    calibration: Iterable[np.ndarray],
    output_path: Path,
    *,
    activation_type: str = "uint8",
    weight_type: str = "uint8",
    per_channel: bool = False,
    calibrate_method: str = "minmax",
) -> Path:
    """QDQ model of ``model_path`` (a :func:`qnn_convert` output) with onnxruntime's QNN settings."""
    from onnxruntime.quantization import CalibrationMethod, QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    if activation_type not in QUANT_TYPES or weight_type not in QUANT_TYPES:
        raise TargetError(
            f"activation_type and weight_type must be one of {QUANT_TYPES}, got "
            f"{activation_type!r} and {weight_type!r}"
        )
    if calibrate_method not in CALIBRATION_METHODS:
        raise TargetError(f"calibrate_method must be one of {CALIBRATION_METHODS}, got {calibrate_method!r}")
    model = load_onnx(model_path)
    inp = _single_input(model)
    dims = inp.type.tensor_type.shape.dim
    batch = int(dims[0].dim_value) if dims and dims[0].dim_value > 0 else 1
    reader = _Reader(inp.name, batch, calibration)
    qtype = {"uint8": QuantType.QUInt8, "uint16": QuantType.QUInt16}
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[calibrate_method]
    output_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        config = get_qnn_qdq_config(
            model,
            reader,
            calibrate_method=method,
            activation_type=qtype[activation_type],
            weight_type=qtype[weight_type],
            per_channel=per_channel,
        )
        quantize(model, str(output_path), config)
    except Exception as exc:
        if reader.count == 0:
            raise TargetError(
                "no calibration data: pass at least one NCHW float32 batch of data-set images"
            ) from exc
        raise TargetError(
            f"QNN QDQ quantization of {model_path} failed ({type(exc).__name__}: {exc})"
        ) from exc
    if reader.count == 0:
        raise TargetError("no calibration data: pass at least one NCHW float32 batch of data-set images")
    log.info(
        "QDQ-quantized %s (activations %s, weights %s) on %d calibration images -> %s",
        model_path, activation_type, weight_type, reader.count, output_path,
    )  # fmt: skip
    return output_path
