"""ONNX tooling shared by every target and by :mod:`archai_aml.testing`: MACs/parameter counting
(:mod:`~archai_aml.onnx.info`), static QDQ quantization with onnxruntime (:mod:`~archai_aml.onnx.quantize`)
and PyTorch -> ONNX export checked on onnxruntime (:mod:`~archai_aml.onnx.export`).

Imported lazily: ``import archai_aml.onnx`` loads neither onnx, onnxruntime nor torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ExportCheckError",
    "LayerInfo",
    "OnnxInfo",
    "check_onnx",
    "export_onnx",
    "onnx_model_info",
    "quantize_qdq",
    "write_layers_csv",
]

_LAZY = {
    "LayerInfo": "archai_aml.onnx.info",
    "OnnxInfo": "archai_aml.onnx.info",
    "onnx_model_info": "archai_aml.onnx.info",
    "write_layers_csv": "archai_aml.onnx.info",
    "quantize_qdq": "archai_aml.onnx.quantize",
    "ExportCheckError": "archai_aml.onnx.export",
    "check_onnx": "archai_aml.onnx.export",
    "export_onnx": "archai_aml.onnx.export",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archai_aml.onnx' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from archai_aml.onnx.export import ExportCheckError, check_onnx, export_onnx
    from archai_aml.onnx.info import LayerInfo, OnnxInfo, onnx_model_info, write_layers_csv
    from archai_aml.onnx.quantize import quantize_qdq
