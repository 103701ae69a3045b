"""MACs and parameters counted from an ONNX graph, with a per-layer CSV.

MACs (multiply-accumulates) are counted for the layers that do the arithmetic of a CNN, from the shapes
that ONNX shape inference gives (symbolic dimensions are fixed first: ``input_shapes`` when given, else
batch 1):

* ``Conv`` (also ``FusedConv``, ``ConvInteger``, ``QLinearConv``): ``prod(output) * (C_in / group) * prod(kernel)``;
  grouped and depthwise convolutions fall out of the ``C_in / group`` factor;
* ``ConvTranspose``: ``prod(input) * (C_out / group) * prod(kernel)``;
* ``Gemm``: ``M * N * K``; ``MatMul`` (also ``MatMulInteger``, ``QLinearMatMul``): ``prod(output) * K``.

Shapes that inference cannot give (onnxruntime's fused operators in a converted model) are taken from one
onnxruntime run on zeros. Layers in a blocked layout (``optimization_level="all"``, NCHWc) are not
counted correctly: count the float export or the quantized model instead.

Bias additions, normalization, activations, pooling and resizing are not counted (the common convention of
thop/fvcore and of ``snpe-dlc-viewer``'s MACs column).

Parameters are the elements of the graph's initializers that hold weights: floating-point initializers,
and integer ones that feed ``DequantizeLinear`` as data (the int8 weights / int32 biases of a QDQ model).
Left out: integer initializers otherwise (shapes, axes, indices), rank-0 scalars (constants such as
``x * 0.5``), quantization scales and zero points, and the non-data inputs of ``Resize``/``Upsample``/
``Clip``/``Pad`` (scales, bounds, pads).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from archai_aml.errors import TargetError

__all__ = ["LayerInfo", "OnnxInfo", "load_onnx", "onnx_io", "onnx_model_info", "write_layers_csv"]

log = logging.getLogger(__name__)

_CONV = {"Conv": 1, "FusedConv": 1, "ConvInteger": 1, "QLinearConv": 3}
_MATMUL = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3), "FusedMatMul": (0, 1)}
# (op_type -> input positions that are settings, not weights)
_NON_WEIGHT_INPUTS = {
    "QuantizeLinear": {1, 2},
    "DequantizeLinear": {1, 2},
    "Resize": {1, 2, 3},
    "Upsample": {1},
    "Clip": {1, 2},
    "Pad": {1, 2, 3},
    "QLinearConv": {1, 2, 4, 5, 6, 7},
    "QLinearMatMul": {1, 2, 4, 5, 6, 7},
    "ConvInteger": {2, 3},
    "MatMulInteger": {2, 3},
}
_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}


@dataclass(frozen=True)
class LayerInfo:
    """One node of the graph: its output shape, MACs (None where the shape is unknown) and parameters."""

    name: str
    op_type: str
    output_shape: list[int] | None
    macs: int | None
    params: int


@dataclass(frozen=True)
class OnnxInfo:
    macs: int
    params: int
    layers: list[LayerInfo]
    unknown_macs_layers: list[str]


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Load an ONNX file or raise :class:`TargetError` saying what is wrong with it."""
    p = Path(path)
    if not p.is_file():
        raise TargetError(f"ONNX model {p} does not exist: check the path (or that the download finished)")
    try:
        return onnx.load(str(p))
    except Exception as exc:  # protobuf DecodeError and friends
        raise TargetError(
            f"{p} is not a readable ONNX model ({type(exc).__name__}: {exc}): "
            "re-export it, or re-download it if it may be truncated"
        ) from exc


def _fix_input_shapes(model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]] | None) -> None:
    initializers = {init.name for init in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in initializers or not inp.type.HasField("tensor_type"):
            continue
        dims = inp.type.tensor_type.shape.dim
        given = (input_shapes or {}).get(inp.name)
        if given is not None:
            if len(given) != len(dims):
                raise TargetError(
                    f"input {inp.name!r} has rank {len(dims)} but input_shapes gives {list(given)}: "
                    "pass a shape of the model's rank"
                )
            for d, v in zip(dims, given, strict=True):
                if d.HasField("dim_value") and d.dim_value != v:
                    raise TargetError(
                        f"input {inp.name!r} has fixed dimension {d.dim_value} but input_shapes gives {v}"
                    )
                d.ClearField("dim_param")
                d.dim_value = int(v)
            continue
        for i, d in enumerate(dims):
            if not d.HasField("dim_value"):
                if i == 0:
                    d.ClearField("dim_param")
                    d.dim_value = 1
                else:
                    log.warning(
                        "input %s has a symbolic dimension %d (%s): MACs depending on it are unknown; "
                        "pass input_shapes",
                        inp.name,
                        i,
                        d.dim_param or "?",
                    )


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    # ONNX's own inference with data propagation. (onnxruntime's symbolic shape inference is not used: when it
    # fails it saves ``sym_shape_infer_temp.onnx`` and external-data files into the current directory.)
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise TargetError(f"ONNX shape inference failed: {exc}") from exc


def _shape_map(model: onnx.ModelProto) -> dict[str, list[int] | None]:
    shapes: dict[str, list[int] | None] = {}
    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            shapes.setdefault(vi.name, None)
            continue
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [int(d.dim_value) for d in dims]
        else:
            shapes.setdefault(vi.name, None)
    for init in model.graph.initializer:
        shapes[init.name] = [int(d) for d in init.dims]
    return shapes


def _shapes_by_running(model: onnx.ModelProto, names: Sequence[str]) -> dict[str, list[int]]:
    """Shapes of intermediate tensors from one onnxruntime run on zeros (for operators that shape
    inference does not know, such as onnxruntime's fused ``com.microsoft`` operators)."""
    import onnxruntime as ort

    work = onnx.ModelProto()
    work.CopyFrom(model)
    initializers = {init.name for init in work.graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    for inp in work.graph.input:
        if inp.name in initializers:
            continue
        dims = inp.type.tensor_type.shape.dim
        if not all(d.HasField("dim_value") for d in dims):
            return {}
        dtype = helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
        feeds[inp.name] = np.zeros([d.dim_value for d in dims], dtype=dtype)
    present = {o.name for o in work.graph.output}
    wanted = [n for n in dict.fromkeys(names) if n]
    for name in wanted:
        if name not in present:
            work.graph.output.append(onnx.ValueInfoProto(name=name))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    try:
        session = ort.InferenceSession(work.SerializeToString(), so, providers=["CPUExecutionProvider"])
        values = session.run(wanted, feeds)
    except Exception as exc:
        log.debug("could not run the model to find tensor shapes: %s", exc)
        return {}
    return {name: [int(d) for d in np.shape(v)] for name, v in zip(wanted, values, strict=True)}


def _prod(values: Sequence[int]) -> int:
    return int(math.prod(values))


def _node_macs(node: onnx.NodeProto, shapes: Mapping[str, list[int] | None]) -> int | None:
    """MACs of one node, 0 for ops that are not counted, None where a needed shape is unknown."""

    def shape(i: int, *, output: bool = False) -> list[int] | None:
        names = node.output if output else node.input
        return shapes.get(names[i]) if i < len(names) and names[i] else None

    op = node.op_type
    if op in _CONV:
        out, w = shape(0, output=True), shape(_CONV[op])
        if out is None or w is None:
            return None
        return _prod(out) * _prod(w[1:])
    if op == "ConvTranspose":
        x, w = shape(0), shape(1)
        if x is None or w is None:
            return None
        return _prod(x) * _prod(w[1:])
    if op == "Gemm":
        a, out = shape(0), shape(0, output=True)
        if a is None or out is None:
            return None
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        k = a[0] if trans_a else a[1]
        return _prod(out) * k
    if op in _MATMUL:
        a, out = shape(_MATMUL[op][0]), shape(0, output=True)
        if a is None or out is None:
            return None
        return _prod(out) * a[-1]
    return 0


def _weight_initializers(model: onnx.ModelProto) -> dict[str, int]:
    """Initializer name -> element count for the initializers counted as parameters."""
    inits = {init.name: init for init in model.graph.initializer}
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in model.graph.node:
        for pos, name in enumerate(node.input):
            if name in inits:
                uses.setdefault(name, []).append((node.op_type, pos))
    counted: dict[str, int] = {}
    for name, init in inits.items():
        if len(init.dims) == 0:
            continue  # a scalar constant, not a learned tensor
        node_uses = uses.get(name, [])
        as_dq_data = any(op == "DequantizeLinear" and pos == 0 for op, pos in node_uses)
        as_weight = [u for u in node_uses if u[1] not in _NON_WEIGHT_INPUTS.get(u[0], set())]
        if as_dq_data or (init.data_type in _FLOAT_TYPES and as_weight):
            counted[name] = _prod(init.dims)
    return counted


def onnx_model_info(
    model: str | Path | onnx.ModelProto, *, input_shapes: Mapping[str, Sequence[int]] | None = None
) -> OnnxInfo:
    """Count MACs and parameters of an ONNX model (see the module docstring for what is counted)."""
    proto = load_onnx(model) if isinstance(model, (str, Path)) else model
    work = onnx.ModelProto()
    work.CopyFrom(proto)
    _fix_input_shapes(work, input_shapes)
    inferred = _infer(work)
    shapes = _shape_map(inferred)
    missing = [n for n in inferred.graph.node if _node_macs(n, shapes) is None]
    if missing:
        names = [t for n in missing for t in (*n.input, *n.output)]
        shapes.update(_shapes_by_running(work, names))
    weights = _weight_initializers(inferred)
    seen: set[str] = set()
    layers: list[LayerInfo] = []
    unknown: list[str] = []
    for i, node in enumerate(inferred.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        macs = _node_macs(node, shapes)
        if macs is None:
            unknown.append(name)
        params = 0
        for inp in node.input:
            if inp in weights and inp not in seen:
                seen.add(inp)
                params += weights[inp]
        out_shape = shapes.get(node.output[0]) if node.output else None
        layers.append(LayerInfo(name, node.op_type, out_shape, macs, params))
    if unknown:
        log.warning(
            "MACs of %d layer(s) are unknown (shapes could not be inferred): %s; pass input_shapes",
            len(unknown),
            ", ".join(unknown[:5]),
        )
    return OnnxInfo(
        macs=sum(layer.macs or 0 for layer in layers),
        params=sum(weights.values()),
        layers=layers,
        unknown_macs_layers=unknown,
    )


def write_layers_csv(layers: Sequence[LayerInfo], path: str | Path) -> Path:
    """CSV with columns name, op_type, output_shape (JSON), macs (empty where unknown), params."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["name", "op_type", "output_shape", "macs", "params"])
        for layer in layers:
            w.writerow(
                [
                    layer.name,
                    layer.op_type,
                    json.dumps(layer.output_shape) if layer.output_shape is not None else "",
                    "" if layer.macs is None else layer.macs,
                    layer.params,
                ]
            )
    return out


def onnx_io(onnx_path: Path) -> tuple[str, list[int], list[str]]:
    """Name and dims of the model's single input (symbolic dims as 1) and its output names."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise TargetError(f"the target converts models with one input; {onnx_path.name} has {len(inputs)}")
    dims = [d.dim_value if d.dim_value > 0 else 1 for d in inputs[0].type.tensor_type.shape.dim]
    return inputs[0].name, dims, [o.name for o in model.graph.output]
