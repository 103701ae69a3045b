"""The data sets: procedural determinism, coverage and ranges; FaceSynthetics on PNGs written here; loaders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archai_aml.data import (
    FaceSyntheticsSegmentation,
    ProceduralSegmentation,
    SegmentationData,
    make_loader,
    open_dataset,
)
from archai_aml.data.face_synthetics import split_files
from archai_aml.errors import DatasetError


def test_procedural_is_deterministic_across_instances() -> None:
    a = open_dataset("procedural", split="train", length=8, image_size=48, seed=3)
    b = ProceduralSegmentation(split="train", length=8, image_size=48, seed=3)
    for i in (0, 5, 7, -1):
        ia, ma = a[i]
        ib, mb = b[i]
        assert np.array_equal(ia, ib) and np.array_equal(ma, mb)
    # a different seed or split gives different items
    other_seed = ProceduralSegmentation(split="train", length=8, image_size=48, seed=4)
    other_split = ProceduralSegmentation(split="val", length=8, image_size=48, seed=3)
    assert not np.array_equal(a[0][0], other_seed[0][0])
    assert not np.array_equal(a[0][0], other_split[0][0])


def test_procedural_splits_share_no_item() -> None:
    splits = {
        s: ProceduralSegmentation(split=s, length=20, image_size=32)  # type: ignore[arg-type]
        for s in ("train", "val", "test")
    }
    hashes = {s: {d[i][0].tobytes() for i in range(len(d))} for s, d in splits.items()}
    assert all(len(h) == 20 for h in hashes.values())
    assert not hashes["train"] & hashes["val"]
    assert not hashes["train"] & hashes["test"]
    assert not hashes["val"] & hashes["test"]


@pytest.mark.parametrize("num_classes", [2, 7, 9])
def test_procedural_types_ranges_and_class_coverage(num_classes: int) -> None:
    data = ProceduralSegmentation(split="test", length=40, image_size=(40, 56), num_classes=num_classes)
    assert isinstance(data, SegmentationData)
    assert len(data) == 40 and data.num_classes == num_classes
    counts = np.zeros(num_classes, dtype=np.int64)
    for i in range(len(data)):
        image, mask = data[i]
        assert image.shape == (3, 40, 56) and image.dtype == np.float32
        assert mask.shape == (40, 56) and mask.dtype == np.int64
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert mask.min() >= 0 and mask.max() < num_classes
        counts += np.bincount(mask.ravel(), minlength=num_classes)
    assert (counts > 0).all(), f"classes never drawn: {np.flatnonzero(counts == 0)}"
    assert 0.2 < counts[0] / counts.sum() < 0.98  # the background is neither everything nor nothing
    assert len(data.class_names) == num_classes


def test_procedural_classes_differ_in_colour() -> None:
    """The class colour is a learnable cue: the mean colour per class differs between classes."""
    data = ProceduralSegmentation(split="train", length=30, image_size=48, num_classes=4)
    sums = np.zeros((4, 3))
    counts = np.zeros(4)
    for i in range(len(data)):
        image, mask = data[i]
        for c in range(1, 4):
            sel = mask == c
            sums[c] += image[:, sel].sum(axis=1)
            counts[c] += sel.sum()
    means = sums[1:] / counts[1:, None]
    dists = [np.abs(means[i] - means[j]).max() for i in range(3) for j in range(i + 1, 3)]
    assert min(dists) > 0.1


def test_procedural_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        ProceduralSegmentation(num_classes=1)
    with pytest.raises(ValueError, match="split"):
        ProceduralSegmentation(split="dev")  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        ProceduralSegmentation(length=3, image_size=16)[3]


def _write_face_synthetics(folder: Path, n: int, size: tuple[int, int] = (24, 20)) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    for i in range(n):
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        seg = np.full((h, w), i % 19, dtype=np.uint8)
        seg[0, 0] = 255  # an out-of-range label: becomes background
        Image.fromarray(img).save(folder / f"{i:06d}.png")
        Image.fromarray(seg).save(folder / f"{i:06d}_seg.png")


def test_face_synthetics_folder_split_resize_and_values(tmp_path: Path) -> None:
    folder = tmp_path / "fs"
    _write_face_synthetics(folder, 30)
    train = open_dataset(folder, split="train", image_size=16)
    val = open_dataset(folder, split="val", image_size=16)
    test = open_dataset(folder, split="test", image_size=(12, 16))
    assert isinstance(train, FaceSyntheticsSegmentation)
    assert (len(train), len(val), len(test)) == (25, 2, 3)  # 27 train+val (90%), val a tenth of that, 3 test
    assert train.num_classes == 19
    names = [f.name for d in (train, val, test) for f in d.seg_files]  # type: ignore[attr-defined]
    assert len(set(names)) == 30
    image, mask = test[0]
    assert image.shape == (3, 12, 16) and image.dtype == np.float32
    assert mask.shape == (12, 16) and mask.dtype == np.int64
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert mask[0, 0] == 0 and mask[5, 5] == 27 % 19  # nearest resize keeps labels; 255 -> background
    # the raw pixels come through (no resize when the size already matches)
    same = open_dataset(folder, split="test", image_size=(20, 24))
    raw = np.asarray(Image.open(folder / "000027.png"), dtype=np.float32).transpose(2, 0, 1) / 255
    assert np.allclose(same[0][0], raw)
    assert len(open_dataset(folder, split="train", length=4)) == 4


def test_face_synthetics_split_matches_the_anchor_at_full_size() -> None:
    files = [Path(f"{i:06d}_seg.png") for i in range(100_000)]
    train, val, test = (split_files(files, s) for s in ("train", "val", "test"))  # type: ignore[arg-type]
    assert (len(train), len(val), len(test)) == (88_000, 2_000, 10_000)
    assert val[0].name == "088000_seg.png" and test[0].name == "090000_seg.png"


def test_open_dataset_folder_kinds(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert isinstance(open_dataset(empty, split="val", length=3, image_size=16), ProceduralSegmentation)
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "procedural.json").write_text(json.dumps({"num_classes": 4, "seed": 9, "lengths": {"train": 12}}))
    data = open_dataset(spec, split="train", image_size=16)
    assert isinstance(data, ProceduralSegmentation)
    assert (len(data), data.num_classes, data.seed) == (12, 4, 9)
    (spec / "procedural.json").write_text(json.dumps({"colour": "red"}))
    with pytest.raises(DatasetError, match="unknown keys"):
        open_dataset(spec)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="neither FaceSynthetics"):
        open_dataset(junk)
    with pytest.raises(DatasetError, match="neither 'procedural' nor an existing folder"):
        open_dataset(tmp_path / "missing")


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_batches_shuffles_deterministically(workers: int) -> None:
    data = ProceduralSegmentation(split="train", length=10, image_size=16)
    batches = list(make_loader(data, batch_size=4, shuffle=True, num_workers=workers, seed=1))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert batches[0][0].shape == (4, 3, 16, 16) and batches[0][1].dtype.is_floating_point is False
    again = list(make_loader(data, batch_size=4, shuffle=True, num_workers=0, seed=1))
    assert all((a[1] == b[1]).all() for a, b in zip(batches, again, strict=True))
