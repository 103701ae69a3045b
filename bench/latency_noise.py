"""How much the cpu target's latency figures move when the same model is measured again.

Exports ``--models`` random models of the face-segmentation space (examples/face_segmentation, 64 px,
depths 2-3, channels 8/16/24, as bench/search_cost.py), quantizes each as a runner does (static QDQ int8),
then benchmarks every model ``--repeats`` times, interleaved (model 1..N, then again), with one intra-op
thread and with onnxruntime's default thread count. A first pass over the models is not counted (a cold
process measured every model slower). For each figure a runner stores or could store (``mean``,
``median``, ``min`` of one benchmark call's timed runs) and each thread setting it prints the median over
models of the relative spread ``(max - min) / median`` of the repeats, its largest value, and the mean
coefficient of variation.

    python bench/latency_noise.py [--models 10] [--repeats 5] [--iterations 50]

The last line is JSON: ``{"threads_1": {"mean": {...}, "median": {...}, "min": {...}}, "threads_default":
{...}, "load_average": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "face_segmentation"))
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    import numpy as np
    import torch
    from search_space import SegmentationSearchSpace

    from archai_aml.ort.target import OrtCpuTarget

    torch.set_num_threads(1)
    space = SegmentationSearchSpace(seed=args.seed, depths=(2, 3), channels=(8, 16, 24))
    tmp = Path(tempfile.mkdtemp(prefix="latency_noise_"))
    quantizer = OrtCpuTarget(intra_op_num_threads=1, progress=False)
    calibration = [
        np.random.default_rng(i).standard_normal((1, 3, 64, 64)).astype(np.float32) for i in range(4)
    ]
    paths = []
    for i in range(args.models):
        onnx_path = tmp / f"m{i}.onnx"
        model = space.random_sample().arch.eval()
        torch.onnx.export(model, torch.rand(1, 3, 64, 64), str(onnx_path), opset_version=13, dynamo=False,
                          input_names=["input"])  # fmt: skip
        paths.append(quantizer.quantize(onnx_path, calibration, tmp / f"q{i}"))
    targets = {
        "threads_1": OrtCpuTarget(intra_op_num_threads=1, progress=False),
        "threads_default": OrtCpuTarget(progress=False),
    }
    figures: dict[str, dict[str, list[list[float]]]] = {
        k: {c: [[] for _ in paths] for c in ("mean", "median", "min")} for k in targets
    }
    for r in range(args.repeats + 1):
        for key, target in targets.items():
            for i, path in enumerate(paths):
                b = target.benchmark(path, iterations=args.iterations, warmup=5)
                if r == 0:
                    continue  # the uncounted first pass
                figures[key]["mean"][i].append(b.mean_ms)
                figures[key]["median"][i].append(b.median_ms)
                figures[key]["min"][i].append(min(b.samples_ms))
    out: dict[str, object] = {}
    print(f"{args.models} models x {args.repeats} repeats, {args.iterations} timed runs each")
    print(f"{'threads':16} {'figure':7} {'median spread':>14} {'max spread':>11} {'mean CV':>8}")
    for key, cols in figures.items():
        out[key] = {}
        for col, per_model in cols.items():
            spreads = [(max(v) - min(v)) / statistics.median(v) for v in per_model]
            cvs = [statistics.stdev(v) / statistics.fmean(v) for v in per_model]
            row = {"median_spread": round(statistics.median(spreads), 4), "max_spread": round(max(spreads), 4),
                   "mean_cv": round(statistics.fmean(cvs), 4)}  # fmt: skip
            out[key][col] = row  # type: ignore[index]
            print(
                f"{key:16} {col:7} {row['median_spread']:14.3f} {row['max_spread']:11.3f} {row['mean_cv']:8.3f}"
            )
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
