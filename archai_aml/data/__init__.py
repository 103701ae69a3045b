"""Segmentation data sets shared by training scripts, calibration and F1 scoring.

- :func:`open_dataset` picks a data set from a spec: ``None`` / ``"procedural"`` (or a folder that is empty
  or holds a ``procedural.json``) gives :class:`ProceduralSegmentation`; a FaceSynthetics folder gives
  :class:`FaceSyntheticsSegmentation`.
- :func:`make_loader` wraps any :class:`SegmentationData` in a torch ``DataLoader`` that keeps a GPU busy
  (worker processes, pinned memory, persistent workers, prefetching).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from archai_aml.data.base import SegmentationData
from archai_aml.data.face_synthetics import FaceSyntheticsSegmentation, is_face_synthetics_folder
from archai_aml.data.procedural import ProceduralSegmentation
from archai_aml.errors import DatasetError

__all__ = [
    "PROCEDURAL_SPEC_FILE",
    "FaceSyntheticsSegmentation",
    "ProceduralSegmentation",
    "SegmentationData",
    "make_loader",
    "open_dataset",
]

PROCEDURAL_SPEC_FILE = "procedural.json"
_PROCEDURAL_KEYS = {"kind", "num_classes", "seed", "max_shapes", "lengths", "length"}


def _read_procedural_spec(path: Path) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable JSON object: {exc}") from exc
    if not isinstance(spec, dict):
        raise DatasetError(f"{path} must hold a JSON object, got {type(spec).__name__}")
    unknown = set(spec) - _PROCEDURAL_KEYS
    if unknown:
        raise DatasetError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(_PROCEDURAL_KEYS)}")
    return spec


def open_dataset(
    spec: str | Path | None = None,
    *,
    split: Literal["train", "val", "test"] = "test",
    length: int | None = None,
    image_size: int | tuple[int, int] = 256,
    seed: int = 0,
) -> SegmentationData:
    """The data set that ``spec`` names, for one split.

    - ``None`` or ``"procedural"``: the procedural set (``seed`` picks the family; ``length`` defaults to
      8000/1000/10000 items for train/val/test).
    - a folder holding FaceSynthetics files (``NNNNNN.png`` + ``NNNNNN_seg.png``): that set, split like the
      anchor's loader, truncated to ``length`` items if given, resized to ``image_size``.
    - a folder holding ``procedural.json`` (keys ``num_classes``, ``seed``, ``max_shapes``, ``length`` or
      ``lengths: {"train": .., "val": .., "test": ..}``), or an empty folder: the procedural set with those
      settings (an explicit ``length`` argument wins; the file's ``seed`` replaces the argument).
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "procedural"):
        return ProceduralSegmentation(split=split, length=length, image_size=image_size, seed=seed)
    folder = Path(spec)
    if not folder.is_dir():
        raise DatasetError(
            f"data set spec {str(spec)!r} is neither 'procedural' nor an existing folder: give a FaceSynthetics "
            "folder, a folder with procedural.json, or 'procedural'"
        )
    spec_file = folder / PROCEDURAL_SPEC_FILE
    if spec_file.is_file():
        options = _read_procedural_spec(spec_file)
        if length is None:
            lengths = options.get("lengths") or {}
            length = (
                lengths.get(split, options.get("length"))
                if isinstance(lengths, dict)
                else options.get("length")
            )
        return ProceduralSegmentation(
            split=split,
            length=length,
            image_size=image_size,
            seed=int(options.get("seed", seed)),
            num_classes=int(options.get("num_classes", 7)),
            max_shapes=int(options.get("max_shapes", 5)),
        )
    if is_face_synthetics_folder(folder):
        return FaceSyntheticsSegmentation(folder, split=split, length=length, image_size=image_size)
    if not any(folder.iterdir()):
        return ProceduralSegmentation(split=split, length=length, image_size=image_size, seed=seed)
    raise DatasetError(
        f"{folder} holds neither FaceSynthetics files (NNNNNN.png + NNNNNN_seg.png) nor {PROCEDURAL_SPEC_FILE}: "
        "point at a FaceSynthetics folder, or write a procedural.json (may be '{}') to use the procedural set"
    )


def make_loader(*args: Any, **kwargs: Any) -> Any:
    """A torch ``DataLoader`` over a :class:`SegmentationData` (see :func:`archai_aml.data.loader.make_loader`)."""
    from archai_aml.data.loader import make_loader as _make_loader

    return _make_loader(*args, **kwargs)
