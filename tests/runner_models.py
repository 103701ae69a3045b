"""Rows of tiny real ONNX models for the runner tests, and the fixed-cost target's journal."""

from __future__ import annotations

import json
from typing import Any

from archai_aml.runner.fixed_cost import tiny_model_bytes
from archai_aml.store import Store


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
