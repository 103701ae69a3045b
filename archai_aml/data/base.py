"""The segmentation-data protocol shared by training scripts, calibration and F1 scoring."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class SegmentationData(Protocol):
    """A finite, indexable set of (image, mask) pairs.

    ``image`` is float32 ``(3, H, W)``, normalized as the models expect; ``mask`` is int64 ``(H, W)`` with
    class indices in ``[0, num_classes)``. Item ``i`` is the same on every call (deterministic).
    """

    num_classes: int

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...
