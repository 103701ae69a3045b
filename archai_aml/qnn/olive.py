"""The qnn target's quantize + compile steps as Olive 0.13 passes (``toolchain="olive"``).

One Olive workflow on the converted float model: ``QNNPreprocess``, ``OnnxStaticQuantization`` (with the
accelerator's provider ``QNNExecutionProvider`` it takes onnxruntime's ``get_qnn_qdq_config``) calibrated on
the given images written as raw float32 files (Olive's ``RawDataContainer``), and
``EPContextBinaryGenerator`` (the plugin-EP recipe, CPU fallback disabled).

The target system is a ``PythonEnvironment`` on this interpreter: Olive's ``LocalSystem`` lists only the
providers built into onnxruntime (a plugin EP is not among them) and refuses a QNN accelerator, while the
``PythonEnvironment`` system's provider probe registers onnxruntime-qnn first.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from archai_aml._optional import require
from archai_aml.errors import TargetError
from archai_aml.qnn.session import FALLBACK_MESSAGE, context_files, cpu_placed_nodes, unsupported_message

if TYPE_CHECKING:
    from archai_aml.qnn.target import QnnTarget

__all__ = ["olive_compile", "olive_workflow"]

log = logging.getLogger(__name__)

_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def _write_calibration(calibration: Iterable[np.ndarray], folder: Path, shape: list[int]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for batch in calibration:
        x = np.asarray(batch, dtype=np.float32)
        x = x[None] if x.ndim == 3 else x
        for i in range(0, x.shape[0] - shape[0] + 1, shape[0]):
            x[i : i + shape[0]].tofile(folder / f"{count:06d}.raw")
            count += 1
    return count


def olive_workflow(target: QnnTarget, model: Path, calib_dir: Path, input_name: str, shape: list[int],
                   work: Path) -> dict[str, Any]:  # fmt: skip
    """The Olive run configuration of the three passes."""
    accelerators = [{"device": "npu", "execution_providers": ["QNNExecutionProvider"]}]
    return {
        "input_model": {"type": "ONNXModel", "model_path": str(model)},
        "systems": {
            "host": {"type": "LocalSystem", "accelerators": accelerators},
            "qnn": {
                "type": "PythonEnvironment",
                "python_environment_path": str(Path(sys.executable).parent),
                "accelerators": accelerators,
            },
        },
        "data_configs": [
            {
                "name": "archai_aml_calibration",
                "type": "RawDataContainer",
                "load_dataset_config": {
                    "data_dir": str(calib_dir.parent),
                    "input_names": [input_name],
                    "input_shapes": [shape],
                    "input_dirs": [calib_dir.name],
                },
            }
        ],
        "passes": {
            "preprocess": {"type": "QNNPreprocess"},
            "quantize": {
                "type": "OnnxStaticQuantization",
                "data_config": "archai_aml_calibration",
                "quant_format": "QDQ",
                "activation_type": target.activation_type,
                "precision": target.weight_type,
                "per_channel": target.per_channel,
                "calibrate_method": _METHODS[target.calibrate_method],
                "quant_preprocess": False,  # convert already ran onnxruntime's pre-processing
            },
            "context": {
                "type": "EPContextBinaryGenerator",
                "embed_context": target.embed_context,
                "provider_options": dict(target.provider_options) or None,
                "disable_cpu_fallback": True,
            },
        },
        "engine": {
            "host": "host",
            "target": "qnn",
            "cache_dir": str(work / "cache"),
            "output_dir": str(work / "output"),
            "log_severity_level": 3,
        },
    }


def olive_compile(
    target: QnnTarget, converted: Path, calibration: Iterable[np.ndarray], output_dir: Path
) -> Path:
    """Quantize and compile ``converted`` with Olive; returns ``<output_dir>/model_ctx.onnx``."""
    workflows = require("olive.workflows", feature="the qnn target's olive toolchain", extra="qnn")
    model = onnx.load(str(converted))
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    shape = [int(d.dim_value) for d in inputs[0].type.tensor_type.shape.dim]
    work = Path(output_dir) / "olive"
    shutil.rmtree(work, ignore_errors=True)
    calib_dir = work / "calibration" / "input"
    if _write_calibration(calibration, calib_dir, shape) == 0:
        raise TargetError("no calibration data: pass at least one NCHW float32 batch of data-set images")
    # Olive's QNNPreprocess calls qnn_preprocess_model, which in onnxruntime 1.32 fails (TypeError) on a
    # model with metadata_props: hand it a copy without them
    del model.metadata_props[:]
    source = work / "input.onnx"
    onnx.save(model, str(source))
    config = olive_workflow(target, source, calib_dir, inputs[0].name, shape, work)
    try:
        workflows.run(config)
    except Exception as exc:
        if FALLBACK_MESSAGE in str(exc):  # name the nodes the HTP refused, as the direct path does
            raise TargetError(unsupported_message(converted, cpu_placed_nodes(source))) from exc
        raise TargetError(f"the Olive workflow on {converted} failed ({type(exc).__name__}: {exc})") from exc
    produced = work / "output" / "model.onnx"
    if not produced.is_file():
        # Olive logs a failed pass and returns no model; an operator the HTP refuses is the usual cause:
        # name it as the direct path does (placement of the float model, the one Olive was given)
        refused = cpu_placed_nodes(source)
        if refused:
            raise TargetError(unsupported_message(converted, refused))
        raise TargetError(
            f"the Olive workflow on {converted} produced no model: see {work / 'output' / 'run_history.txt'}"
        )
    ctx = Path(output_dir) / "model_ctx.onnx"
    shutil.copyfile(produced, ctx)
    for name in context_files(produced):
        shutil.copyfile(produced.parent / name, ctx.parent / name)
    log.info("Olive quantized and compiled %s -> %s", converted, ctx)
    return ctx
