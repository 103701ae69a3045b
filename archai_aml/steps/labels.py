"""Labels in the Azure ML AutoML object-detection format (JSON Lines), the ``.npy`` labels they come from,
and the MLTable files that point at them.

One JSONL record per image::

    {"image_url": "azureml://datastores/<ds>/paths/data/images/0001.jpg",
     "image_details": {"format": "jpg", "width": 64, "height": 64},
     "label": [{"label": "circle", "topX": 0.1, "topY": 0.2, "bottomX": 0.5, "bottomY": 0.6, "isCrowd": 0}]}

Box corners are fractions of the image width/height (AutoML's convention), ``topX < bottomX``,
``topY < bottomY``.

An ``.npy`` label file (the data loader's input) holds an array of shape ``(N, 5)``, one row per box:
``class_id, x_min, y_min, x_max, y_max`` in pixels of its image (``N`` may be 0). Class names come from a
``classes.txt`` (line ``i`` names class ``i``) when the archive has one, else the class id is the name.
Files are read with ``allow_pickle=False``: a label file never runs code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from archai_aml.errors import DatasetError
from archai_aml.store.rules import safe_blob_path

__all__ = [
    "ANNOTATIONS",
    "image_name",
    "mltable_jsonl",
    "npy_to_record",
    "read_jsonl",
    "read_mltable",
    "record_classes",
    "validate_record",
    "write_jsonl",
    "write_mltable",
]

#: The JSONL file name the aggregation and split steps write beside their MLTable.
ANNOTATIONS = "annotations.jsonl"

_MLTABLE = """\
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - file: ./{jsonl}
transformations:
  - read_json_lines:
      encoding: utf8
      invalid_lines: error
      include_path_column: false
  - convert_column_types:
      - columns: image_url
        column_type: stream_info
"""


def npy_to_record(
    npy_path: Path, image_url: str, width: int, height: int, classes: Sequence[str]
) -> dict[str, Any]:
    """The AutoML record of one image from its ``.npy`` labels (see the module docstring)."""
    try:
        boxes = np.load(npy_path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DatasetError(f"label file {npy_path.name} is not a readable .npy array: {exc}") from None
    if boxes.size == 0:
        boxes = boxes.reshape(0, 5)
    if boxes.ndim != 2 or boxes.shape[1] != 5 or not np.issubdtype(boxes.dtype, np.number):
        raise DatasetError(
            f"label file {npy_path.name}: expected a numeric array of shape (N, 5) "
            f"[class_id, x_min, y_min, x_max, y_max], got {boxes.dtype} {boxes.shape}"
        )
    labels = []
    for row, (cls, x0, y0, x1, y1) in enumerate(boxes.tolist()):
        if not math.isfinite(cls) or cls != int(cls) or cls < 0 or (classes and cls >= len(classes)):
            raise DatasetError(
                f"label file {npy_path.name} row {row}: class id {cls} is not one of 0..{len(classes) - 1}"
                if classes
                else f"label file {npy_path.name} row {row}: class id {cls} is not a non-negative integer"
            )
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise DatasetError(
                f"label file {npy_path.name} row {row}: box ({x0}, {y0}, {x1}, {y1}) is empty or outside "
                f"the {width}x{height} image"
            )
        name = classes[int(cls)] if classes else str(int(cls))
        labels.append(
            {
                "label": name,
                "topX": x0 / width,
                "topY": y0 / height,
                "bottomX": x1 / width,
                "bottomY": y1 / height,
                "isCrowd": 0,
            }
        )
    return {
        "image_url": image_url,
        "image_details": {"format": "jpg", "width": int(width), "height": int(height)},
        "label": labels,
    }


def validate_record(record: Any, where: str) -> dict[str, Any]:
    """``record`` if it is an AutoML object-detection record, else :class:`DatasetError` naming ``where``."""
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("image_url"), str)
        or not record["image_url"]
    ):
        raise DatasetError(f"{where}: a record needs an 'image_url' string")
    labels = record.get("label")
    if not isinstance(labels, list):
        raise DatasetError(f"{where}: 'label' must be a list of boxes")
    for i, box in enumerate(labels):
        if not isinstance(box, dict) or not isinstance(box.get("label"), str):
            raise DatasetError(f"{where}: box {i} needs a 'label' string")
        try:
            x0, y0, x1, y1 = (float(box[k]) for k in ("topX", "topY", "bottomX", "bottomY"))
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{where}: box {i} needs numeric topX, topY, bottomX, bottomY") from None
        if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
            raise DatasetError(
                f"{where}: box {i} ({x0}, {y0}, {x1}, {y1}) is not inside [0, 1] with top < bottom"
            )
    return record


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL label file, each checked; a line that does not parse names file and line."""
    records = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"label file {path.name} is not UTF-8 text") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"label file {path.name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where} is not JSON ({exc.msg} at column {exc.colno})") from None
        records.append(validate_record(record, where))
    return records


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            count += 1
    return count


def write_mltable(folder: Path, records: Iterable[dict[str, Any]]) -> int:
    """``folder/annotations.jsonl`` and the ``folder/MLTable`` that reads it; returns the record count."""
    folder.mkdir(parents=True, exist_ok=True)
    count = write_jsonl(folder / ANNOTATIONS, records)
    (folder / "MLTable").write_text(_MLTABLE.format(jsonl=ANNOTATIONS), encoding="utf-8")
    return count


def mltable_jsonl(folder: Path) -> Path:
    """The JSONL file an MLTable folder reads (its first ``paths`` entry), refusing paths outside it."""
    spec_path = folder / "MLTable"
    if not spec_path.is_file():
        raise DatasetError(
            f"{folder} has no MLTable file: pass the folder an aggregation or split step wrote"
        )
    try:
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
        entry = spec["paths"][0]
        name = str(entry.get("file") or entry.get("pattern"))
    except (yaml.YAMLError, KeyError, IndexError, TypeError, AttributeError):
        raise DatasetError(f"{spec_path} is not an MLTable with a 'paths: - file:' entry") from None
    relative = PurePosixPath(name[2:] if name.startswith("./") else name).as_posix()
    return safe_blob_path(folder, relative)


def read_mltable(folder: Path, what: str | None = None) -> list[dict[str, Any]]:
    """The records of an MLTable folder; ``what`` (``"training"``, ``"validation"``) names the input in
    every error (``validation MLTable <folder>: label file annotations.jsonl line 3 ...``)."""
    try:
        return read_jsonl(mltable_jsonl(folder))
    except DatasetError as exc:
        if what is None:
            raise
        raise DatasetError(f"{what} MLTable {folder}: {exc}") from None


def image_name(record: dict[str, Any]) -> str:
    """The file name of a record's image (the last part of ``image_url``)."""
    return str(record["image_url"]).rstrip("/").rsplit("/", 1)[-1]


def record_classes(record: dict[str, Any]) -> list[str]:
    """The distinct class names of a record, sorted."""
    return sorted({str(box["label"]) for box in record.get("label", [])})
