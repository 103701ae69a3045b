"""Queue scaling: a runner fleet's cost per work item against the number of open rows.

For each backend (the embedded store, and Azurite, which this script starts and stops), each number of open
rows N (20, 200, 2,000, 10,000) and each fleet size (2 and 8 runner processes, each with its own
quantization-lock folder, as if on separate hosts), one experiment holds N open rows:

- min(N, 40) *head* rows (benchmark-only, fixed cost: a ``convert`` item and one ``benchmark`` item of
  ``--cost`` seconds each, a real tiny ONNX model in blob storage), written fresh for each fleet size;
- the rest *filler* rows (``new``, with a ``priority`` override of 1000, so that they come after the head;
  without a model: no runner gets to them in the measured window), open rows the queue has to hold.

The rows (and, where the queue index exists, their index entries) are written in bulk: one SQLite
transaction, or Azure entity-group transactions of 100 entities. The runners are started, do ``--items``
items (24: fewer than the head holds, whatever the fleet size), and once every runner has written its
heartbeat (so that it handles the signal) are stopped with SIGTERM (each finishes its item). 8 runners
share the host's cores, so their figures include their contention for the CPU (the same at every N). Figures, per backend, N and fleet size:

- overhead per item: for each runner, the time from the start of its first target call to the end of its
  last, minus the time spent in target calls, summed over the runners, over (items - 1 per runner): the
  runner's own time per item (poll, lease, downloads, uploads, release, index update), process start-up
  not counted;
- requests per item: every store request the runners made over their life (``--stats``), over the items;
- duplicates: target calls that ran more than once for a row, from the fixed-cost target's journal.

The last line is JSON: ``overhead_ms_per_item`` and ``requests_per_item`` (backend -> N -> fleet size),
``overhead_growth`` (backend -> fleet size -> the value at the largest N over the one at 20) and
``duplicates``. ``--backends`` and ``--sizes`` pick a subset (e.g. to measure an older checkout cheaply).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archai_aml.config import StoreConfig  # noqa: E402
from archai_aml.store import Store, job_environment, open_store  # noqa: E402
from archai_aml.testing.fixed_cost import tiny_model_bytes  # noqa: E402

try:  # absent before the queue index: the bench then measures the full-queue runner
    from archai_aml.runner.queue_index import META, QueueIndex, index_store
except ImportError:  # pragma: no cover - older checkouts only
    QueueIndex = None  # type: ignore[assignment,misc]

HEAD = 40
FILLER_PRIORITY = 1000.0
SHAPE = "[1, 3, 8, 8]"


def bulk_write(store: Store, partition: str, rows: Mapping[str, Mapping[str, Any]]) -> None:
    """Upsert many entities of one partition at once, encoded as the store encodes them (a bench shortcut
    below the protocol, which writes one entity per request)."""
    if not rows:
        return
    if hasattr(store, "db_path"):  # the embedded store: one transaction
        from archai_aml.store.embedded.codec import _encode_columns, _format_datetime

        items = list(rows.items())
        ts = _format_datetime(datetime.now(timezone.utc))

        def write(conn: Any) -> None:
            conn.execute("UPDATE version_counter SET value = value + ? WHERE id = 0", (len(items),))
            top = conn.execute("SELECT value FROM version_counter WHERE id = 0").fetchone()[0]
            first = top - len(items) + 1
            conn.executemany(
                "INSERT OR REPLACE INTO entities (tbl, partition, name, data, version, ts) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (store.table_name, partition, name, _encode_columns(values), first + i, ts)
                    for i, (name, values) in enumerate(items)
                ],
            )

        store._write(write)  # type: ignore[attr-defined]
        return
    from archai_aml.store.azure.codec import _to_table

    store._ensure_table()  # type: ignore[attr-defined]
    ops = [("upsert", {"PartitionKey": partition, "RowKey": n, **_to_table(v)}) for n, v in rows.items()]
    batches = [ops[i : i + 100] for i in range(0, len(ops), 100)]  # at most 100 per entity-group transaction
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store._table.submit_transaction, batches))  # type: ignore[attr-defined]


def write_rows(store: Store, exp: str, names: list[str], *, filler: bool) -> None:
    values: dict[str, dict[str, Any]] = {}
    for name in names:
        row: dict[str, Any] = {"status": "new", "shape": SHAPE, "benchmark_only": True}
        if filler:
            row["priority"] = FILLER_PRIORITY
        values[name] = row
    if not filler:
        model = tiny_model_bytes(size=8)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: store.upload_bytes(exp, n, "model.onnx", model), names))
    bulk_write(store, exp, values)
    if QueueIndex is not None:
        index = QueueIndex(store, exp, benchmark_only=True, max_benchmark_runs=1)
        entries: dict[str, dict[str, Any]] = {}
        for name, row in values.items():
            for lane, (key, priority) in index.entries({"name": name, **row}).items():
                entries[key] = {"row": name, "lane": lane, "priority": priority}
        table = index_store(store)
        bulk_write(table, exp, entries)
        table.replace(exp, META, {"built": datetime.now(timezone.utc), "entries": -1})  # no start-up rescan


def run_fleet(
    store_config: StoreConfig, exp: str, runners: int, items: int, cost: float, work: Path
) -> dict[str, Any]:
    work.mkdir(parents=True)
    journal = work / "journal.jsonl"
    env = dict(os.environ)
    env.update(job_environment(store_config, include_secrets=True))
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH") or str(ROOT)
    procs = []
    for i in range(runners):
        cmd = [
            sys.executable, "-m", "archai_aml.runner", "runner", "--target", f"fixed:cost={cost},journal={journal}",
            "--experiment", exp, "--benchmark-only", "--max-benchmark-runs", "1", "--working", str(work / f"w{i}"),
            "--lock-dir", str(work / f"host{i}"), "--lease-ttl", "30", "--poll-interval", "0.2",
            "--stats", str(work / f"stats{i}.json"),
        ]  # fmt: skip
        log = open(work / f"log{i}.txt", "wb")  # noqa: SIM115 - lives as long as the process
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work))

    def finished() -> list[dict[str, Any]]:
        try:
            text = journal.read_text()
        except FileNotFoundError:
            return []
        return [j for j in map(json.loads, text.splitlines()) if j["end"] is not None]

    deadline = time.monotonic() + 240
    with open_store(store_config) as store:
        beats = store.with_table(f"{store.table_name}runners")
        since = datetime.now(timezone.utc)

        def up() -> int:  # runners of this case that wrote their first heartbeat (signal handlers set)
            return sum(1 for b in beats.query(exp) if b.get("last_seen") and b["last_seen"] >= since)

        while sum(1 for j in finished() if j["op"] in ("convert", "benchmark")) < items or up() < runners:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"the runners did not do {items} items: see {work}/log*.txt")
            time.sleep(0.05)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    done = [j for j in lines if j["end"] is not None]
    started = [j for j in lines if j["end"] is None]
    counts = Counter((j["row"], j["op"]) for j in done)
    duplicates = sum(c - 1 for c in counts.values()) + (len(started) - len(done))
    gaps, gap_count, total_items = 0.0, 0, 0
    for pid in {j["pid"] for j in done}:
        mine = [j for j in done if j["pid"] == pid]
        n = sum(1 for j in mine if j["op"] in ("convert", "benchmark"))
        window = max(j["end"] for j in mine) - min(j["start"] for j in mine)
        gaps += window - sum(j["end"] - j["start"] for j in mine)
        gap_count += n - 1
        total_items += n
    stats = [json.loads((work / f"stats{i}.json").read_text()) for i in range(runners)]
    requests = sum(s["requests"] for s in stats)
    http = sum(s.get("http_requests") or 0 for s in stats)
    by_method: Counter[str] = Counter()
    for s in stats:
        by_method.update(s["requests_by_method"])
    return {
        "items": total_items,
        "overhead_ms": 1000 * gaps / max(gap_count, 1),
        "requests_per_item": requests / total_items,
        "http_per_item": http / total_items if http else None,
        "duplicates": duplicates,
        "by_method": dict(by_method),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cost", type=float, default=0.02, help="seconds per work item (default 0.02)")
    parser.add_argument("--items", type=int, default=24, help="items per case (default 24)")
    parser.add_argument("--sizes", default="20,200,2000,10000", help="open rows per case")
    parser.add_argument("--runners", default="2,8", help="fleet sizes")
    parser.add_argument("--backends", default="embedded,azurite")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    fleets = [int(x) for x in args.runners.split(",")]
    assert args.items + 2 * max(fleets) <= 2 * min(min(sizes), HEAD), "the head must hold every item started"
    results: dict[str, dict[int, dict[int, dict[str, Any]]]] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="queue-scale-") as tmp, ExitStack() as stack:
        for backend in args.backends.split(","):
            if backend == "embedded":
                cfg = StoreConfig(backend="embedded", path=Path(tmp) / "store", table_name="qscale")
            else:
                from archai_aml.testing.azurite import run_azurite

                azurite = stack.enter_context(run_azurite())
                cfg = azurite.store_config(table_name="qscale", container_name="qscale")
            results[backend] = {}
            with open_store(cfg) as store:
                for n in sizes:
                    exp = f"n{n}"
                    t = time.monotonic()
                    write_rows(store, exp, [f"fill_{i:05d}" for i in range(n - min(n, HEAD))], filler=True)
                    results[backend][n] = {}
                    for runners in fleets:
                        head = [f"head{runners}_{i:03d}" for i in range(min(n, HEAD))]
                        write_rows(store, exp, head, filler=False)
                        setup = time.monotonic() - t
                        work = Path(tmp) / f"{backend}-{n}-{runners}"
                        r = run_fleet(cfg, exp, runners, args.items, args.cost, work)
                        r["setup_s"] = setup
                        results[backend][n][runners] = r
                        print(
                            f"{backend:<9} N={n:>6} runners={runners}: {r['items']} items, "
                            f"{r['overhead_ms']:.1f} ms overhead/item, {r['requests_per_item']:.1f} requests/item, "
                            f"dup {r['duplicates']} (rows written in {setup:.1f} s)",
                            flush=True,
                        )
                        t = time.monotonic()
    print(
        f"\nqueue scaling: {args.items} items of {args.cost}s per case, {time.monotonic() - started:.0f} s in all"
    )
    print(f"{'store':<9} {'open rows':>9} {'runners':>7} {'items':>5} {'overhead ms/item':>16} {'req/item':>8} {'http/item':>9} {'dup':>4}")  # fmt: skip
    for backend, by_n in results.items():
        for n, by_r in by_n.items():
            for runners, r in by_r.items():
                http = f"{r['http_per_item']:.1f}" if r["http_per_item"] else "-"
                print(
                    f"{backend:<9} {n:>9} {runners:>7} {r['items']:>5} {r['overhead_ms']:>16.1f} "
                    f"{r['requests_per_item']:>8.1f} {http:>9} {r['duplicates']:>4}"
                )
    for backend, by_n in results.items():
        print(
            f"requests by method ({backend}, N={max(by_n)}, {fleets[-1]} runners):",
            json.dumps(by_n[max(by_n)][fleets[-1]]["by_method"], sort_keys=True),
        )
    duplicates = sum(
        r["duplicates"] for by_n in results.values() for by_r in by_n.values() for r in by_r.values()
    )
    low, high = min(sizes), max(sizes)
    summary = {
        "overhead_ms_per_item": {
            b: {
                str(n): {str(k): round(r["overhead_ms"], 1) for k, r in by_r.items()}
                for n, by_r in by_n.items()
            }
            for b, by_n in results.items()
        },
        "requests_per_item": {
            b: {
                str(n): {str(k): round(r["requests_per_item"], 2) for k, r in by_r.items()}
                for n, by_r in by_n.items()
            }
            for b, by_n in results.items()
        },
        "overhead_growth": {
            b: {str(k): round(by_n[high][k]["overhead_ms"] / by_n[low][k]["overhead_ms"], 3) for k in fleets}
            for b, by_n in results.items()
        },
        "duplicates": duplicates,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
