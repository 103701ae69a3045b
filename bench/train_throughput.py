"""Aggregate training throughput of a batch of 8 models: the anchor's way vs. this project's way.

Both ways partially train the same 8 architectures of the face-segmentation example search space at
256x256 (procedural data) by running the real ``examples/face_segmentation/train.py`` jobs through
the real training pipeline (``start_training_pipeline``) on the real local executor
(``archai_aml.pipelines.local.LocalJobRunner``) against an embedded store:

- **anchor**: one job at a time, fp32 (on a GPU with PyTorch's default TF32 convolutions, no cuDNN
  autotuning), contiguous tensors, batch 16, a plain loader (2 workers on a GPU, none on the CPU);
- **ours**: several jobs at once (CPU: ``--cpu-jobs`` processes sharing the cores, one torch thread each;
  GPU: ``--gpu-jobs`` jobs sharing one GPU through the executor's ``jobs_per_gpu``), with on a GPU bf16
  autocast, channels-last, cuDNN autotuning and a loader with several pinned, persistent, prefetching
  workers per job; batch 16 as well. On the CPU, fp32 contiguous (bf16 autocast and channels-last were
  measured slower on CPUs without bf16 instructions: see docs/training.md).

Throughput = total training images / time during which at least one training loop was running (the union
of the loops' wall-clock intervals, as each job writes them to its ``metrics.json``): process start-up,
validation and ONNX export are outside the loops in both ways. The loops do include their warm-up steps.

Last line: ``{"cpu_images_per_s", "cpu_speedup", "gpu_images_per_s", "gpu_speedup"}`` (null when not
measured; images/s is this project's way, speedup = ours / anchor), plus ``cpu_batch_wall_speedup`` /
``gpu_batch_wall_speedup``: the anchor's wall time for the whole batch (first submission to last job done)
over ours. On a CPU that one job's loop already saturates, the loop-only speedup cannot exceed about 1;
the wall-clock one shows what running jobs side by side buys (one job's start-up, validation and export
overlap another's training).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "face_segmentation"
sys.path.insert(0, str(EXAMPLE))

from search_space import SegmentationSearchSpace  # noqa: E402

from archai_aml.config import ArchaiAmlConfig, StoreConfig, TrainingConfig  # noqa: E402
from archai_aml.pipelines.local import LocalJobRunner  # noqa: E402
from archai_aml.pipelines.training import start_training_pipeline  # noqa: E402
from archai_aml.store import open_store  # noqa: E402

BASE_COMMAND = (
    "python train.py --data ${{inputs.data}} --output ${{outputs.output}} --model-id {model_id} "
    "--experiment {experiment} --epochs {epochs} --no-mlflow --no-progress"
)


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of ``[start, end]`` intervals."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(intervals):
        if cur_end is None or start > cur_end:
            if cur_end is not None and cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None and cur_start is not None:
        total += cur_end - cur_start
    return total


def run_way(
    name: str,
    *,
    work: Path,
    models: list[Any],
    data: Path,
    flags: str,
    concurrency: int,
    gpu: bool,
    timeout: float,
) -> dict[str, Any]:
    """Train ``models`` as one pipeline on the local executor; return aggregate throughput figures."""
    experiment = f"bench_{name}"
    store_config = StoreConfig(backend="embedded", path=work / "store", table_name="bench")
    config = ArchaiAmlConfig(
        experiment_name=experiment,
        store=store_config,
        training=TrainingConfig(
            code_dir=EXAMPLE,
            command=f"{BASE_COMMAND} {flags}",
            data=str(data),
            max_parallel=concurrency,
            jobs_per_gpu=concurrency,
            gpus=[0] if gpu else [],
            local_root=work / f"jobs_{name}",
            timeout_seconds=timeout,
        ),
    )
    runner = LocalJobRunner.from_config(config, store_config)
    start = time.perf_counter()
    with open_store(store_config) as store:
        job, model_ids = start_training_pipeline(
            f"throughput bench ({name})", runner, store, models, config, 1.0, work / f"out_{name}"
        )
        status = runner.wait(str(job.name), timeout=timeout)
        wall = time.perf_counter() - start
        rows = {m: store.get(experiment, m) or {} for m in model_ids}
    runner.close()
    failed = {m: r.get("error", r.get("status")) for m, r in rows.items() if r.get("status") != "complete"}
    if status != "Completed" or failed:
        logs = {m: runner.logs(str(job.name), m)[-1500:] for m in list(failed)[:1]}
        raise RuntimeError(f"{name}: pipeline {status}, failed models {failed}; log tail: {logs}")
    per_job = []
    for m in model_ids:
        metrics = json.loads(
            (
                config.training.local_root / "datastores" / "models" / experiment / m / "metrics.json"
            ).read_text()
        )
        per_job.append(metrics)
    images = sum(j["train_images"] for j in per_job)
    busy = union_seconds([(j["loop_start"], j["loop_end"]) for j in per_job])
    return {
        "way": name,
        "jobs": len(per_job),
        "concurrency": concurrency,
        "images": images,
        "busy_s": busy,
        "wall_s": wall,
        "images_per_s": images / busy,
        "per_job_images_per_s": [j["train_images_per_s"] for j in per_job],
        "val_iou": [j["val_iou"] for j in per_job],
        "precision": per_job[0]["precision"],
        "channels_last": per_job[0]["channels_last"],
    }


def write_data(folder: Path, train_length: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "procedural.json").write_text(
        json.dumps({"num_classes": 7, "seed": 0, "lengths": {"train": train_length, "val": 16}})
    )
    return folder


def print_table(results: list[dict[str, Any]]) -> None:
    header = f"{'device':6} {'way':7} {'jobs':>4} {'at once':>7} {'precision':9} {'ch-last':7} {'images':>7} {'busy s':>8} {'images/s':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['device']:6} {r['way']:7} {r['jobs']:>4} {r['concurrency']:>7} {r['precision']:9} "
            f"{'yes' if r['channels_last'] else 'no':7} {r['images']:>7.0f} {r['busy_s']:>8.1f} {r['images_per_s']:>9.1f}"
        )


def compare(
    device: str,
    results: list[dict[str, Any]],
    figures: dict[str, float | None],
    *,
    work: Path,
    models: list[Any],
    data: Path,
    anchor_flags: str,
    ours_flags: str,
    concurrency: int,
    timeout: float,
) -> None:
    """Run the anchor's way (one job at a time) and ours (``concurrency`` at once) on ``device`` ("cpu" or
    "gpu"); append both to ``results`` and set ``figures[f"{device}_..."]``."""
    ways = {}
    for way, flags, at_once in (("anchor", anchor_flags, 1), ("ours", ours_flags, concurrency)):
        ways[way] = run_way(
            f"{device}_{way}",
            work=work,
            models=models,
            data=data,
            flags=flags,
            concurrency=at_once,
            gpu=device == "gpu",
            timeout=timeout,
        )
        ways[way].update(device=device, way=way)
    anchor, ours = ways["anchor"], ways["ours"]
    results += [anchor, ours]
    figures[f"{device}_images_per_s"] = round(ours["images_per_s"], 2)
    figures[f"{device}_speedup"] = round(ours["images_per_s"] / anchor["images_per_s"], 3)
    # the whole batch, submit to last job done: what concurrency buys on a CPU that one job already
    # saturates inside its training loop (start-up, validation and export of one job overlap another)
    figures[f"{device}_batch_wall_speedup"] = round(anchor["wall_s"] / ours["wall_s"], 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--cpu-steps", type=int, default=2, help="training steps per model on the CPU")
    p.add_argument("--cpu-jobs", type=int, default=2, help="concurrent jobs on the CPU (ours)")
    p.add_argument("--gpu-steps", type=int, default=60, help="training steps per model on the GPU")
    p.add_argument("--gpu-jobs", type=int, default=4, help="jobs sharing the GPU (ours)")
    p.add_argument(
        "--gpu-workers", type=int, help="loader workers per GPU job (ours); default cores/jobs - 1"
    )
    p.add_argument("--skip-cpu", action="store_true")
    p.add_argument("--seed", type=int, default=0, help="seed of the 8 sampled architectures")
    p.add_argument("--timeout", type=float, default=280.0, help="seconds allowed per way")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import os

    import torch

    space = SegmentationSearchSpace(num_classes=7, seed=args.seed)
    models = [space.random_sample() for _ in range(args.models)]
    params = [sum(q.numel() for q in m.arch.parameters()) for m in models]
    print(
        f"{args.models} models of the face-segmentation search space (seed {args.seed}), "
        f"{min(params) / 1e3:.0f}k-{max(params) / 1e3:.0f}k parameters, {args.image_size}x{args.image_size}, "
        f"batch {args.batch_size}; jobs run train.py through LocalJobRunner"
    )
    common = f"--image-size {args.image_size} --batch-size {args.batch_size} --val-length 16"
    results: list[dict[str, Any]] = []
    figures: dict[str, float | None] = {
        "cpu_images_per_s": None,
        "cpu_speedup": None,
        "gpu_images_per_s": None,
        "gpu_speedup": None,
        "cpu_batch_wall_speedup": None,
        "gpu_batch_wall_speedup": None,
    }
    with tempfile.TemporaryDirectory(prefix="train_throughput_") as tmp:
        work = Path(tmp)
        if not args.skip_cpu:
            cpu_flags = f"{common} --device cpu --num-workers 0 --precision fp32 --channels-last off"
            compare(
                "cpu",
                results,
                figures,
                work=work,
                models=models,
                data=write_data(work / "data_cpu", args.cpu_steps * args.batch_size),
                anchor_flags=cpu_flags,
                ours_flags=f"{cpu_flags} --threads 1",
                concurrency=args.cpu_jobs,
                timeout=args.timeout,
            )
        if torch.cuda.is_available():
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
            workers = args.gpu_workers or max(1, cpus // args.gpu_jobs - 1)
            compare(
                "gpu",
                results,
                figures,
                work=work,
                models=models,
                data=write_data(work / "data_gpu", args.gpu_steps * args.batch_size),
                anchor_flags=f"{common} --device cuda --precision fp32 --channels-last off --num-workers 2 "
                "--no-cudnn-benchmark",
                ours_flags=f"{common} --device cuda --precision bf16 --channels-last on --num-workers {workers}",
                concurrency=args.gpu_jobs,
                timeout=args.timeout,
            )
        else:
            print("no CUDA device here: GPU figures not measured (null)")
    print()
    print_table(results)
    for r in results:
        print(
            f"{r['device']} {r['way']}: per-job loop images/s {[round(v, 1) for v in r['per_job_images_per_s']]}, "
            f"wall {r['wall_s']:.0f} s for the batch (start-up, validation, export included)"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
