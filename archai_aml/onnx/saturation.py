"""A host-independent check of a QDQ model against onnxruntime's non-VNNI x86 int8 kernel.

onnxruntime picks its int8 kernel by CPUID, so a VNNI (or ARM) host cannot *run* the saturating path. This
module *computes* it in numpy from the model's actual integers: for every QDQ ``Conv`` with signed 8-bit
weights it takes the integer activations the model produces for given inputs (the ``QuantizeLinear``
outputs, read from an onnxruntime session without graph optimizations, where QDQ runs as float
arithmetic), shifts int8 activations to uint8 as onnxruntime does on x86 (activation + 128, zero point +
128), and forms what ``vpmaddubsw`` forms: the sum of two neighbouring u8 x s8 products along the
reduction axis, saturated to int16 (``MultiplyAccumulateCellU8S8Avx512Core`` in
microsoft/onnxruntime ``onnxruntime/core/mlas/lib/amd64/SymQgemmU8KernelAvx512.asm``; the AVX2 kernel
``QgemmU8S8KernelAvx2`` does the same on 256-bit registers). The difference between the saturated and the
exact pair sums, times the two scales, is the error that kernel adds to the Conv's output.

The reduction order is the im2col order of onnxruntime's NHWC ``QLinearConv`` (kernel row, kernel column,
input channel); for a 1x1 convolution it is the channel order in every layout. Whether *some* pair can
saturate does not depend on the order: with 7-bit weights (``reduce_range``) every pair is at most
2 * 255 * 64 = 32640 < 32767. Depthwise convolutions run on MLAS's int32 depthwise kernel and are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from archai_aml.errors import TargetError

__all__ = ["ConvSaturation", "emulate_u8s8_saturation"]

_I16 = (-32768, 32767)


@dataclass
class ConvSaturation:
    """One Conv under the saturating kernel: pair sums formed, how many saturated, the largest error this
    adds to an output value (float units) and the error itself (``delta``, NCHW like the Conv output)."""

    node: str
    pairs: int
    saturated: int
    max_abs_error: float
    delta: np.ndarray = field(repr=False)
    output: str = ""


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output}


def _attr(node: onnx.NodeProto, name: str, default: list[int] | int) -> list[int] | int:
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.ints else int(a.i)
    return default


def _im2col_nhwc(a: np.ndarray, kh: int, kw: int, stride: list[int], pads: list[int], dil: list[int],
                 pad_value: int) -> np.ndarray:  # fmt: skip
    """(C, H, W) -> (OH, OW, kh*kw*C) with the reduction axis ordered kernel row, column, channel."""
    c, h, w = a.shape
    p = np.pad(a, ((0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=pad_value)
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    cols = np.empty((oh, ow, kh, kw, c), dtype=np.int32)
    for y in range(kh):
        for x in range(kw):
            ys, xs = y * dil[0], x * dil[1]
            win = p[:, ys : ys + stride[0] * oh : stride[0], xs : xs + stride[1] * ow : stride[1]]
            cols[:, :, y, x, :] = win.transpose(1, 2, 0)
    return cols.reshape(oh, ow, kh * kw * c)


def emulate_u8s8_saturation(model_path: Path, feeds: Mapping[str, np.ndarray]) -> list[ConvSaturation]:
    """Every QDQ Conv with int8 weights of ``model_path`` on ``feeds``, under the saturating kernel."""
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    prod = _producers(model)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

    def const(name: str) -> np.ndarray:
        if name in inits:
            return inits[name]
        node = prod.get(name)
        if node is not None and node.op_type == "Constant":
            return numpy_helper.to_array(node.attribute[0].t)
        raise TargetError(f"{model_path.name}: {name} is not a constant")

    convs = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        dq_x, dq_w = prod.get(node.input[0]), prod.get(node.input[1])
        if dq_x is None or dq_w is None or dq_x.op_type != dq_w.op_type or dq_x.op_type != "DequantizeLinear":
            continue
        w = const(dq_w.input[0])
        if w.dtype != np.int8:
            continue  # U8U8: onnxruntime's kernel for it has no int16 pair sums
        convs.append((node, dq_x, dq_w, w))
    if not convs:
        return []
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    for node, dq_x, _, _ in convs:
        for name in (dq_x.input[0], node.output[0]):
            if name not in have:
                probe.graph.output.append(onnx.ValueInfoProto(name=name))
                have.add(name)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    values = dict(zip(names, sess.run(names, dict(feeds)), strict=True))
    out = []
    for node, dq_x, dq_w, w in convs:
        xq = values[dq_x.input[0]]
        sx = float(const(dq_x.input[1]))
        zx = int(const(dq_x.input[2])) if len(dq_x.input) > 2 and dq_x.input[2] else 0
        sw = np.atleast_1d(const(dq_w.input[1])).astype(np.float64)
        shift = 128 if xq.dtype == np.int8 else 0
        a = xq.astype(np.int32) + shift
        group = int(_attr(node, "group", 1))  # type: ignore[arg-type]
        m, cg, kh, kw = w.shape
        if group != 1 and group == m and cg == 1:
            continue  # depthwise: MLAS's int32 depthwise kernel
        stride = _attr(node, "strides", [1, 1])
        dil = _attr(node, "dilations", [1, 1])
        pads = _attr(node, "pads", [0, 0, 0, 0])
        delta_int: list[np.ndarray] = []
        pairs = saturated = 0
        for img in a:  # one image at a time: (OH, OW, M, K/2) stays small
            per_group = []
            for g in range(group):
                cols = _im2col_nhwc(img[g * cg : (g + 1) * cg], kh, kw, stride, pads, dil, zx + shift)  # type: ignore[arg-type]
                wg = (
                    w[g * (m // group) : (g + 1) * (m // group)].transpose(0, 2, 3, 1).reshape(m // group, -1)
                )
                k = cols.shape[-1]
                if k % 2:
                    cols = np.concatenate([cols, np.zeros((*cols.shape[:2], 1), np.int32)], axis=-1)
                    wg = np.concatenate([wg, np.zeros((wg.shape[0], 1), np.int8)], axis=-1)
                prods = cols[:, :, None, :] * wg.astype(np.int32)[None, None, :, :]
                sums = prods[..., 0::2] + prods[..., 1::2]
                clipped = np.clip(sums, *_I16)
                pairs += sums.size
                saturated += int(np.count_nonzero(clipped != sums))
                per_group.append((clipped - sums).sum(axis=-1))  # (OH, OW, M/g)
            delta_int.append(np.concatenate(per_group, axis=-1).transpose(2, 0, 1))
        scale = sx * (sw if sw.size > 1 else np.full(m, sw[0]))
        delta = np.stack(delta_int).astype(np.float64) * scale[None, :, None, None]
        out.append(
            ConvSaturation(
                node=node.name or node.output[0],
                pairs=pairs,
                saturated=saturated,
                max_abs_error=float(np.abs(delta).max()) if delta.size else 0.0,
                delta=delta,
                output=node.output[0],
            )
        )
    return out
