"""onnxruntime backend: the CPU target. The ONNX tooling it shares with the other targets (MACs/parameter
counting, static QDQ quantization, export) lives in :mod:`archai_aml.onnx`. Names are imported on first
use (:mod:`archai_aml.ort.settings`, what the registry loads, imports no onnxruntime)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archai_aml._lazy import lazy_attributes

__all__ = [
    "OrtCpuTarget",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "OrtCpuTarget": "archai_aml.ort.target",
    },
)

if TYPE_CHECKING:
    from archai_aml.ort.target import OrtCpuTarget
