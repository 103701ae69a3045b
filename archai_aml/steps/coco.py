"""Detection metrics computed by pycocotools' ``COCOeval`` (torchmetrics' ``MeanAveragePrecision`` needs
torchvision, which this project cannot install).

- ``mean_average_precision``: COCO AP at IoU 0.5 (AutoML's default ``validation_iou_threshold``), all areas,
  100 detections per image: ``stats[1]`` of ``COCOeval.summarize``;
- ``map_50_95``: COCO AP averaged over IoU 0.5:0.95 (``stats[0]``);
- ``recall``: COCOeval's recall at IoU 0.5 (all detections up to 100 per image), averaged over the classes
  that have ground truth;
- ``precision``: COCOeval's (interpolated) precision at that recall, averaged the same way: the precision of
  the detections that reach the highest recall.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GroundTruth", "Prediction", "coco_metrics"]


@dataclass
class GroundTruth:
    boxes: Sequence[Sequence[float]]  # pixels, x0 y0 x1 y1
    labels: Sequence[int]
    width: int
    height: int


@dataclass
class Prediction:
    boxes: Sequence[Sequence[float]]  # pixels, x0 y0 x1 y1
    scores: Sequence[float]
    labels: Sequence[int]


def coco_metrics(
    truths: Sequence[GroundTruth], predictions: Sequence[Prediction], num_classes: int
) -> dict[str, float]:
    """The metrics of the module docstring (``truths[i]`` and ``predictions[i]`` are the same image)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(truths) != len(predictions):
        raise ValueError(f"{len(truths)} ground truths but {len(predictions)} predictions")
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for image_id, (truth, pred) in enumerate(zip(truths, predictions, strict=True), start=1):
        images.append({"id": image_id, "width": truth.width, "height": truth.height})
        for (x0, y0, x1, y1), label in zip(truth.boxes, truth.labels, strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
        for (x0, y0, x1, y1), score, label in zip(pred.boxes, pred.scores, pred.labels, strict=True):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(score),
                }
            )
    zero = {"mean_average_precision": 0.0, "map_50_95": 0.0, "precision": 0.0, "recall": 0.0}
    if not annotations or not results:
        return zero
    quiet = io.StringIO()  # pycocotools prints its progress
    with contextlib.redirect_stdout(quiet):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)],
        }
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = evaluation.eval["precision"]  # [T, R, K, A, M]
    recall = evaluation.eval["recall"]  # [T, K, A, M]
    thresholds = evaluation.params.recThrs
    recalls, precisions = [], []
    for k in range(recall.shape[1]):
        r = float(recall[0, k, 0, -1])
        if r < 0:  # no ground truth of this class
            continue
        recalls.append(r)
        index = int(np.searchsorted(thresholds, r, side="right")) - 1
        precisions.append(max(float(precision[0, index, k, 0, -1]), 0.0) if r > 0 else 0.0)
    stats = evaluation.stats
    return {
        "mean_average_precision": max(float(stats[1]), 0.0),
        "map_50_95": max(float(stats[0]), 0.0),
        "precision": float(np.mean(precisions)) if precisions else 0.0,
        "recall": float(np.mean(recalls)) if recalls else 0.0,
    }
