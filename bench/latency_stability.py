"""Latency stability of the onnxruntime CPU target.

Exports a small conv encoder-decoder (1x3xSIZExSIZE) with torch to a temporary folder, then calls
``OrtCpuTarget.benchmark()`` REPEATS times (each call: a fresh session, warm-up runs, then ITERATIONS timed
runs). Prints each call's median / mean / stdev and the coefficient of variation (sample stdev / mean) of
the REPEATS medians, which is the figure the target is judged on (goal: under 3%). The CV of the means is
printed too, for information. The last line is JSON: ``{"cv": <cv of medians>, "median_ms": <median of
medians>, ...}``.

    python bench/latency_stability.py [--size 256] [--threads 1] [--iterations 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archai_aml.ort import OrtCpuTarget  # noqa: E402


class EncoderDecoder(torch.nn.Module):
    """Two stride-2 stages down, two transposed-conv stages up, a skip connection, a 1x1 head."""

    def __init__(self, width: int = 16, num_classes: int = 19) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int = 1) -> torch.nn.Sequential:
            return torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
                torch.nn.BatchNorm2d(cout),
                torch.nn.ReLU(),
            )

        self.stem = block(3, width)
        self.down1 = block(width, 2 * width, 2)
        self.down2 = block(2 * width, 4 * width, 2)
        self.mid = block(4 * width, 4 * width)
        self.up1 = torch.nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.up2 = torch.nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.head = torch.nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        d1 = self.down1(s)
        m = self.mid(self.down2(d1))
        u1 = torch.relu(self.up1(m)) + d1
        return self.head(torch.relu(self.up2(u1)) + s)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="intra_op_num_threads (pinned)")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-rounds", type=int, default=5, help="rounds per benchmark() call at most")
    parser.add_argument("--spinning", action="store_true", help="let idle pool threads spin")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="latency_stability_") as tmp:
        torch.manual_seed(0)
        model = EncoderDecoder().eval()
        onnx_path = Path(tmp) / "encdec.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (torch.randn(1, 3, args.size, args.size),),
                str(onnx_path),
                dynamo=False,
                input_names=["input"],
                output_names=["output"],
                opset_version=17,
            )
        target = OrtCpuTarget(
            args.threads, allow_spinning=args.spinning, max_rounds=args.max_rounds, progress=False
        )
        info = target.info(onnx_path, Path(tmp) / "info")
        print(
            f"model: conv encoder-decoder 1x3x{args.size}x{args.size}, {info.macs / 1e6:.1f} M MACs, "
            f"{info.params} params; threads={args.threads}, spinning={args.spinning}, "
            f"{args.repeats} benchmark() calls x {args.iterations} runs (+{args.warmup} warm-up)"
        )
        print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
        print(
            f"{'call':>4}  {'median_ms':>10}  {'mean_ms':>10}  {'stdev_ms':>9}  {'p10_ms':>8}  {'min_ms':>8}  "
            f"{'runs':>5}  {'seconds':>7}"
        )
        medians: list[float] = []
        means: list[float] = []
        p10s: list[float] = []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            r = target.benchmark(onnx_path, iterations=args.iterations, warmup=args.warmup)
            medians.append(r.median_ms)
            means.append(r.mean_ms)
            p10 = statistics.quantiles(r.samples_ms, n=10)[0]
            p10s.append(p10)
            print(
                f"{i + 1:>4}  {r.median_ms:>10.3f}  {r.mean_ms:>10.3f}  {r.stdev_ms:>9.3f}  {p10:>8.3f}  "
                f"{min(r.samples_ms):>8.3f}  {len(r.samples_ms):>5}  {time.perf_counter() - t0:>7.1f}"
            )
    cv = statistics.stdev(medians) / statistics.fmean(medians) if len(medians) > 1 else 0.0
    cv_means = statistics.stdev(means) / statistics.fmean(means) if len(means) > 1 else 0.0
    cv_p10 = statistics.stdev(p10s) / statistics.fmean(p10s) if len(p10s) > 1 else 0.0
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(
        f"CV of the {len(medians)} medians: {100 * cv:.2f}%  (goal < 3%)   CV of the means: {100 * cv_means:.2f}%"
    )
    print(
        json.dumps(
            {
                "cv": round(cv, 5),
                "median_ms": round(statistics.median(medians), 4),
                "cv_of_means": round(cv_means, 5),
                "cv_of_p10": round(cv_p10, 5),
                "threads": args.threads,
                "size": args.size,
                "load_1min_before": round(load_before[0], 2),
                "load_1min_after": round(load_after[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
