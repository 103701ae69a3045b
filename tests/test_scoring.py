"""Segmentation scoring against hand-computed numbers (no sklearn)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from archai_aml.errors import ScoringError
from archai_aml.scoring import (
    F1Accumulator,
    confusion_matrix,
    outputs_to_predictions,
    pr_curve,
    save_pr_curve_png,
    segmentation_scores,
    softmax,
    write_scores_csv,
)


def test_confusion_matrix_known_counts_and_ignore_index() -> None:
    labels = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    preds = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    cm = confusion_matrix(labels, preds, 3, ignore_index=255)
    expected = np.array([[1, 1, 0], [1, 2, 0], [1, 0, 1]])
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == 7  # the ignored pixel is not counted


def test_perfect_prediction_scores_one() -> None:
    labels = np.array([[0, 1], [2, 1]])
    s = segmentation_scores(confusion_matrix(labels, labels.copy(), 3))
    np.testing.assert_allclose(s.f1, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(s.iou, [1.0, 1.0, 1.0])
    assert s.mean_f1 == 1.0 and s.mean_iou == 1.0 and s.pixel_accuracy == 1.0


def test_all_wrong_scores_zero() -> None:
    labels = np.zeros((4, 4), dtype=np.int64)
    preds = np.ones((4, 4), dtype=np.int64)
    s = segmentation_scores(confusion_matrix(labels, preds, 2))
    np.testing.assert_allclose(s.f1, [0.0, 0.0])
    assert s.mean_f1 == 0.0 and s.mean_iou == 0.0 and s.pixel_accuracy == 0.0


def test_mixed_case_hand_computed() -> None:
    # cm rows=labels, cols=preds: [[1,1,0],[1,2,0],[1,0,1]] (from the first test)
    s = segmentation_scores(np.array([[1, 1, 0], [1, 2, 0], [1, 0, 1]]))
    # class 0: tp=1 fp=2 fn=1 -> P=1/3 R=1/2 F1=2/5 IoU=1/4
    # class 1: tp=2 fp=1 fn=1 -> P=2/3 R=2/3 F1=4/6 IoU=2/4
    # class 2: tp=1 fp=0 fn=1 -> P=1 R=1/2 F1=2/3 IoU=1/2
    np.testing.assert_allclose(s.precision, [1 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(s.recall, [1 / 2, 2 / 3, 1 / 2])
    np.testing.assert_allclose(s.f1, [2 / 5, 2 / 3, 2 / 3])
    np.testing.assert_allclose(s.iou, [1 / 4, 1 / 2, 1 / 2])
    assert s.mean_f1 == pytest.approx((2 / 5 + 2 / 3 + 2 / 3) / 3)
    assert s.mean_iou == pytest.approx((1 / 4 + 1 / 2 + 1 / 2) / 3)
    assert s.pixel_accuracy == pytest.approx(4 / 7)
    np.testing.assert_array_equal(s.support, [2, 3, 2])
    excl = segmentation_scores(s.confusion, exclude_from_mean=[0])
    assert excl.mean_f1 == pytest.approx(2 / 3)


def test_absent_class_excluded_from_means() -> None:
    labels = np.array([0, 0, 1, 1])
    s = segmentation_scores(confusion_matrix(labels, labels.copy(), 4))
    assert list(s.present) == [True, True, False, False]
    assert math.isnan(s.f1[2]) and math.isnan(s.iou[3])
    assert s.mean_f1 == 1.0  # not dragged down (or up) by the two absent classes
    # a class that is predicted but never labelled is present and scores 0
    s2 = segmentation_scores(confusion_matrix(labels, np.array([0, 0, 1, 3]), 4))
    assert s2.present[3] and s2.f1[3] == 0.0
    assert s2.mean_f1 == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)


def test_invalid_inputs_raise_typed_errors() -> None:
    with pytest.raises(ScoringError, match="shape"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 2)
    with pytest.raises(ScoringError, match="outside"):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 2)
    with pytest.raises(ScoringError, match="integer"):
        confusion_matrix(np.zeros(3), np.zeros(3), 2)


def test_outputs_to_predictions_nchw_nhwc_and_binary() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    preds = outputs_to_predictions(logits)
    assert preds.shape == (2, 4, 5)
    np.testing.assert_array_equal(preds[1, 2, 3], np.argmax(logits[1, :, 2, 3]))
    nhwc = np.transpose(logits, (0, 2, 3, 1))
    np.testing.assert_array_equal(outputs_to_predictions(nhwc, channels_last=True), preds)
    np.testing.assert_array_equal(outputs_to_predictions(logits[0]), preds[0])
    binary = np.array([[[[-1.0, 2.0]]]])
    np.testing.assert_array_equal(outputs_to_predictions(binary), [[[0, 1]]])
    probs = softmax(logits, axis=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_pr_curve_hand_computed_average_precision() -> None:
    labels = np.array([1, 1, 0, 0])
    p1 = np.array([0.9, 0.4, 0.6, 0.1])
    probs = np.stack([1 - p1, p1])  # (C=2, "H"=4): class axis first
    probs = probs[:, None, :]  # (2, 1, 4)
    curve = pr_curve(labels[None, :], probs, class_index=1, num_bins=10, outputs_are_probabilities=True)
    # thresholds 0.9: tp=1 fp=0 -> P=1 R=.5 ; 0.6: tp=1 fp=1 -> P=.5 ; 0.4: tp=2 fp=1 -> P=2/3 R=1
    assert curve.precision[9] == 1.0 and curve.recall[9] == 0.5
    assert curve.precision[6] == 0.5
    assert curve.precision[4] == pytest.approx(2 / 3) and curve.recall[4] == 1.0
    assert curve.precision[0] == 0.5
    assert curve.average_precision == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert curve.positives == 2


def test_accumulator_streams_like_one_big_batch(tmp_path) -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=(6, 8, 8))
    labels[0, 0, 0] = 255
    logits = rng.normal(size=(6, 3, 8, 8)).astype(np.float32)
    logits[:, 1] += (labels == 1) * 2.0  # make class 1 learnable
    acc = F1Accumulator(3, ignore_index=255, pr_classes=[1], num_bins=50, class_names=["bg", "a", "b"])
    for i in range(0, 6, 2):
        acc.update(labels[i : i + 2], logits[i : i + 2])
    whole = confusion_matrix(labels, outputs_to_predictions(logits), 3, ignore_index=255)
    np.testing.assert_array_equal(acc.cm, whole)
    assert acc.images == 6
    curve = acc.pr_curves()[1]
    direct = pr_curve(labels, logits, class_index=1, num_bins=50, ignore_index=255)
    np.testing.assert_allclose(curve.precision, direct.precision)
    assert 0.5 < curve.average_precision <= 1.0

    scores = acc.scores()
    csv_path = write_scores_csv(scores, tmp_path / "scores.csv", pr_curves=acc.pr_curves())
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["class_name"] for r in rows] == ["bg", "a", "b", "mean", "pixel_accuracy"]
    assert float(rows[1]["f1"]) == pytest.approx(scores.f1[1], abs=1e-6)
    assert float(rows[1]["ap"]) == pytest.approx(curve.average_precision, abs=1e-6)
    assert float(rows[3]["f1"]) == pytest.approx(scores.mean_f1, abs=1e-6)

    png = save_pr_curve_png({"a": curve}, tmp_path / "pr.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 1000


def test_accumulator_rejects_wrong_channel_count() -> None:
    acc = F1Accumulator(3)
    with pytest.raises(ScoringError, match="channels"):
        acc.update(np.zeros((1, 2, 2), int), np.zeros((1, 4, 2, 2), np.float32))


def test_accumulator_nhwc_and_binary_single_channel() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, size=(2, 4, 4))
    logits = rng.normal(size=(2, 2, 4, 4)).astype(np.float32)
    nchw = F1Accumulator(2, pr_classes=[1], num_bins=20)
    nchw.update(labels, logits)
    nhwc = F1Accumulator(2, channels_last=True, pr_classes=[1], num_bins=20)
    nhwc.update(labels, np.transpose(logits, (0, 2, 3, 1)))
    np.testing.assert_array_equal(nchw.cm, nhwc.cm)
    np.testing.assert_allclose(nchw.pr_curves()[1].precision, nhwc.pr_curves()[1].precision)
    # one sigmoid channel whose logit is the difference of the two: same predictions, same PR curve
    binary = F1Accumulator(2, pr_classes=[1], num_bins=20)
    binary.update(labels, logits[:, 1:2] - logits[:, 0:1])
    np.testing.assert_array_equal(binary.cm, nchw.cm)
    np.testing.assert_allclose(binary.pr_curves()[1].recall, nchw.pr_curves()[1].recall)
