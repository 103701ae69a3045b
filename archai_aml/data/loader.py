"""Torch adapters for :class:`~archai_aml.data.base.SegmentationData`: a ``Dataset`` and a fast ``DataLoader``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from archai_aml.data.base import SegmentationData


class TorchSegmentationDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``(image float32 (3,H,W), mask int64 (H,W))`` tensors from any :class:`SegmentationData`."""

    def __init__(self, data: SegmentationData) -> None:
        self.data = data
        self.num_classes = data.num_classes

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.data[index]
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(np.ascontiguousarray(mask))


def default_num_workers(device: str | torch.device = "cpu") -> int:
    """Loader workers: on a GPU enough to keep it busy (up to 8, leaving a core for the main process);
    on a CPU none, because workers would compete with training for the same cores."""
    if torch.device(device).type != "cuda":
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cpus - 1))


def make_loader(
    data: SegmentationData,
    *,
    batch_size: int = 16,
    shuffle: bool = False,
    num_workers: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    drop_last: bool = False,
    prefetch_factor: int = 4,
) -> DataLoader[Any]:
    """A ``DataLoader`` that keeps the device busy.

    Worker processes (``num_workers``; default from :func:`default_num_workers`) make items in parallel,
    stay alive across epochs (``persistent_workers``) and prefetch ``prefetch_factor`` batches each; on
    CUDA the batches land in pinned memory so copies to the GPU can be asynchronous
    (``tensor.to(device, non_blocking=True)``). ``shuffle`` uses a generator seeded by ``seed``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    workers = default_num_workers(device) if num_workers is None else max(0, int(num_workers))
    generator = torch.Generator()
    generator.manual_seed(seed)
    extra: dict[str, Any] = {}
    if workers > 0:
        extra = {"persistent_workers": True, "prefetch_factor": max(1, prefetch_factor)}
    return DataLoader(
        TorchSegmentationDataset(data),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=torch.device(device).type == "cuda",
        drop_last=drop_last,
        generator=generator,
        **extra,
    )
