"""Small float ONNX models for the qnn target tests: a segmentation-shaped conv net (what the example
search space exports: Conv, BatchNormalization-free ReLU blocks, bilinear Resize, Concat, 1x1 classifier)
and the same net with an operator the HTP does not take (Hardmax)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def seg_model(size: int = 16, classes: int = 7, *, hardmax: bool = False, seed: int = 0) -> onnx.ModelProto:
    """1x3xSIZExSIZE -> 1xCLASSESxSIZExSIZE logits; with ``hardmax`` a Hardmax node named ``hardmax_0``
    over the classes ends the graph."""
    rng = np.random.default_rng(seed)

    def w(name: str, *shape: int) -> onnx.TensorProto:
        scale = 1.0 / np.sqrt(np.prod(shape[1:]))
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [
        w("w_stem", 8, 3, 3, 3), w("b_stem", 8), w("w_down", 16, 8, 3, 3), w("b_down", 16),
        w("w_up", 8, 24, 3, 3), w("b_up", 8), w("w_cls", classes, 8, 1, 1), w("b_cls", classes),
        numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales"),
    ]  # fmt: skip
    last = "logits_pre" if hardmax else "output"
    nodes = [
        helper.make_node("Conv", ["input", "w_stem", "b_stem"], ["s"], name="stem", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["s"], ["s_r"], name="stem_relu"),
        helper.make_node("Conv", ["s_r", "w_down", "b_down"], ["d"], name="down", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["d"], ["d_r"], name="down_relu"),
        helper.make_node("Resize", ["d_r", "", "scales"], ["u"], name="upsample", mode="linear"),
        helper.make_node("Concat", ["u", "s_r"], ["cat"], name="skip", axis=1),
        helper.make_node("Conv", ["cat", "w_up", "b_up"], ["up"], name="up", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["up"], ["up_r"], name="up_relu"),
        helper.make_node("Conv", ["up_r", "w_cls", "b_cls"], [last], name="classifier"),
    ]  # fmt: skip
    if hardmax:
        nodes.append(helper.make_node("Hardmax", [last], ["output"], name="hardmax_0", axis=1))
    graph = helper.make_graph(
        nodes,
        "seg",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, classes, size, size])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def seg_model_bytes(size: int = 16, *, hardmax: bool = False) -> bytes:
    return seg_model(size, hardmax=hardmax).SerializeToString()
