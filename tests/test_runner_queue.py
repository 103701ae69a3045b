"""The work queue is a pure function of rows and runner capabilities: the anchor's priorities, leases,
subset, no-quantization, benchmark-only and JSON-only parsing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from archai_aml.errors import InvalidRowError
from archai_aml.runner.queue import (
    Capabilities,
    build_queue,
    items_for_row,
    parse_shape,
    subset_from_arg,
)
from archai_aml.store.leases import utcnow

CAPS = Capabilities(use_device=True, can_quantize=True, max_benchmark_runs=5)


def row(name: str, **cols: object) -> dict[str, object]:
    return {"partition": "e", "name": name, "_version": "1", "status": "new", **cols}


def converted(name: str, **cols: object) -> dict[str, object]:
    return row(name, macs=10, params=5, quantized=True, **cols)


def test_priorities_follow_the_anchor() -> None:
    assert [(i.kind, i.priority) for i in items_for_row(row("a"), CAPS)] == [("convert", 20)]
    runs = json.dumps([2.0, 2.0])
    assert [
        (i.kind, i.priority, i.run) for i in items_for_row(converted("a", total_inference_avg=runs), CAPS)
    ] == [
        ("benchmark", 32, 2),
        ("f1_onnx", 60, 0),
    ]
    done = json.dumps([2.0] * 5)
    items = items_for_row(converted("a", total_inference_avg=done, mean=2.0), CAPS)
    assert [(i.kind, i.priority) for i in items] == [
        ("f1_onnx", 60),
        ("f1_1k", 102.0),
        ("f1_1k_f", 120.0),
        ("f1_10k", 300.0),
    ]
    items = items_for_row(converted("a", total_inference_avg=done, mean=2.0, f1_onnx=0.5, f1_1k=0.4), CAPS)
    assert [i.kind for i in items] == ["f1_1k_f", "f1_10k"]


def test_row_priority_column_overrides() -> None:
    queue = build_queue([row("a"), converted("b", priority=0)], CAPS)
    assert [(i.name, i.kind, i.priority) for i in queue] == [("b", "benchmark", 0.0), ("a", "convert", 20)]


def test_capabilities_filter_work() -> None:
    no_quant = Capabilities(use_device=True, can_quantize=False)
    assert items_for_row(row("a"), no_quant) == []
    no_device = Capabilities(use_device=False, can_quantize=True)
    assert [i.kind for i in items_for_row(converted("a"), no_device)] == ["f1_onnx"]
    bench_only = Capabilities(use_device=True, benchmark_only=True, max_benchmark_runs=1)
    assert items_for_row(converted("a", total_inference_avg="[1.0]"), bench_only) == []
    assert items_for_row(converted("a", total_inference_avg="[1.0]", benchmark_only=True), CAPS)[0].kind == (
        "benchmark"
    )
    subset = Capabilities(subset=subset_from_arg("b, c"))
    assert [i.name for i in build_queue([row("a"), row("b"), row("c")], subset)] == ["b", "c"]


def test_done_error_and_live_leases_are_skipped() -> None:
    now = utcnow()
    rows = [
        row("complete", status="complete"),
        row("error", status="error", error="boom"),
        row("leased", lease_owner="x", lease_token="t", lease_expires=now + timedelta(seconds=30)),
        row("expired", lease_owner="x", lease_token="t", lease_expires=now - timedelta(seconds=1)),
        row("free"),
    ]
    assert [i.name for i in build_queue(rows, CAPS, now)] == ["expired", "free"]


def test_one_item_per_row_best_first() -> None:
    rows = [converted("a", total_inference_avg="[1.0]"), row("b"), converted("c")]
    queue = build_queue(rows, CAPS)
    assert [(i.name, i.kind) for i in queue] == [("b", "convert"), ("c", "benchmark"), ("a", "benchmark")]


def test_shapes_are_json_only(tmp_path: object) -> None:
    assert parse_shape(row("a", shape="[1, 3, 32, 32]")) == [[1, 3, 32, 32]]
    assert parse_shape(row("a", shape="[[1, 3, 8, 8], [1, 4]]")) == [[1, 3, 8, 8], [1, 4]]
    assert parse_shape(row("a")) is None
    with pytest.raises(InvalidRowError, match="not valid JSON"):
        parse_shape(row("a", shape="__import__('os').system('touch /tmp/pwned')"))
    with pytest.raises(InvalidRowError, match="not valid JSON"):
        parse_shape(row("a", shape="(1, 3, 32, 32)"))
    with pytest.raises(InvalidRowError, match="positive integers"):
        parse_shape(row("a", shape='[1, "3", 32]'))
    # an unreadable run list counts as no runs rather than crashing the queue
    assert items_for_row(converted("a", total_inference_avg="oops"), CAPS)[0].run == 0
