"""Orchestration bench: overhead of one partial-training batch, and store requests per monitor poll.

1. Overhead: batches of 20 models whose training command does no work except marking its row complete (through
   the job helper), on the LocalJobRunner + embedded store. overhead = fetch_all wall time - the longest job's
   wall time (from the runner's node records). Target < 0.5 s; the anchor's monitor sleeps 20 s between polls.
2. Requests per poll, on a throw-away Azurite: one CompletionMonitor poll over batches of 5, 20 and 80 models,
   counted with an azure-core per-call policy on the AzureStore; the same for the anchor
   (archai 1.0.0 ``JobCompletionMonitor``, which reads each waiting model's row).

3. Spawn baseline: the time to start 20 bare Python processes (``python -c pass``) at once and wait for all
   of them (median of 5), on the same host in the same minute: ``overhead_ratio_vs_spawn`` = ``overhead_s``
   over it, a figure that means the same on a slow host and a fast one.

Run: ``python bench/orchestration.py``. The last line is JSON: ``overhead_s`` (median over 3 batches after a warm-up batch),
``spawn_s``, ``overhead_ratio_vs_spawn`` and ``requests_per_poll`` (by batch size), plus the anchor's figures.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from archai_aml.config import ArchaiAmlConfig, StoreConfig, TrainingConfig
from archai_aml.evaluators import AmlPartialTrainingEvaluator
from archai_aml.pipelines import CompletionMonitor, LocalJobRunner
from archai_aml.store import open_store
from archai_aml.store.azure.http_counter import HttpCounter
from archai_aml.testing.azurite import run_azurite

NOOP_JOB = """
import sys
from archai_aml.training.job import TrainingJob
with TrainingJob.from_env(model_id=sys.argv[1], use_mlflow=False) as job:
    job.report({"val_iou": 0.5})
"""
BATCHES = 3  # measured batches, after one warm-up batch
MODELS = 20


class LastJobReportsLate:
    """Pipeline status source for the request count: still running; its last job reports at the 3rd poll."""

    def __init__(self, writer: Any, model_id: str) -> None:
        self.writer, self.model_id, self.polls = writer, model_id, 0

    def status(self, job_id: str) -> str:
        self.polls += 1
        if self.polls == 3:
            self.writer.merge("exp", self.model_id, {"status": "complete"})
        return "Running"

    def node_statuses(self, job_id: str) -> dict[str, str]:
        return {}

    def wait_for_change(self, job_id: str, timeout: float) -> bool:
        time.sleep(timeout)
        return False


def make_models(n: int, prefix: str) -> list[Any]:
    import torch
    from archai.discrete_search.api.archai_model import ArchaiModel
    from archai.discrete_search.search_spaces.config import ArchConfig

    return [
        ArchaiModel(
            arch=torch.nn.Identity(), archid=f"{prefix}{i:03d}", metadata={"config": ArchConfig({"i": i})}
        )
        for i in range(n)
    ]


def bench_overhead(root: Path) -> list[dict[str, float]]:
    code = root / "code"
    code.mkdir()
    (code / "noop.py").write_text(NOOP_JOB)
    (root / "data").mkdir()
    cfg = ArchaiAmlConfig(
        experiment_name="bench",
        store=StoreConfig(path=root / "store"),
        training=TrainingConfig(
            code_dir=code,
            data=str(root / "data"),
            command=f"{sys.executable} noop.py {{model_id}}",
            local_root=root / "jobs",
            max_parallel=MODELS,
            gpus=[],
            poll_interval_min_s=0.05,
            poll_interval_max_s=20.0,
        ),
    )
    store = open_store(cfg.store)
    runner = LocalJobRunner.from_config(cfg, store.config)
    ev = AmlPartialTrainingEvaluator(cfg, root / "out", job_runner=runner, store=store, progress=False)
    rows = []
    for b in range(BATCHES + 1):
        for m in make_models(MODELS, f"b{b}_"):
            ev.send(m)
        start = time.perf_counter()
        metrics = ev.fetch_all()
        wall = time.perf_counter() - start
        assert all(v == 0.5 for v in metrics), metrics
        records = runner.records(ev.pipelines[-1])
        longest = max(r.wall_s or 0.0 for r in records)
        rows.append({"fetch_all_s": wall, "longest_job_s": longest, "overhead_s": wall - longest})
    store.close()
    return rows


def bench_spawn(count: int = MODELS, repeats: int = 5) -> float:
    """Median seconds to start ``count`` bare Python processes at once and wait for all of them."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", "pass"]) for _ in range(count)]
        for p in procs:
            p.wait()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_requests(sizes: list[int]) -> tuple[dict[str, float], dict[str, float]]:
    from archai.common.monitor import JobCompletionMonitor
    from archai.common.store import ArchaiStore
    from azure.data.tables import TableClient, TableServiceClient

    ours: dict[str, float] = {}
    anchor: dict[str, float] = {}
    with run_azurite() as azurite:
        for n in sizes:
            cfg = azurite.store_config(table_name=f"bench{n}")
            counter = HttpCounter()
            with open_store(cfg) as writer, open_store(cfg, per_call_policies=[counter]) as store:
                ids = [f"id_{n}_{i:03d}" for i in range(n)]
                for i, m in enumerate(ids):
                    # the batch is done except one model, so the monitor polls several times before it ends
                    writer.merge("exp", m, {"batch": "b1", "status": "training" if i == 0 else "complete"})
                store.get("exp", ids[0])  # first use creates the table if missing: not a poll's cost
                counter.counts.clear()

                mon = CompletionMonitor(
                    store,
                    LastJobReportsLate(writer, ids[0]),
                    "exp",
                    poll_interval_min_s=0.01,
                    poll_interval_max_s=0.02,
                    progress=False,
                )
                result = mon.wait(ids, "b1")
                ours[str(n)] = counter.total / result.polls

            # the anchor: ArchaiStore on the same Azurite, counting requests of one JobCompletionMonitor poll
            anchor_counter = HttpCounter()

            class AzuriteArchaiStore(ArchaiStore):  # type: ignore[misc]
                def _get_status_table_service(self) -> Any:
                    return TableServiceClient.from_connection_string(conn_str=azurite.connection_string)

            table = f"anchor{n}"
            astore = AzuriteArchaiStore("devstoreaccount1", azurite.account_key, table_name=table)
            aids = [f"id_{i:03d}" for i in range(n)]
            for m in aids:
                e = astore.get_status(m)
                e["status"] = "training"
                astore.merge_status_entity(e)
            # the same table through a client that counts its requests
            astore.table_client = TableClient.from_connection_string(
                azurite.connection_string, table_name=table, per_call_policies=[anchor_counter]
            )
            monitor = JobCompletionMonitor(astore, None, ["val_iou"], pipeline_id=None, timeout=1)
            anchor_counter.counts.clear()
            monitor._check_entity_status(list(aids), {})  # one poll of JobCompletionMonitor.wait
            anchor[str(n)] = float(anchor_counter.total)
    return ours, anchor


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_overhead(Path(tmp))
    print(f"\nOrchestration overhead: {MODELS} no-op models per batch, LocalJobRunner + embedded store")
    print(f"{'batch':>5} {'fetch_all (s)':>14} {'longest job (s)':>16} {'overhead (s)':>13}")
    for i, r in enumerate(rows):
        note = "  (warm-up: imports azure-ai-ml once per process; not counted)" if i == 0 else ""
        print(f"{i:>5} {r['fetch_all_s']:>14.3f} {r['longest_job_s']:>16.3f} {r['overhead_s']:>13.3f}{note}")
    overhead = statistics.median(r["overhead_s"] for r in rows[1:])
    print(f"median overhead: {overhead:.3f} s (target < 0.5 s; the anchor's monitor sleeps 20 s per poll)")
    spawn = bench_spawn()
    print(f"{MODELS} bare Python processes started and waited for: {spawn:.3f} s (median of 5); "
          f"overhead / spawn = {overhead / spawn:.2f}")  # fmt: skip

    sizes = [5, 20, 80]
    ours, anchor = bench_requests(sizes)
    print("\nStore requests per monitor poll, Azurite")
    print(f"{'models':>6} {'archai-aml':>11} {'anchor':>7}")
    for n in sizes:
        print(f"{n:>6} {ours[str(n)]:>11.2f} {anchor[str(n)]:>7.0f}")
    print(
        json.dumps(
            {
                "overhead_s": round(overhead, 4),
                "spawn_s": round(spawn, 4),
                "overhead_ratio_vs_spawn": round(overhead / spawn, 3),
                "requests_per_poll": {k: round(v, 3) for k, v in ours.items()},
                "anchor_requests_per_poll": anchor,
                "overhead_per_batch_s": [round(r["overhead_s"], 4) for r in rows[1:]],
                "warmup_overhead_s": round(rows[0]["overhead_s"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
