"""A runner and a writing client through a 5 s and a 30 s storage outage.

This script starts Azurite persisted to a temporary folder and, for each outage length, on a fresh table
and container: starts one ``python -m archai_aml.runner runner`` process on the fixed-cost target
(``--cost`` seconds per work item), inserts 6 benchmark-only rows (a convert and 2 benchmark runs each:
18 work items), and once the runner has finished its first item stops Azurite for the outage length, then
starts it again on the same ports with its data. Meanwhile a client in this process merges a counter into
its own row every 0.1 s, from before the outage until after it, with the store's default retries. Both
use the stores' default settings (what a user gets).

- client_errors: client writes that raised (goal 0), and whether the last value written is the stored one;
- duplicate_benchmarks: benchmark runs the target began beyond 2 per row (from its journal; goal 0);
- rows_complete / rows_total: rows ``complete`` when the case ends (goal: all);
- runner_alive: the runner process was still running after each outage, and exited 0 on SIGTERM.

The last line printed is one JSON object with keys ``client_errors``, ``duplicate_benchmarks``,
``rows_complete``, ``rows_total``, ``runner_alive``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archai_aml.config import StoreConfig  # noqa: E402
from archai_aml.store import job_environment, open_store  # noqa: E402
from archai_aml.testing.azurite import Azurite, run_azurite  # noqa: E402
from archai_aml.testing.fixed_cost import tiny_model_bytes  # noqa: E402

EXP = "bench"
ROWS = 6
RUNS = 2


class Writer(threading.Thread):
    """Merges an increasing counter into one row every 0.1 s until stopped."""

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(name="writer", daemon=True)
        self.store = open_store(config)
        self.halt = threading.Event()
        self.writes = 0
        self.errors = 0
        self.longest = 0.0
        self.last = -1

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            start = time.monotonic()
            try:
                self.store.merge("client", "counter", {"n": n})
                self.writes += 1
                self.last = n
            except Exception:
                self.errors += 1
            self.longest = max(self.longest, time.monotonic() - start)
            n += 1
            self.halt.wait(0.1)


def journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def run_case(azurite: Azurite, outage: float, cost: float, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True)
    tag = f"o{int(outage)}x"
    config = azurite.store_config(table_name=f"bench{tag}", container_name=f"bench-{tag}")
    journal_path = work / "journal.jsonl"
    env = dict(os.environ, **job_environment(config, include_secrets=True), PYTHONPATH=str(ROOT))
    cmd = [
        sys.executable, "-m", "archai_aml.runner", "runner", "--target", f"fixed:cost={cost},journal={journal_path}",
        "--experiment", EXP, "--benchmark-only", "--max-benchmark-runs", str(RUNS), "--working", str(work / "w"),
        "--lock-dir", str(work / "lock"), "--lease-ttl", "10", "--poll-interval", "0.2",
    ]  # fmt: skip
    log = open(work / "runner.log", "wb")  # noqa: SIM115 - lives as long as the process
    runner = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    with open_store(config) as store:
        beats = store.with_table(f"{store.table_name}runners")
        deadline = time.monotonic() + 60
        while not beats.query(EXP):
            if time.monotonic() > deadline or runner.poll() is not None:
                raise SystemExit(f"the runner did not start: see {work}/runner.log")
            time.sleep(0.1)
        model = tiny_model_bytes(size=8)
        for i in range(ROWS):
            store.upload_bytes(EXP, f"id_{i:03d}", "model.onnx", model)
            store.create(EXP, f"id_{i:03d}", {"status": "new", "shape": "[1, 3, 8, 8]"})
        writer = Writer(config)
        writer.start()
        deadline = time.monotonic() + 60
        while not [j for j in journal(journal_path) if j["end"] is not None]:
            if time.monotonic() > deadline:
                raise SystemExit("the runner did no work")
            time.sleep(0.05)
        t0 = time.monotonic()
        with azurite.outage(outage):
            pass
        back = time.monotonic()
        alive_after_outage = runner.poll() is None
        deadline = time.monotonic() + 150
        complete = 0
        while time.monotonic() < deadline:
            complete = len(store.query(EXP, status="complete"))
            if complete == ROWS or runner.poll() is not None:
                break
            time.sleep(0.2)
        finished = time.monotonic()
        time.sleep(0.5)  # the client writes a little after the last row too
        writer.halt.set()
        writer.join()
        stored = store.get("client", "counter")
        last_kept = stored is not None and stored.get("n") == writer.last
        writer.store.close()
        alive_at_end = runner.poll() is None
    runner.send_signal(signal.SIGTERM)
    try:
        code = runner.wait(timeout=90)
    except subprocess.TimeoutExpired:
        runner.kill()
        code = runner.wait()
    log.close()
    started = Counter(j["row"] for j in journal(journal_path) if j["op"] == "benchmark" and j["end"] is None)
    duplicates = sum(max(0, started[f"id_{i:03d}"] - RUNS) for i in range(ROWS))
    return {
        "outage_s": outage,
        "down_s": back - t0,
        "rows_complete": complete,
        "rows_total": ROWS,
        "benchmarks": sum(started.values()),
        "duplicate_benchmarks": duplicates,
        "client_writes": writer.writes,
        "client_errors": writer.errors + (0 if last_kept else 1),
        "client_longest_s": writer.longest,
        "finish_after_s": finished - back,
        "runner_alive": alive_after_outage and alive_at_end and code == 0,
        "runner_exit": code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cost", type=float, default=0.3, help="seconds per work item (default 0.3)")
    parser.add_argument("--outages", default="5,30", help="outage lengths in seconds (default 5,30)")
    args = parser.parse_args()
    outages = [float(x) for x in args.outages.split(",")]
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="store-outage-") as tmp,
        run_azurite(location=Path(tmp) / "az") as az,
    ):
        for outage in outages:
            results.append(run_case(az, outage, args.cost, Path(tmp) / f"case{int(outage)}"))
    print(
        f"store outage: 1 runner (fixed cost {args.cost}s/item), {ROWS} rows x (convert + {RUNS} benchmarks)"
    )
    print(
        f"{'outage s':>8} {'down s':>6} {'complete':>8} {'benchmarks':>10} {'dup':>4} {'writes':>6} "
        f"{'errors':>6} {'longest write s':>15} {'done after s':>12} {'runner alive':>12} {'exit':>4}"
    )
    for r in results:
        print(
            f"{r['outage_s']:>8.0f} {r['down_s']:>6.1f} {r['rows_complete']:>4}/{r['rows_total']:<3} "
            f"{r['benchmarks']:>10} {r['duplicate_benchmarks']:>4} {r['client_writes']:>6} {r['client_errors']:>6} "
            f"{r['client_longest_s']:>15.1f} {r['finish_after_s']:>12.1f} {str(r['runner_alive']):>12} "
            f"{r['runner_exit']:>4}"
        )
    summary = {
        "client_errors": sum(r["client_errors"] for r in results),
        "duplicate_benchmarks": sum(r["duplicate_benchmarks"] for r in results),
        "rows_complete": sum(r["rows_complete"] for r in results),
        "rows_total": sum(r["rows_total"] for r in results),
        "runner_alive": all(r["runner_alive"] for r in results),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
