"""onnxruntime backend: the CPU target, ONNX MACs/parameter counting and static QDQ quantization."""

from archai_aml.ort.info import LayerInfo, OnnxInfo, onnx_model_info, write_layers_csv
from archai_aml.ort.quantize import quantize_qdq
from archai_aml.ort.target import OrtCpuTarget

__all__ = ["LayerInfo", "OnnxInfo", "OrtCpuTarget", "onnx_model_info", "quantize_qdq", "write_layers_csv"]
