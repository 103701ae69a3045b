"""Status-store throughput: get / merge / query (100 rows) per second on each backend, and HTTP requests.

Starts its own Azurite (``archai_aml.testing.azurite.run_azurite``; ``make azurite`` installs it) and an
embedded store in a temporary folder, fills one partition with 100 rows, then times a fixed number of each
operation, one after the other from one thread. The HTTP requests are counted with an azure-core per-call
policy on the Azure store's clients.

    python bench/store_ops.py [--gets 1000] [--merges 500] [--queries 200]

The last line printed is one JSON object: ``embedded_ops_per_s`` and ``azure_ops_per_s`` (dicts by
operation), ``requests_per_query_100`` (plus ``requests_per_op`` for the Azure store).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.core.pipeline.policies import SansIOHTTPPolicy

from archai_aml.config import StoreConfig
from archai_aml.store import Store, open_store
from archai_aml.testing.azurite import run_azurite

ROWS = 100
PARTITION = "bench"


class CountRequests(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Counts the HTTP requests the SDK sends (a per-call policy: retries are not counted twice)."""

    def __init__(self) -> None:
        self.count = 0

    def on_request(self, request: Any) -> None:
        self.count += 1


def fill(store: Store) -> list[str]:
    names = [f"model-{i:04d}" for i in range(ROWS)]
    for i, name in enumerate(names):
        store.replace(
            PARTITION,
            name,
            {
                "status": "complete" if i % 2 else "pending",
                "val_iou": 0.5 + i / 1000,
                "epochs": i,
                "note": "x",
            },
        )
    return names


def timed(count: int, op: Callable[[int], object]) -> tuple[float, float]:
    """(ops per second, seconds) for ``count`` calls of ``op(i)``."""
    start = time.perf_counter()
    for i in range(count):
        op(i)
    seconds = time.perf_counter() - start
    return count / seconds, seconds


def measure(store: Store, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    names = fill(store)
    results: dict[str, tuple[float, float]] = {}
    results["get"] = timed(args.gets, lambda i: store.get(PARTITION, names[i % ROWS]))
    results["merge"] = timed(args.merges, lambda i: store.merge(PARTITION, names[i % ROWS], {"counter": i}))

    def query(_: int) -> None:
        rows = store.query(PARTITION)
        if len(rows) != ROWS:
            raise RuntimeError(f"query returned {len(rows)} rows, expected {ROWS}")

    results["query"] = timed(args.queries, query)
    return results


def count_requests(counter: CountRequests, op: Callable[[], object]) -> int:
    before = counter.count
    op()
    return counter.count - before


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--merges", type=int, default=500)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        with open_store(
            StoreConfig(backend="embedded", path=Path(tmp) / "store", table_name="bench")
        ) as store:
            embedded = measure(store, args)

    counter = CountRequests()
    with run_azurite() as azurite:
        config = azurite.store_config(table_name="bench", container_name="bench")
        with open_store(config, per_call_policies=[counter], progress=False) as store:
            azure = measure(store, args)
            requests = {
                "get": count_requests(counter, lambda: store.get(PARTITION, "model-0001")),
                "merge": count_requests(
                    counter, lambda: store.merge(PARTITION, "model-0001", {"counter": -1})
                ),
                "query": count_requests(counter, lambda: store.query(PARTITION)),
            }
            rows = len(store.query(PARTITION))

    print(
        f"store_ops: {ROWS} rows in one partition; one thread; {platform.processor() or platform.machine()}"
    )
    print(f"ops: get x{args.gets}, merge x{args.merges}, query (all {rows} rows) x{args.queries}")
    print()
    header = f"{'operation':<10} {'embedded ops/s':>15} {'azurite ops/s':>15} {'azurite HTTP req/op':>20}"
    print(header)
    print("-" * len(header))
    for op in ("get", "merge", "query"):
        print(f"{op:<10} {embedded[op][0]:>15.1f} {azure[op][0]:>15.1f} {requests[op]:>20d}")
    print()
    print(f"HTTP requests for one query of {rows} rows against Azurite: {requests['query']}")
    summary = {
        "embedded_ops_per_s": {op: round(v[0], 1) for op, v in embedded.items()},
        "azure_ops_per_s": {op: round(v[0], 1) for op, v in azure.items()},
        "requests_per_query_100": requests["query"],
        "requests_per_op": requests,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
