"""Fidelity of the qnn target: how far the quantized model on the QNN HTP is from the float model.

A model from the example search space (examples/face_segmentation/search_space.py) is trained briefly on
the procedural data set (archai_aml.data), exported to ONNX and put in a status row of a temporary
embedded store; an in-process runner on the ``qnn`` target takes the row through the whole runner path
(QNN conversion, QDQ quantization calibrated on training images, EP-context compile, benchmark, F1 runs).
Then, from what the runner stored:

* ``f1_float``: the row's ``f1_onnx`` (the float export on onnxruntime's CPU provider);
* ``f1_htp``: the row's ``f1_1k`` (the EP-context model on the HTP), over the same test images;
* ``f1_gap``: ``f1_float - f1_htp`` (goal <= 0.05);
* ``cpu_fallback_nodes``: nodes of the stored EP-context model that ran on another provider than
  ``QNNExecutionProvider`` in a profiled inference with CPU fallback *allowed* (goal 0), plus any node of
  the artifact outside its ``EPContext`` nodes;
* ``context_reload_max_abs_diff``: the stored artifact reloaded in a fresh session (no compile) against
  the outputs of the session that compiled it (the same QDQ model compiled here, on the same images);
* ``latency_simulated``: the row's flag (True on an x86-64 host: the HTP is the wheel's emulator);
* ``emulated_images_per_s`` (``htp_images_per_s``): HTP throughput with 1 and ``--workers`` processes;
* ``f1_cpu_quantized``: the same model through the runner on the ``cpu`` target (its ``f1_1k``: the QDQ
  model onnxruntime's CPU provider runs, same test images), ``f1_cpu_gap``: ``f1_float -
  f1_cpu_quantized``, and ``host_int8_path``: the int8 kernel path of this host (VNNI or not), which the
  cpu target's row names in its ``sources`` with the quantization settings.

    python bench/target_fidelity.py [--size 64] [--images 128] [--epochs 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "face_segmentation"))

from search_space import SegmentationSearchSpace  # noqa: E402

from archai_aml.config import StoreConfig  # noqa: E402
from archai_aml.data import open_dataset  # noqa: E402
from archai_aml.onnx.int8_path import host_int8_path  # noqa: E402
from archai_aml.ort.target import OrtCpuTarget  # noqa: E402
from archai_aml.qnn import QnnTarget  # noqa: E402
from archai_aml.qnn.prepare import qnn_quantize  # noqa: E402
from archai_aml.qnn.session import htp_session, providers_by_profiling  # noqa: E402
from archai_aml.runner import Runner, RunnerSettings  # noqa: E402
from archai_aml.store import open_store  # noqa: E402

EXP = "fidelity"
EXP_CPU = "fidelity_cpu"
ROW = "id_bench"


def train(size: int, epochs: int, train_images: int, seed: int) -> tuple[torch.nn.Module, float]:
    """A search-space model trained for ``epochs`` on procedural images; returns it and the seconds taken."""
    torch.manual_seed(seed)
    space = SegmentationSearchSpace(seed=seed, depths=(2,), channels=(8, 16), stem_strides=(1,))
    net = space.random_sample().arch
    data = open_dataset(None, split="train", length=train_images, image_size=size, seed=seed)
    images = torch.from_numpy(np.stack([data[i][0] for i in range(len(data))]).astype(np.float32))
    masks = torch.from_numpy(np.stack([data[i][1] for i in range(len(data))]).astype(np.int64))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    start = time.perf_counter()
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images))
        for i in range(0, len(images), 16):
            idx = order[i : i + 16]
            loss = torch.nn.functional.cross_entropy(net(images[idx]), masks[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval(), time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64, help="image size (square)")
    p.add_argument("--images", type=int, default=128, help="test images for f1_float and f1_htp")
    p.add_argument("--train-images", type=int, default=512)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--calibration", type=int, default=32, help="calibration images")
    p.add_argument("--workers", type=int, default=2, help="HTP processes for the F1 runs")
    p.add_argument("--activation-type", default="uint8", choices=["uint8", "uint16"])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    started = time.perf_counter()
    shape = [1, 3, args.size, args.size]

    with tempfile.TemporaryDirectory(prefix="target_fidelity_") as tmp_name:
        tmp = Path(tmp_name)
        net, train_s = train(args.size, args.epochs, args.train_images, args.seed)
        onnx_path = tmp / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, torch.rand(*shape), str(onnx_path), opset_version=13, dynamo=False,
                              input_names=["input"], output_names=["output"])  # fmt: skip

        # the runner path: a queued row, an in-process runner on the qnn target
        store = open_store(StoreConfig(backend="embedded", path=tmp / "store"))
        store.upload(EXP, ROW, onnx_path, blob_name="model.onnx")
        store.create(EXP, ROW, {"status": "new", "shape": json.dumps(shape), "benchmark_only": False})
        settings = RunnerSettings(
            experiment=EXP, max_benchmark_runs=1, working=tmp / "work", lock_dir=tmp / "lock",
            lease_ttl=120.0, poll_interval=0.1, benchmark_iterations=20,
            calibration_images=args.calibration, f1_onnx_images=args.images, f1_1k_images=args.images,
            f1_10k_images=16, seed=args.seed,
        )  # fmt: skip
        target = QnnTarget(activation_type=args.activation_type, workers=args.workers, progress=False)
        t0 = time.perf_counter()
        Runner(store, target, settings).run(once=True)
        runner_s = time.perf_counter() - t0
        target.close()
        row = store.get(EXP, ROW) or {}
        if row.get("status") != "complete":
            print(f"the runner did not complete the row: {row.get('status')} {row.get('error')}")
            return 1

        # the same model and test images through the runner on the cpu target
        store.upload(EXP_CPU, ROW, onnx_path, blob_name="model.onnx")
        store.create(EXP_CPU, ROW, {"status": "new", "shape": json.dumps(shape), "benchmark_only": False})
        cpu_settings = dataclasses.replace(settings, experiment=EXP_CPU, working=tmp / "work_cpu")
        Runner(store, OrtCpuTarget(intra_op_num_threads=1, progress=False), cpu_settings).run(once=True)
        cpu_row = store.get(EXP_CPU, ROW) or {}
        if cpu_row.get("status") != "complete":
            print(f"the cpu runner did not complete the row: {cpu_row.get('status')} {cpu_row.get('error')}")
            return 1
        cpu_source = json.loads(cpu_row.get("sources") or "{}").get("f1_1k", "")
        art = store.download(EXP, ROW, tmp / "artifact", pattern=r"^quantized/")
        ctx = next(pth for pth in art if pth.name.endswith(".onnx"))

        # placement of the stored artifact: profiled inference with CPU fallback allowed
        test = open_dataset(None, split="test", length=args.images, image_size=args.size)
        x = np.stack([test[i][0] for i in range(min(16, args.images))]).astype(np.float32)
        placed = providers_by_profiling(ctx, {"input": x[:1]})
        off_qnn = sum(len(v) for k, v in placed.items() if k != "QNNExecutionProvider")
        import onnx

        outside = [n.op_type for n in onnx.load(str(ctx)).graph.node if n.op_type != "EPContext"]
        cpu_fallback_nodes = off_qnn + len(outside)

        # the session that compiles (this QDQ model, same calibration images) vs the stored artifact reloaded
        local = QnnTarget(activation_type=args.activation_type, progress=False)
        converted = local.convert(onnx_path, tmp / "local")
        calib = open_dataset(None, split="train", length=args.calibration, image_size=args.size)
        qdq = qnn_quantize(converted, (np.asarray(calib[i][0])[None] for i in range(len(calib))),
                           tmp / "local" / "model.qdq.onnx", activation_type=args.activation_type)  # fmt: skip
        compiling = htp_session(qdq, context_path=tmp / "local" / "model_ctx.onnx")
        first = np.concatenate([compiling.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])
        t1 = time.perf_counter()
        reloaded_session = htp_session(ctx)
        reload_s = time.perf_counter() - t1
        again = np.concatenate(
            [reloaded_session.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))]
        )
        reload_diff = float(np.abs(first - again).max())

        # emulated HTP throughput, one process and --workers processes
        rates = {}
        for workers in sorted({1, args.workers}):
            t = QnnTarget(workers=workers, progress=False)
            t.run_batch(ctx, x[:workers])  # sessions (and processes) up before timing
            t2 = time.perf_counter()
            t.run_batch(ctx, x)
            rates[workers] = len(x) / (time.perf_counter() - t2)
            t.close()
        local.close()
        store.close()

    f1_float, f1_htp = float(row["f1_onnx"]), float(row["f1_1k"])
    f1_cpu = float(cpu_row["f1_1k"])
    int8 = host_int8_path()
    result = {
        "f1_float": round(f1_float, 4),
        "f1_htp": round(f1_htp, 4),
        "f1_gap": round(f1_float - f1_htp, 4),
        "f1_converted_cpu": round(float(row["f1_1k_f"]), 4),
        "f1_cpu_quantized": round(f1_cpu, 4),
        "f1_cpu_gap": round(float(cpu_row["f1_onnx"]) - f1_cpu, 4),
        "host_int8_path": int8.name,
        "host_int8_saturation_prone": int8.saturation_prone,
        "cpu_fallback_nodes": cpu_fallback_nodes,
        "context_reload_max_abs_diff": reload_diff,
        "latency_simulated": bool(row.get("latency_simulated")),
        "htp_latency_ms": round(float(row["mean"]), 3),
        "emulated_images_per_s": {str(k): round(v, 2) for k, v in rates.items()},
        "images": args.images,
        "image_size": args.size,
        "activation_type": args.activation_type,
        "host": platform.machine(),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(f"model: search-space net ({int(row['params'])} params, {int(row['macs']) / 1e6:.1f} M MACs), "
          f"trained {train_s:.0f} s on {args.train_images} procedural images; runner path {runner_s:.0f} s; "
          f"EP-context reload {reload_s * 1000:.0f} ms; host {platform.machine()}")  # fmt: skip
    print(f"{'figure':<30} {'value':>12}  where from")
    rows = [
        ("f1_float", f"{f1_float:.4f}", f"float export, CPU provider, {args.images} test images (f1_onnx)"),
        (
            "f1_htp",
            f"{f1_htp:.4f}",
            f"EP-context model on the HTP, same images (f1_1k, {args.activation_type})",
        ),
        ("f1_gap", f"{f1_float - f1_htp:.4f}", "goal <= 0.05"),
        ("f1 converted (CPU)", f"{float(row['f1_1k_f']):.4f}", "QNN-preprocessed float model (f1_1k_f)"),
        ("f1_cpu_quantized", f"{f1_cpu:.4f}", "cpu target's QDQ model, same images (its f1_1k)"),
        ("f1_cpu_gap", f"{float(cpu_row['f1_onnx']) - f1_cpu:.4f}", "float F1 minus f1_cpu_quantized"),
        ("host_int8_path", int8.name, cpu_source.split("; ", 1)[-1][:60]),
        ("cpu_fallback_nodes", str(cpu_fallback_nodes), f"profiled providers: {sorted(placed)}; goal 0"),
        ("context_reload_max_abs_diff", f"{reload_diff:.3g}", "reloaded artifact vs compiling session"),
        ("latency_simulated", str(result["latency_simulated"]), "row column (x86-64: emulated HTP)"),
        ("HTP latency (ms)", f"{float(row['mean']):.2f}", "row mean; emulator timing, not the device's"),
    ]
    rows += [(f"HTP images/s, {k} process(es)", f"{v:.2f}", "emulated") for k, v in rates.items()]
    for name, value, where in rows:
        print(f"{name:<30} {value:>12}  {where}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
