"""Runner-fleet scaling: 1, 2 and 4 runner processes on 40 work items of fixed cost.

Each case uses a fresh table of the embedded store (``--azurite`` adds a 4-runner case on Azurite, which
this script starts and stops). 20 benchmark-only rows each need two work items: ``convert`` (the
fixed-cost target's convert sleeps ``--cost`` seconds; quantize and info cost nothing) then one latency
``benchmark`` run (``--cost`` seconds): 40 items. Runners are ``python -m archai_aml.runner runner``
processes with their own quantization-lock folder (as if on separate hosts); they are started first and
the clock starts when all have written their heartbeat, just before the rows are inserted, so process
start-up is not counted.

- makespan ratio: (time from the first row insert to the end of the last item) / (40 x cost / runners).
- requests per item: every store request the runners made over their whole life (idle polls, heartbeats,
  leases, results, blobs, usage rows) divided by 40.
- duplicates: work items whose target call ran more than once (from the target's journal), must be 0.

The last line printed is one JSON object: ``makespan_ratio`` (by runner count), ``requests_per_item``
(4 runners, embedded), ``duplicates`` (all cases); with ``--azurite`` also ``makespan_ratio_azurite_4``,
``requests_per_item_azurite`` and ``http_requests_per_item_azurite`` (HTTP requests the runners sent).
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
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archai_aml.config import StoreConfig  # noqa: E402
from archai_aml.store import job_environment, open_store  # noqa: E402
from archai_aml.testing.fixed_cost import tiny_model_bytes  # noqa: E402

EXP = "bench"
ROWS = 20  # x 2 items each = 40 work items


def run_case(store_config: StoreConfig, runners: int, cost: float, work: Path) -> dict[str, float]:
    work.mkdir(parents=True)
    journal = work / "journal.jsonl"
    env = dict(os.environ)
    env.update(job_environment(store_config, include_secrets=True))
    env["PYTHONPATH"] = str(ROOT)
    procs = []
    for i in range(runners):
        cmd = [
            sys.executable, "-m", "archai_aml.runner", "runner", "--target", f"fixed:cost={cost},journal={journal}",
            "--experiment", EXP, "--benchmark-only", "--max-benchmark-runs", "1", "--working", str(work / f"w{i}"),
            "--lock-dir", str(work / f"host{i}"), "--lease-ttl", "10", "--poll-interval", "0.1",
            "--stats", str(work / f"stats{i}.json"),
        ]  # fmt: skip
        log = open(work / f"log{i}.txt", "wb")  # noqa: SIM115 - lives as long as the process
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work))
    with open_store(store_config) as store:
        beats = store.with_table(f"{store.table_name}runners")
        deadline = time.monotonic() + 60
        while len(beats.query(EXP)) < runners:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"runners did not start: see {work}/log*.txt")
            time.sleep(0.05)
        model = tiny_model_bytes(size=8)
        t0 = time.time()
        for i in range(ROWS):
            store.upload_bytes(EXP, f"id_{i:03d}", "model.onnx", model)
            store.create(EXP, f"id_{i:03d}", {"status": "new", "shape": "[1, 3, 8, 8]"})
        deadline = time.monotonic() + 240
        while len(store.query(EXP, status="complete")) < ROWS:
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for the rows to complete")
            # the makespan comes from the journal: poll slowly so the watcher does not compete with the
            # runners and the store for the two shared cores
            time.sleep(0.5)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=30)
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    done = [j for j in lines if j["end"] is not None and j["op"] in ("convert", "benchmark")]
    started = [j for j in lines if j["end"] is None and j["op"] in ("convert", "benchmark")]
    counts = Counter((j["row"], j["op"]) for j in done)
    duplicates = sum(c - 1 for c in counts.values()) + (len(started) - len(done))
    makespan = max(j["end"] for j in done) - t0
    ideal = 2 * ROWS * cost / runners
    stats = [json.loads((work / f"stats{i}.json").read_text()) for i in range(runners)]
    requests = sum(s["requests"] for s in stats)
    by_method: Counter[str] = Counter()
    http_by_method: Counter[str] = Counter()
    for s in stats:
        by_method.update(s["requests_by_method"])
        http_by_method.update(s.get("http_by_method") or {})
    http = sum(s.get("http_requests") or 0 for s in stats)
    return {
        "runners": runners,
        "items": len(done),
        "makespan_s": makespan,
        "ideal_s": ideal,
        "ratio": makespan / ideal,
        "requests": requests,
        "requests_per_item": requests / (2 * ROWS),
        "duplicates": duplicates,
        "per_runner_items": sorted(s["items"] for s in stats),
        "by_method": dict(by_method),
        "http_per_item": http / (2 * ROWS) if http else float("nan"),
        "http_by_method": dict(http_by_method),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cost", type=float, default=0.5, help="seconds per work item (default 0.5)")
    parser.add_argument("--azurite", action="store_true", help="also run 4 runners on Azurite")
    args = parser.parse_args()
    results: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="runner-fleet-") as tmp, ExitStack() as stack:
        for n in (1, 2, 4):
            cfg = StoreConfig(backend="embedded", path=Path(tmp) / f"store{n}", table_name=f"bench{n}")
            results.append(("embedded", run_case(cfg, n, args.cost, Path(tmp) / f"case{n}")))
        if args.azurite:
            from archai_aml.testing.azurite import run_azurite

            azurite = stack.enter_context(run_azurite())
            cfg = azurite.store_config(table_name="benchaz", container_name="benchaz")
            results.append(("azurite", run_case(cfg, 4, args.cost, Path(tmp) / "caseaz")))
    print(f"runner fleet: {2 * ROWS} work items of {args.cost}s (20 rows x convert + benchmark)")
    print(f"{'store':<9} {'runners':>7} {'items':>5} {'makespan s':>10} {'ideal s':>7} {'ratio':>6} "
          f"{'requests':>8} {'req/item':>8} {'http/item':>9} {'dup':>4}  items per runner")  # fmt: skip
    for store_name, r in results:
        print(
            f"{store_name:<9} {r['runners']:>7} {r['items']:>5} {r['makespan_s']:>10.2f} {r['ideal_s']:>7.2f} "
            f"{r['ratio']:>6.3f} {r['requests']:>8} {r['requests_per_item']:>8.1f} {r['http_per_item']:>9.1f} "
            f"{r['duplicates']:>4}  "
            f"{r['per_runner_items']}"
        )
    four = next(r for s, r in results if s == "embedded" and r["runners"] == 4)
    print("requests by method (4 runners, embedded):", json.dumps(four["by_method"], sort_keys=True))
    duplicates = int(sum(r["duplicates"] for _, r in results))
    assert duplicates == 0, f"{duplicates} work items ran more than once"
    summary = {
        "makespan_ratio": {str(r["runners"]): round(r["ratio"], 3) for s, r in results if s == "embedded"},
        "requests_per_item": round(four["requests_per_item"], 2),
        "duplicates": duplicates,
    }
    if args.azurite:
        az = next(r for s, r in results if s == "azurite")
        summary["makespan_ratio_azurite_4"] = round(az["ratio"], 3)
        summary["requests_per_item_azurite"] = round(az["requests_per_item"], 2)
        summary["http_requests_per_item_azurite"] = round(az["http_per_item"], 2)
        print(
            "HTTP requests by method (4 runners, Azurite):", json.dumps(az["http_by_method"], sort_keys=True)
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
