"""Tiny models for the onnxruntime target tests: a hand-built ONNX graph and torch exports."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper


def _init(name: str, shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)


def hand_built_model(path: Path) -> Path:
    """Conv, depthwise Conv, Resize, ConvTranspose, Reshape, Gemm and MatMul on a 1x3x8x8 input.

    MACs by hand: Conv 3->4 k3 (1*4*8*8 * 3*9 = 6912), depthwise 4 k3 (1*4*8*8 * 1*9 = 2304),
    ConvTranspose 4->2 k2 s2 (input 1*4*8*8 * 2*2*2 = 2048), Gemm 1x512 by 512x5 (2560), MatMul 1x5 by 5x3
    (15): 13839 in all. Parameters: 108+4 + 36+4 + 32+2 + 2560+5 + 15 = 2766 (the Resize scales, the
    Reshape shape and the scalar 0.5 are not parameters).
    """
    rng = np.random.default_rng(0)
    inits = [
        _init("w1", (4, 3, 3, 3), rng),
        _init("b1", (4,), rng),
        _init("w2", (4, 1, 3, 3), rng),
        _init("b2", (4,), rng),
        numpy_helper.from_array(np.array([1, 1, 1, 1], dtype=np.float32), "scales"),
        _init("w3", (4, 2, 2, 2), rng),
        _init("b3", (2,), rng),
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array(np.array([1, 512], dtype=np.int64), "flat_shape"),
        _init("w4", (5, 512), rng),
        _init("b4", (5,), rng),
        _init("w5", (5, 3), rng),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="dwconv", pads=[1, 1, 1, 1], group=4),
        helper.make_node("Resize", ["c2", "", "scales"], ["rs"], name="resize", mode="nearest"),
        helper.make_node("ConvTranspose", ["rs", "w3", "b3"], ["ct"], name="convt", strides=[2, 2]),
        helper.make_node("Mul", ["ct", "half"], ["m"], name="mul"),
        helper.make_node("Reshape", ["m", "flat_shape"], ["flat"], name="reshape"),
        helper.make_node("Gemm", ["flat", "w4", "b4"], ["g"], name="gemm", transB=1),
        helper.make_node("MatMul", ["g", "w5"], ["output"], name="matmul"),
    ]
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


class TinySegNet(torch.nn.Module):
    """A small conv encoder-decoder (no BatchNorm, so ONNX initializers match torch parameters)."""

    def __init__(self, num_classes: int = 3, width: int = 8) -> None:
        super().__init__()
        self.enc1 = torch.nn.Conv2d(3, width, 3, padding=1)
        self.down = torch.nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.dw = torch.nn.Conv2d(2 * width, 2 * width, 3, padding=1, groups=2 * width)
        self.up = torch.nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.head = torch.nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.enc1(x))
        b = torch.relu(self.dw(torch.relu(self.down(a))))
        return self.head(torch.relu(self.up(b)) + a)


class TinyClassifier(torch.nn.Module):
    """Conv -> global pool -> Linear: exported as Conv, GlobalAveragePool, Flatten, Gemm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1, groups=3)
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(self.conv(x), 1), 1))


def export(
    model: torch.nn.Module, path: Path, shape: tuple[int, ...], *, dynamic_batch: bool = False
) -> Path:
    """Export with the TorchScript exporter (fast and quiet enough for tests)."""
    model.eval()
    x = torch.randn(*shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            opset_version=17,
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None,
        )
    return path


def seg_net(
    path: Path, *, size: int = 16, dynamic_batch: bool = False, seed: int = 0
) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(seed)
    net = TinySegNet()
    return export(net, path, (1, 3, size, size), dynamic_batch=dynamic_batch), net
