"""Tiny real ONNX segmentation models for the runner tests, built with onnx.helper (no torch import)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from archai_aml.store import Store


def tiny_model_bytes(classes: int = 7, size: int = 16, seed: int = 0) -> bytes:
    """A 1x1 convolution from 3 channels to ``classes`` logits on 1x3xSIZExSIZE inputs."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((classes, 3, 1, 1)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["input", "w"], ["output"])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, classes, size, size])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def add_rows(
    store: Store,
    experiment: str,
    count: int,
    *,
    size: int = 16,
    model: bytes | None = None,
    **columns: Any,
) -> list[str]:
    """Upload a model and create a ``new`` row for each of ``count`` models; returns their names."""
    data = model if model is not None else tiny_model_bytes(size=size)
    names = []
    for i in range(count):
        name = f"id_{i:03d}"
        store.upload_bytes(experiment, name, "model.onnx", data)
        values = {"status": "new", "shape": json.dumps([1, 3, size, size])}
        values.update(columns)
        store.create(experiment, name, values)
        names.append(name)
    return names


def journal(path: Any, *, finished: bool = True) -> list[dict[str, Any]]:
    """The fixed-cost target's journal lines: finished calls (or only the start lines)."""
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        return []
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [j for j in lines if (j["end"] is not None) == finished]
