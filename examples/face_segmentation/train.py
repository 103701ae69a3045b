"""Partial training of one model of the face-segmentation search space, inside a training job.

::

    python train.py --data DATA_FOLDER --output OUT --model-id ID --experiment EXP --epochs 0.5

1. downloads the model's ArchConfig JSON from the store blob ``<experiment>/<model_id>/<model_id>.json``
   (or reads ``--arch FILE``), marks the status row ``training`` (job helper), rebuilds the model;
2. trains ``--epochs`` epochs (fractional: 0.5 = half an epoch) on ``--data`` (a FaceSynthetics folder, or
   the procedural set when the folder is empty or holds ``procedural.json``);
3. reports the validation mean IoU as ``--metric-key`` (default ``val_iou``), with ``epochs`` and
   ``training_time``, sets the row ``complete`` (``failed`` + ``error`` on any exception, exit code 1);
4. writes ``model.onnx`` (opset 17, input ``input``, output ``output``), ``model.pt`` (state dict),
   ``arch.json`` and ``metrics.json`` to ``--output``.

On CUDA it trains with bf16 autocast, channels-last tensors, cuDNN autotuning and a multi-worker, pinned,
prefetching loader; on the CPU in fp32 unless ``--precision bf16`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from search_space import load_model  # noqa: E402

from archai_aml.data import SegmentationData, open_dataset  # noqa: E402
from archai_aml.data.loader import make_loader  # noqa: E402
from archai_aml.scoring.segmentation import segmentation_scores  # noqa: E402

log = logging.getLogger("face_segmentation.train")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="data folder (FaceSynthetics, or empty/procedural.json)")
    p.add_argument("--output", required=True, type=Path, help="folder for model.onnx, weights, metrics")
    p.add_argument("--model-id", required=True)
    p.add_argument("--experiment", required=True)
    p.add_argument("--epochs", type=float, default=1.0, help="epochs to train; fractions allowed")
    p.add_argument("--arch", type=Path, help="ArchConfig JSON to use instead of the store blob")
    p.add_argument("--metric-key", default="val_iou")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--train-length", type=int, help="training images (default: the whole split)")
    p.add_argument("--val-length", type=int, default=500, help="validation images (0 = the whole split)")
    p.add_argument("--num-workers", type=int, help="loader workers (default: several on CUDA, none on CPU)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto", help="auto: bf16 on CUDA")
    p.add_argument(
        "--channels-last", choices=["auto", "on", "off"], default="auto", help="auto: on with CUDA"
    )
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="no cuDNN autotuning on CUDA")
    p.add_argument("--dynamic-batch", action="store_true", help="export model.onnx with a dynamic batch axis")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.epochs <= 0:
        p.error("--epochs must be positive")
    return args


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def mean_iou(confusion: torch.Tensor) -> float:
    """Mean IoU over the classes present in labels or predictions (the scoring module's convention)."""
    return float(segmentation_scores(confusion.cpu().numpy()).mean_iou)


def evaluate(
    model: torch.nn.Module,
    data: SegmentationData,
    *,
    device: torch.device,
    batch_size: int,
    bf16: bool,
    channels_last: bool,
    num_workers: int | None = None,
) -> float:
    """Validation mean IoU of ``model`` on ``data`` (confusion matrix accumulated on the device)."""
    n = data.num_classes
    confusion = torch.zeros(n * n, dtype=torch.int64, device=device)
    loader = make_loader(data, batch_size=batch_size, num_workers=num_workers, device=device)
    model.eval()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    with torch.inference_mode(), autocast:
        for images, masks in loader:
            images = images.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            masks = masks.to(device, non_blocking=True)
            preds = model(images).argmax(dim=1)
            confusion += torch.bincount((masks * n + preds).flatten(), minlength=n * n)
    return mean_iou(confusion.reshape(n, n))


def train_model(
    model: torch.nn.Module,
    train_data: SegmentationData,
    *,
    epochs: float,
    device: torch.device,
    batch_size: int = 16,
    lr: float = 3e-3,
    bf16: bool = False,
    channels_last: bool = False,
    num_workers: int | None = None,
    seed: int = 0,
    progress: bool = True,
    max_steps: int | None = None,
) -> dict[str, float]:
    """Train ``epochs`` epochs (fractional allowed; ``max_steps`` caps the steps) and measure throughput.

    Returns ``steps``, ``images``, ``train_seconds`` (the training loop, data loading included),
    ``images_per_s``, ``train_loss`` (mean of the last 10 steps) and ``loop_start``/``loop_end`` (Unix
    times of the loop, for aggregate throughput over concurrent jobs).
    """
    torch.manual_seed(seed)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    loader = make_loader(
        train_data,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        device=device,
        seed=seed,
        drop_last=len(train_data) >= batch_size,
    )
    steps = max(1, math.ceil(epochs * len(loader)))
    if max_steps is not None:
        steps = min(steps, max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.15)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    model.train()
    losses: list[torch.Tensor] = []
    images_seen = 0
    step = 0
    loop_start = time.time()
    start = time.perf_counter()
    with tqdm(total=steps, desc="train", unit="step", disable=not progress, leave=False) as bar:
        while step < steps:
            for images, masks in loader:
                images = images.to(device, non_blocking=True)
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                masks = masks.to(device, non_blocking=True)
                with autocast:
                    logits = model(images)
                    loss = F.cross_entropy(logits.float(), masks)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.append(loss.detach())
                images_seen += images.shape[0]
                step += 1
                bar.update(1)
                if step >= steps:
                    break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    loop_end = time.time()
    last = torch.stack(losses[-10:]).float().mean().item()
    return {
        "steps": float(step),
        "images": float(images_seen),
        "train_seconds": seconds,
        "images_per_s": images_seen / seconds if seconds > 0 else float("nan"),
        "train_loss": last,
        "loop_start": loop_start,
        "loop_end": loop_end,
    }


def export_onnx(model: torch.nn.Module, path: Path, image_size: int, *, dynamic_batch: bool = False) -> None:
    """Export ``model`` (fp32, eval, on the CPU) to ONNX opset 17 with input ``input``, output ``output``."""
    model = model.to("cpu", memory_format=torch.contiguous_format).float().eval()  # type: ignore[call-overload]
    example = torch.zeros(1, 3, image_size, image_size)
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            opset_version=17,
            dynamic_axes=axes,
            dynamo=False,
        )


def run(args: argparse.Namespace, job: Any) -> dict[str, Any]:
    """The job's work once the status row says ``training``; returns the metrics written to the row."""
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    channels_last = args.channels_last == "on" or (args.channels_last == "auto" and device.type == "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark

    if args.arch is not None:
        arch_file = args.arch
    else:
        with tempfile.TemporaryDirectory() as tmp:
            downloaded = job.download_arch(tmp)
            arch_file = output / "arch.json"
            shutil.copyfile(downloaded, arch_file)
    train_data = open_dataset(
        args.data, split="train", length=args.train_length, image_size=args.image_size, seed=args.seed
    )
    val_data = open_dataset(
        args.data, split="val", length=args.val_length or None, image_size=args.image_size, seed=args.seed
    )
    model = load_model(arch_file, num_classes=train_data.num_classes)
    continuation = getattr(job, "continuation", None)
    done = continuation.epochs_done if continuation is not None and continuation.resume else 0.0
    total_epochs = done + float(args.epochs)
    if done:  # a larger budget for a model trained before: continue from its stored weights
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = job.resume_checkpoint(tmp)
            model.arch.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        log.info("model %s continues from %g epochs for %s more", args.model_id, done, args.epochs)
    if arch_file != output / "arch.json":
        shutil.copyfile(arch_file, output / "arch.json")
    params = sum(p.numel() for p in model.arch.parameters())
    log.info(
        "model %s (archid %s, %d parameters): %s epochs on %s (%d train / %d val images at %d px), "
        "device %s, %s, %s",
        args.model_id,
        model.archid,
        params,
        args.epochs,
        train_data,
        len(train_data),
        len(val_data),
        args.image_size,
        device,
        "bf16 autocast" if bf16 else "fp32",
        "channels-last" if channels_last else "contiguous",
    )
    job.log_params(
        {
            "archid": model.archid,
            "parameters": params,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "image_size": args.image_size,
            "precision": "bf16" if bf16 else "fp32",
            "channels_last": channels_last,
        }
    )
    stats = train_model(
        model.arch,
        train_data,
        epochs=args.epochs,
        device=device,
        batch_size=args.batch_size,
        lr=args.lr,
        bf16=bf16,
        channels_last=channels_last,
        num_workers=args.num_workers,
        seed=args.seed,
        progress=not args.no_progress,
    )
    iou = evaluate(
        model.arch,
        val_data,
        device=device,
        batch_size=max(args.batch_size, 32),
        bf16=bf16,
        channels_last=channels_last,
        num_workers=args.num_workers,
    )
    if not np.isfinite(iou):
        raise RuntimeError(f"validation mean IoU is {iou}: the validation set is empty or unreadable")
    torch.save({k: v.cpu() for k, v in model.arch.state_dict().items()}, output / "model.pt")
    if hasattr(job, "save_checkpoint"):  # the weights a larger budget continues from
        job.save_checkpoint(output / "model.pt", total_epochs)
    export_onnx(model.arch, output / "model.onnx", args.image_size, dynamic_batch=args.dynamic_batch)
    metrics: dict[str, Any] = {
        args.metric_key: iou,
        "epochs": total_epochs,
        "train_loss": stats["train_loss"],
        "train_images_per_s": stats["images_per_s"],
        "parameters": params,
    }
    job.report(metrics)
    (output / "metrics.json").write_text(
        json.dumps(
            {
                **metrics,
                "archid": model.archid,
                "training_time": job.elapsed(),
                "train_images": stats["images"],
                "train_seconds": stats["train_seconds"],
                "loop_start": stats["loop_start"],
                "loop_end": stats["loop_end"],
                "device": str(device),
                "precision": "bf16" if bf16 else "fp32",
                "channels_last": channels_last,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    log.info(
        "model %s: %s=%.4f, loss %.3f, %.1f images/s",
        args.model_id,
        args.metric_key,
        iou,
        stats["train_loss"],
        stats["images_per_s"],
    )
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from archai_aml.training import TrainingJob

    job = TrainingJob.from_env(
        experiment=args.experiment,
        model_id=args.model_id,
        metric_key=args.metric_key,
        output_dir=args.output,
        use_mlflow=not args.no_mlflow,
    )
    with job:
        run(args, job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
