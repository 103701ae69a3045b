"""Features of an ONNX graph for latency prediction.

MACs, parameters and output shapes come from :func:`archai_aml.onnx.info.onnx_model_info` (the same count the
runners write to the ``macs``/``params`` columns); this module groups them per operator kind and adds what a
backend's tiling depends on: activation bytes (output elements x 4), kernel sizes, strides, channel counts
and the smallest spatial size. Every feature is a plain count (a float); the predictor decides how to
transform them.

The groups: ``conv`` (dense convolutions), ``dwconv`` (depthwise: ``group == C_in``, ``group > 1``),
``convt`` (``ConvTranspose``), ``matmul`` (``Gemm``/``MatMul``), ``resize`` (``Resize``/``Upsample``),
``pool``, ``eltwise`` (element-wise arithmetic and activations), ``concat`` (``Concat``/``Split``/
``Slice``/``Reshape``/``Transpose``: data movement), ``other``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx

from archai_aml.onnx.info import load_onnx, onnx_model_info

__all__ = ["FEATURE_NAMES", "GROUPS", "graph_features"]

GROUPS = ("conv", "dwconv", "convt", "matmul", "resize", "pool", "eltwise", "concat", "other")
_KIND = {
    "ConvTranspose": "convt",
    "Gemm": "matmul",
    "MatMul": "matmul",
    "Resize": "resize",
    "Upsample": "resize",
    **dict.fromkeys(("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"), "pool"),
    **dict.fromkeys(
        ("Add", "Mul", "Sub", "Div", "Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu", "HardSigmoid",
         "HardSwish", "BatchNormalization", "Softmax", "Erf", "Pow", "Sqrt", "Exp"),
        "eltwise",
    ),
    **dict.fromkeys(("Concat", "Split", "Slice", "Reshape", "Transpose", "Flatten", "Pad"), "concat"),
}  # fmt: skip
_PER_GROUP = ("count", "macs", "params", "act_bytes")
_GLOBAL = (
    "macs", "params", "act_bytes", "input_pixels", "nodes", "conv_kernel_mean", "conv_stride2",
    "conv_cin_max", "conv_cout_max", "spatial_min", "macs_per_act_byte",
)  # fmt: skip
#: The feature names, in the order of :func:`graph_features`' vector.
FEATURE_NAMES: tuple[str, ...] = tuple(f"total_{g}" for g in _GLOBAL) + tuple(
    f"{group}_{what}" for group in GROUPS for what in _PER_GROUP
)


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _kind(node: onnx.NodeProto, weight_shape: Sequence[int] | None) -> str:
    if node.op_type in ("Conv", "FusedConv", "ConvInteger", "QLinearConv"):
        group = int(_attr(node, "group", 1))  # type: ignore[call-overload]
        if group > 1 and weight_shape is not None and len(weight_shape) > 1 and weight_shape[1] == 1:
            return "dwconv"
        return "conv"
    return _KIND.get(node.op_type, "other")


def graph_features(
    model: str | Path | bytes | onnx.ModelProto, *, input_shapes: Mapping[str, Sequence[int]] | None = None
) -> dict[str, float]:
    """The features of ``model`` (a path, serialized bytes or a ``ModelProto``), keyed by
    :data:`FEATURE_NAMES`."""
    if isinstance(model, bytes):
        proto = onnx.load_from_string(model)
    elif isinstance(model, (str, Path)):
        proto = load_onnx(model)
    else:
        proto = model
    info = onnx_model_info(proto, input_shapes=input_shapes)
    weights = {init.name: list(init.dims) for init in proto.graph.initializer}
    groups = {g: dict.fromkeys(_PER_GROUP, 0.0) for g in GROUPS}
    kernels: list[tuple[float, float]] = []  # (kernel elements, macs) of convolutions
    stride2 = 0
    cin_max = cout_max = 0
    spatial_min = math.inf
    act_total = 0.0
    nodes = list(proto.graph.node)
    if len(nodes) != len(info.layers):  # onnx_model_info keeps node order; anything else is a bug
        raise ValueError(f"{len(nodes)} nodes but {len(info.layers)} layers counted")
    for node, layer in zip(nodes, info.layers, strict=True):
        w = weights.get(node.input[1]) if len(node.input) > 1 else None
        kind = _kind(node, w)
        act = 4.0 * math.prod(layer.output_shape) if layer.output_shape else 0.0
        g = groups[kind]
        g["count"] += 1
        g["macs"] += float(layer.macs or 0)
        g["params"] += float(layer.params)
        g["act_bytes"] += act
        act_total += act
        if kind in ("conv", "dwconv", "convt") and w is not None and len(w) >= 3:
            k = float(math.prod(w[2:]))
            kernels.append((k, float(layer.macs or 0)))
            strides = _attr(node, "strides", [1])
            if any(int(s) >= 2 for s in strides):  # type: ignore[attr-defined]
                stride2 += 1
            cout_max = max(cout_max, int(w[0]))
            cin_max = max(cin_max, int(w[1]) * int(_attr(node, "group", 1)))  # type: ignore[call-overload]
        if layer.output_shape and len(layer.output_shape) == 4:
            spatial_min = min(spatial_min, layer.output_shape[2] * layer.output_shape[3])
    pixels = 0.0
    init_names = set(weights)
    for inp in proto.graph.input:
        if inp.name in init_names:
            continue
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        given = (input_shapes or {}).get(inp.name)
        dims = list(given) if given is not None else [d or 1 for d in dims]
        pixels += float(math.prod(dims))
    kernel_macs = sum(m for _, m in kernels)
    kernel_mean = (
        sum(k * m for k, m in kernels) / kernel_macs
        if kernel_macs > 0
        else (sum(k for k, _ in kernels) / len(kernels) if kernels else 0.0)
    )
    out: dict[str, float] = {
        "total_macs": float(info.macs),
        "total_params": float(info.params),
        "total_act_bytes": act_total,
        "total_input_pixels": pixels,
        "total_nodes": float(len(nodes)),
        "total_conv_kernel_mean": kernel_mean,
        "total_conv_stride2": float(stride2),
        "total_conv_cin_max": float(cin_max),
        "total_conv_cout_max": float(cout_max),
        "total_spatial_min": float(0 if spatial_min == math.inf else spatial_min),
        "total_macs_per_act_byte": info.macs / act_total if act_total > 0 else 0.0,
    }
    for group, values in groups.items():
        for what in _PER_GROUP:
            out[f"{group}_{what}"] = values[what]
    return {name: float(out[name]) for name in FEATURE_NAMES}
