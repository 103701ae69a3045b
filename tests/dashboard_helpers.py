"""Rows for the dashboard tests and the benchmark: an experiment with training rows, its latency partition,
runner heartbeats and device usage, written through the store protocol (any backend)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from archai_aml.runner.settings import runners_store
from archai_aml.runner.usage import record_usage, usage_store
from archai_aml.store.base import Store

#: What a hostile row holds in its id and error: markup, an event attribute and a javascript: URL. Each
#: would set ``window.__pwned`` (and the title) if it ran.
HOSTILE_ID = "<script>window.__pwned=1;document.title='pwned'</script><img src=x onerror=window.__pwned=2>"
HOSTILE_ERROR = (
    "convert: <img src=x onerror=\"window.__pwned=3;document.title='pwned'\"> "
    '<a href="javascript:window.__pwned=4">javascript:window.__pwned=4</a> <script>window.__pwned=5</script>'
)


def seed_experiment(store: Store, experiment: str, models: int, *, iterations: int = 2) -> list[str]:
    """``models`` trained rows (``val_iou``, ``iteration``) in ``experiment`` and their latency rows
    (``mean``) in ``<experiment>-latency``; every fifth latency row is simulated, one row is in error,
    one latency row is leased by a live runner and one by a runner whose heartbeat is old. Returns the ids."""
    now = datetime.now(timezone.utc)
    names = [f"id_{i:04d}" for i in range(models)]
    latency = f"{experiment}-latency"
    for i, name in enumerate(names):
        iteration = 1 + i * iterations // max(1, models)
        store.create(
            experiment,
            name,
            {"status": "complete", "val_iou": 0.3 + 0.6 * ((i * 37) % 101) / 100, "iteration": iteration,
             "epochs": 1.0, "batch": f"train_{iteration}"},
        )  # fmt: skip
        values: dict[str, object] = {
            "status": "complete",
            "mean": 1.0 + (i * 53) % 97 / 10,
            "benchmark_only": True,
            "node": "hostA",
            "sources": json.dumps({"mean": "cpu target: onnxruntime 1.x on x86-64"}),
        }
        if i % 5 == 4:
            values["latency_simulated"] = True
        store.create(latency, name, values)
    if models >= 3:
        store.merge(latency, names[1], {"status": "error", "error": "benchmark 1: the model did not load"})
        store.merge(
            latency,
            names[2],
            {"status": "running benchmark", "lease_owner": "hostA:1:aaaa", "lease_token": "t0ken",
             "lease_expires": now + timedelta(seconds=40)},
        )  # fmt: skip
    runners = runners_store(store)
    runners.merge(
        latency, "hostA:1:aaaa",
        {"node": "hostA", "device": "cpu@hostA", "target": "cpu", "state": "working", "item": names[2] if
         models >= 3 else "", "last_seen": now},
    )  # fmt: skip
    runners.merge(
        latency, "hostB:7:bbbb",
        {"node": "hostB", "device": "cpu@hostB", "target": "cpu", "state": "working", "item": "",
         "last_seen": now - timedelta(hours=2)},
    )  # fmt: skip
    start = now - timedelta(minutes=30)
    record_usage(
        usage_store(store), device="cpu@hostA", node="hostA", start=start, end=start + timedelta(minutes=6),
        row=names[0] if names else "", experiment=latency, item="benchmark",
    )  # fmt: skip
    return names
