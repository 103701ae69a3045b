"""A FaceSynthetics folder: ``NNNNNN.png`` images and ``NNNNNN_seg.png`` label masks (19 classes).

The split follows the anchor's ``FaceSyntheticsDataset`` (archai.datasets.cv.face_synthetics): files are
sorted by name, the first 90% are train+validation and the last 10% are test, and validation is the last
``val_size`` files of the train+validation part (2000 for the full 100,000-image set; at most a tenth of
that part for smaller folders). Unlike the anchor, nothing is downloaded: the folder must hold the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from archai_aml.errors import DatasetError

Split = Literal["train", "val", "test"]

CLASSES = [
    "background",
    "skin",
    "nose",
    "right_eye",
    "left_eye",
    "right_brow",
    "left_brow",
    "right_ear",
    "left_ear",
    "mouth_interior",
    "top_lip",
    "bottom_lip",
    "neck",
    "hair",
    "beard",
    "clothing",
    "glasses",
    "headwear",
    "facewear",
]


def is_face_synthetics_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds at least one ``*_seg.png`` label mask with its image."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    for seg in folder.glob("*_seg.png"):
        if seg.with_name(seg.name[: -len("_seg.png")] + ".png").is_file():
            return True
    return False


def split_files(seg_files: list[Path], split: Split, val_size: int | None = None) -> list[Path]:
    """The label files of ``split`` (anchor's split: 90% train+val / 10% test; val at the end of train)."""
    n = len(seg_files)
    n_trainval = int(round(n * 0.9)) if n >= 10 else max(n - 1, 0)
    trainval, test = seg_files[:n_trainval], seg_files[n_trainval:]
    if val_size is None:
        val_size = min(2000, max(1, n_trainval // 10)) if n_trainval > 1 else 0
    val_size = min(val_size, max(n_trainval - 1, 0))
    if split == "train":
        return trainval[: n_trainval - val_size]
    if split == "val":
        return trainval[n_trainval - val_size :]
    if split == "test":
        return test
    raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")


class FaceSyntheticsSegmentation:
    """FaceSynthetics images and masks resized to ``image_size`` (implements ``SegmentationData``).

    ``image`` is float32 ``(3, H, W)`` in ``[0, 1]`` (bilinear resize); ``mask`` is int64 ``(H, W)``
    (nearest resize). Label values outside ``[0, 19)`` (e.g. an ignore value 255) become background (0).
    """

    num_classes = len(CLASSES)
    class_names = CLASSES

    def __init__(
        self,
        folder: str | Path,
        *,
        split: Split = "test",
        length: int | None = None,
        image_size: int | tuple[int, int] = 256,
        val_size: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DatasetError(f"FaceSynthetics folder {self.folder} does not exist")
        seg_files = sorted(self.folder.glob("*_seg.png"))
        if not seg_files:
            raise DatasetError(
                f"{self.folder} holds no NNNNNN_seg.png label masks: give a FaceSynthetics folder "
                "(NNNNNN.png + NNNNNN_seg.png) or use the procedural data set"
            )
        self.split: Split = split
        files = split_files(seg_files, split, val_size)
        if length is not None:
            files = files[: int(length)]
        self.seg_files = files
        self.img_files = [f.with_name(f.name[: -len("_seg.png")] + ".png") for f in files]
        if isinstance(image_size, int):
            self.height = self.width = image_size
        else:
            self.height, self.width = (int(v) for v in image_size)

    def __len__(self) -> int:
        return len(self.seg_files)

    def __repr__(self) -> str:
        return (
            f"FaceSyntheticsSegmentation({str(self.folder)!r}, split={self.split!r}, length={len(self)}, "
            f"image_size=({self.height}, {self.width}))"
        )

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a data set of {len(self)} items")
        size = (self.width, self.height)
        try:
            with Image.open(self.img_files[index]) as im:
                rgb = im.convert("RGB")
                if rgb.size != size:
                    rgb = rgb.resize(size, Image.Resampling.BILINEAR)
                image = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)
            with Image.open(self.seg_files[index]) as sm:
                label = sm if sm.mode in ("L", "P", "I") else sm.convert("L")
                if label.size != size:
                    label = label.resize(size, Image.Resampling.NEAREST)
                mask = np.asarray(label).astype(np.int64)
        except (OSError, ValueError) as exc:
            raise DatasetError(
                f"cannot read FaceSynthetics item {index} ({self.img_files[index].name}): {exc}"
            ) from exc
        if mask.ndim == 3:
            mask = mask[..., 0]
        mask[(mask < 0) | (mask >= self.num_classes)] = 0
        return np.ascontiguousarray(image), mask
