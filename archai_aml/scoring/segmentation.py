"""Segmentation scoring: confusion matrix, per-class and mean F1 / IoU, precision-recall curves.

Everything here is numpy in, numbers and files out: no onnxruntime, no torch. The CPU target, the QNN
target and the SNPE device target all score their outputs with it.

Conventions (rows of the confusion matrix are labels, columns are predictions):

* ``precision[c] = tp / (tp + fp)``, ``recall[c] = tp / (tp + fn)``; a zero denominator gives 0.
* ``f1[c] = 2 tp / (2 tp + fp + fn)``, ``iou[c] = tp / (tp + fp + fn)``.
* A class that appears neither in the labels nor in the predictions has no score: its per-class values
  are NaN and it is left out of ``mean_f1`` / ``mean_iou`` (counting it as 1.0 or 0.0 would move the mean
  for a reason unrelated to the model). ``exclude_from_mean`` leaves out more classes (e.g. background).
* Pixels whose label equals ``ignore_index`` are not counted anywhere (confusion matrix and PR curves).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archai_aml.errors import ScoringError

__all__ = [
    "F1Accumulator",
    "PRCurve",
    "SegmentationScores",
    "confusion_matrix",
    "outputs_to_predictions",
    "pr_curve",
    "pr_curve_from_histograms",
    "save_pr_curve_png",
    "segmentation_scores",
    "softmax",
    "write_scores_csv",
]


def _valid_mask(labels: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    valid = np.ones(labels.shape, dtype=bool) if ignore_index is None else labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        value = int(labels[bad].flat[0])
        raise ScoringError(
            f"label value {value} is outside [0, {num_classes}) (and is not ignore_index={ignore_index}): "
            "check num_classes and the mask encoding"
        )
    return valid


def confusion_matrix(
    labels: np.ndarray, preds: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """``num_classes x num_classes`` int64 counts; ``cm[i, j]`` = pixels labelled ``i`` predicted ``j``.

    ``labels`` and ``preds`` are integer arrays of the same shape (any number of dimensions).
    """
    labels = np.asarray(labels)
    preds = np.asarray(preds)
    if num_classes < 1:
        raise ScoringError(f"num_classes must be at least 1, got {num_classes}")
    if labels.shape != preds.shape:
        raise ScoringError(
            f"labels have shape {labels.shape} but predictions have shape {preds.shape}: "
            "resize the masks to the model's output size (nearest neighbour) before scoring"
        )
    if not (np.issubdtype(labels.dtype, np.integer) and np.issubdtype(preds.dtype, np.integer)):
        raise ScoringError(
            f"labels and predictions must be integer class indices, got {labels.dtype} and {preds.dtype}: "
            "use outputs_to_predictions() on model outputs"
        )
    valid = _valid_mask(labels, num_classes, ignore_index)
    lab = labels[valid].astype(np.int64)
    pred = preds[valid].astype(np.int64)
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ScoringError(f"a prediction is outside [0, {num_classes}): the model has more output classes")
    counts = np.bincount(lab * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


@dataclass(frozen=True)
class SegmentationScores:
    """Scores derived from one confusion matrix (see the module docstring for the conventions)."""

    confusion: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    iou: np.ndarray
    support: np.ndarray
    present: np.ndarray
    mean_f1: float
    mean_iou: float
    pixel_accuracy: float
    class_names: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return int(self.confusion.shape[0])

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary (NaN becomes None)."""

        def clean(values: np.ndarray) -> list[float | None]:
            return [None if math.isnan(float(v)) else float(v) for v in values]

        return {
            "mean_f1": None if math.isnan(self.mean_f1) else self.mean_f1,
            "mean_iou": None if math.isnan(self.mean_iou) else self.mean_iou,
            "pixel_accuracy": None if math.isnan(self.pixel_accuracy) else self.pixel_accuracy,
            "class_names": list(self.class_names),
            "f1": clean(self.f1),
            "iou": clean(self.iou),
            "precision": clean(self.precision),
            "recall": clean(self.recall),
            "support": [int(v) for v in self.support],
        }


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def segmentation_scores(
    cm: np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    exclude_from_mean: Iterable[int] = (),
) -> SegmentationScores:
    """Per-class precision, recall, F1 and IoU, mean F1 / IoU over present classes, pixel accuracy."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ScoringError(f"a confusion matrix must be square, got shape {cm.shape}")
    n = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ScoringError(f"{len(names)} class names given for {n} classes")
    cm64 = cm.astype(np.float64)
    tp = np.diag(cm64)
    label_count = cm64.sum(axis=1)
    pred_count = cm64.sum(axis=0)
    fp = pred_count - tp
    fn = label_count - tp
    present = (label_count + pred_count) > 0
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    iou = _safe_div(tp, tp + fp + fn)
    for arr in (precision, recall, f1, iou):
        arr[~present] = np.nan
    in_mean = present.copy()
    for c in exclude_from_mean:
        if not 0 <= c < n:
            raise ScoringError(f"exclude_from_mean names class {c}, outside [0, {n})")
        in_mean[c] = False
    total = cm64.sum()
    return SegmentationScores(
        confusion=cm.astype(np.int64),
        precision=precision,
        recall=recall,
        f1=f1,
        iou=iou,
        support=label_count.astype(np.int64),
        present=present,
        mean_f1=float(f1[in_mean].mean()) if in_mean.any() else math.nan,
        mean_iou=float(iou[in_mean].mean()) if in_mean.any() else math.nan,
        pixel_accuracy=float(tp.sum() / total) if total > 0 else math.nan,
        class_names=names,
    )


def softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    """Numerically stable softmax in float32 (float64 inputs stay float64)."""
    x = np.asarray(logits)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _class_axis(ndim: int, channels_last: bool) -> int:
    if ndim < 3:
        raise ScoringError(
            f"model outputs need a class axis: expected (C,H,W) or (N,C,H,W) (or NHWC), got {ndim} dims"
        )
    return -1 if channels_last else ndim - 3


def outputs_to_predictions(outputs: np.ndarray, *, channels_last: bool = False) -> np.ndarray:
    """Class indices from model outputs (logits or probabilities).

    ``outputs`` is ``(N, C, H, W)`` or ``(C, H, W)``; with ``channels_last=True`` it is ``(N, H, W, C)`` or
    ``(H, W, C)`` (SNPE writes raw NHWC outputs). With a single output channel (a binary model with a
    sigmoid logit) a pixel is class 1 where the logit is above 0.
    """
    out = np.asarray(outputs)
    axis = _class_axis(out.ndim, channels_last)
    if out.shape[axis] == 1:
        return (np.take(out, 0, axis=axis) > 0).astype(np.int64)
    return np.argmax(out, axis=axis).astype(np.int64)


def _class_probabilities(outputs: np.ndarray, class_index: int, channels_last: bool, is_probs: bool):
    out = np.asarray(outputs)
    axis = _class_axis(out.ndim, channels_last)
    if not 0 <= class_index < out.shape[axis]:
        raise ScoringError(f"class {class_index} is outside the {out.shape[axis]} output channels")
    probs = out if is_probs else softmax(out, axis=axis)
    return np.take(probs, class_index, axis=axis)


def _histograms(
    labels: np.ndarray, scores: np.ndarray, class_index: int, num_bins: int, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if scores.shape != labels.shape:
        raise ScoringError(f"probabilities have shape {scores.shape} but labels have shape {labels.shape}")
    bins = np.clip((scores[valid] * num_bins).astype(np.int64), 0, num_bins - 1)
    positive = labels[valid] == class_index
    pos = np.bincount(bins[positive], minlength=num_bins)
    neg = np.bincount(bins[~positive], minlength=num_bins)
    return pos, neg


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall of one class against the rest, one point per threshold (ascending)."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    average_precision: float
    positives: int


def pr_curve_from_histograms(pos_hist: np.ndarray, neg_hist: np.ndarray) -> PRCurve:
    """A PR curve from score histograms of positive and negative pixels over ``[0, 1]`` in equal bins.

    Threshold ``k / num_bins`` calls a pixel positive when its score falls in bin ``k`` or above. Where no
    pixel is called positive precision is 1 (the usual convention). Average precision is the step sum
    ``sum (R_k - R_{k+1}) * P_k`` over decreasing thresholds (as scikit-learn computes it).
    """
    pos = np.asarray(pos_hist, dtype=np.int64)
    neg = np.asarray(neg_hist, dtype=np.int64)
    num_bins = pos.shape[0]
    tp = np.cumsum(pos[::-1])[::-1]
    fp = np.cumsum(neg[::-1])[::-1]
    total_pos = int(pos.sum())
    called = tp + fp
    precision = np.ones(num_bins, dtype=np.float64)
    np.divide(tp, called, out=precision, where=called > 0)
    recall = tp / total_pos if total_pos > 0 else np.zeros(num_bins, dtype=np.float64)
    recall_next = np.append(recall[1:], 0.0)
    ap = float(np.sum((recall - recall_next) * precision)) if total_pos > 0 else math.nan
    thresholds = np.arange(num_bins, dtype=np.float64) / num_bins
    return PRCurve(thresholds, precision, recall, ap, total_pos)


def pr_curve(
    labels: np.ndarray,
    outputs: np.ndarray,
    *,
    class_index: int = 1,
    num_bins: int = 1000,
    ignore_index: int | None = None,
    channels_last: bool = False,
    outputs_are_probabilities: bool = False,
) -> PRCurve:
    """PR curve of ``class_index`` against the rest over softmax probabilities (binned, vectorized).

    ``outputs`` are logits (softmax is applied over the class axis) unless ``outputs_are_probabilities``.
    ``num_bins`` thresholds are evenly spaced in ``[0, 1)``.
    """
    labels = np.asarray(labels)
    scores = _class_probabilities(outputs, class_index, channels_last, outputs_are_probabilities)
    num_classes = np.asarray(outputs).shape[_class_axis(np.asarray(outputs).ndim, channels_last)]
    valid = _valid_mask(labels, num_classes, ignore_index)
    pos, neg = _histograms(labels, scores, class_index, num_bins, valid)
    return pr_curve_from_histograms(pos, neg)


class F1Accumulator:
    """Streams batches of (labels, model outputs) into a confusion matrix and PR histograms.

    Memory stays ``num_classes^2 + 2 * num_bins * len(pr_classes)`` counters whatever the number of images.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int | None = None,
        channels_last: bool = False,
        pr_classes: Sequence[int] = (),
        num_bins: int = 1000,
        class_names: Sequence[str] | None = None,
    ) -> None:
        if num_bins < 1:
            raise ScoringError(f"num_bins must be at least 1, got {num_bins}")
        for c in pr_classes:
            if not 0 <= c < num_classes:
                raise ScoringError(f"pr_classes names class {c}, outside [0, {num_classes})")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.channels_last = channels_last
        self.num_bins = num_bins
        self.class_names = list(class_names) if class_names is not None else None
        self.cm = np.zeros((num_classes, num_classes), dtype=np.int64)
        self._pos = {c: np.zeros(num_bins, dtype=np.int64) for c in pr_classes}
        self._neg = {c: np.zeros(num_bins, dtype=np.int64) for c in pr_classes}
        self.images = 0

    def update(self, labels: np.ndarray, outputs: np.ndarray) -> None:
        """Add a batch: ``labels`` (N,H,W) or (H,W) integer masks, ``outputs`` the matching model outputs."""
        labels = np.asarray(labels)
        outputs = np.asarray(outputs)
        axis = _class_axis(outputs.ndim, self.channels_last)
        channels = outputs.shape[axis]
        if channels not in (1, self.num_classes) or (channels == 1 and self.num_classes != 2):
            raise ScoringError(
                f"model outputs have {channels} channels but the accumulator expects {self.num_classes} classes"
            )
        preds = outputs_to_predictions(outputs, channels_last=self.channels_last)
        self.cm += confusion_matrix(labels, preds, self.num_classes, self.ignore_index)
        if self._pos:
            valid = _valid_mask(labels, self.num_classes, self.ignore_index)
            if channels == 1:  # one sigmoid logit: class 1 has p, class 0 has 1 - p
                p1 = 1.0 / (1.0 + np.exp(-np.take(outputs, 0, axis=axis).astype(np.float64)))
                probs = np.stack([1.0 - p1, p1], axis=axis)
            else:
                probs = softmax(outputs, axis=axis)
            for c in self._pos:
                pos, neg = _histograms(labels, np.take(probs, c, axis=axis), c, self.num_bins, valid)
                self._pos[c] += pos
                self._neg[c] += neg
        self.images += int(labels.shape[0]) if labels.ndim == 3 else 1

    def scores(self, *, exclude_from_mean: Iterable[int] = ()) -> SegmentationScores:
        return segmentation_scores(self.cm, class_names=self.class_names, exclude_from_mean=exclude_from_mean)

    def pr_curves(self) -> dict[int, PRCurve]:
        return {c: pr_curve_from_histograms(self._pos[c], self._neg[c]) for c in self._pos}


def save_pr_curve_png(
    curves: Mapping[str, PRCurve] | PRCurve, path: str | Path, *, title: str = "Precision-recall"
) -> Path:
    """Plot one or more PR curves (legend shows average precision) to a PNG with matplotlib's Agg."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    items = {"class": curves} if isinstance(curves, PRCurve) else dict(curves)
    fig = Figure(figsize=(6, 6))
    ax = fig.add_subplot(1, 1, 1)
    for name, curve in items.items():
        ax.step(
            curve.recall, curve.precision, where="post", label=f"{name} (AP={curve.average_precision:.3f})"
        )
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.legend(loc="lower left")
    from archai_aml.plots._figure import literal  # the title holds the model id: drawn as written

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    literal(fig).savefig(out, dpi=100)
    return out


def _fmt(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6f}"


def write_scores_csv(
    scores: SegmentationScores, path: str | Path, *, pr_curves: Mapping[int, PRCurve] | None = None
) -> Path:
    """One row per class (support, precision, recall, F1, IoU, average precision) and a ``mean`` row.

    Empty cells are classes with no score (absent from labels and predictions). The ``mean`` row holds
    ``mean_f1``/``mean_iou`` and, in the support column, the pixel count; ``pixel_accuracy`` is a row too.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    curves = pr_curves or {}
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["class_index", "class_name", "support", "precision", "recall", "f1", "iou", "ap"])
        for c in range(scores.num_classes):
            ap = curves[c].average_precision if c in curves else math.nan
            w.writerow(
                [
                    c,
                    scores.class_names[c],
                    int(scores.support[c]),
                    _fmt(float(scores.precision[c])),
                    _fmt(float(scores.recall[c])),
                    _fmt(float(scores.f1[c])),
                    _fmt(float(scores.iou[c])),
                    _fmt(ap),
                ]
            )
        w.writerow(
            ["", "mean", int(scores.support.sum()), "", "", _fmt(scores.mean_f1), _fmt(scores.mean_iou), ""]
        )
        w.writerow(["", "pixel_accuracy", "", "", "", _fmt(scores.pixel_accuracy), "", ""])
    return out
