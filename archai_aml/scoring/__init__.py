"""Accuracy scoring shared by every target (numpy in, numbers and files out)."""

from archai_aml.scoring.segmentation import (
    F1Accumulator,
    PRCurve,
    SegmentationScores,
    confusion_matrix,
    outputs_to_predictions,
    pr_curve,
    pr_curve_from_histograms,
    save_pr_curve_png,
    segmentation_scores,
    softmax,
    write_scores_csv,
)

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
