"""onnxruntime backend: the CPU target. The ONNX tooling it shares with the other targets (MACs/parameter
counting, static QDQ quantization, export) lives in :mod:`archai_aml.onnx`."""

from archai_aml.ort.target import OrtCpuTarget

__all__ = ["OrtCpuTarget"]
