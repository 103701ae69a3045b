"""Pipeline steps on bad input: errors that name the input instead of tracebacks (a non-UTF-8 classes.txt, a
JPEG header claiming 60000x60000 pixels, NaN and infinite class ids), and no half-done writes (a failed
register_data / register_model registers nothing, a failed split writes nothing), on a real SQLite MLflow."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from archai_aml.errors import DatasetError
from archai_aml.steps.register_data import RegisterDataSettings, register_data
from archai_aml.steps.register_model import RegisterModelSettings, register_model
from archai_aml.steps.split import SplitSettings, split
from tests.test_steps_data import aggregated, jpeg, load, npy, split_settings, write_zip
from tests.test_steps_model import fake_training_run


def huge_header_jpeg(width: int = 60000, height: int = 60000) -> bytes:
    """A real 32x32 JPEG whose SOF0 frame header is rewritten to claim ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    at = data.index(b"\xff\xc0")  # SOF0: marker, length (2), precision (1), height (2), width (2)
    data[at + 5 : at + 7] = height.to_bytes(2, "big")
    data[at + 7 : at + 9] = width.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"classes.txt": "carré\n".encode("latin-1"), "a.jpg": jpeg(), "a.npy": npy(np.zeros((0, 5)))},
            "classes.txt is not UTF-8 text",
        ),
        ({"a.jpg": huge_header_jpeg(), "a.npy": npy(np.zeros((0, 5)))}, "image a.jpg claims"),
        (
            {"a.jpg": jpeg(), "a.npy": npy(np.array([[np.nan, 1, 1, 4, 4]]))},
            "image a.jpg: label file a.npy row 0: class id nan",
        ),
        (
            {"a.jpg": jpeg(), "a.npy": npy(np.array([[np.inf, 1, 1, 4, 4]]))},
            "image a.jpg: label file a.npy row 0: class id inf",
        ),
    ],
)
def test_loader_errors_name_the_input(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    with pytest.raises(DatasetError) as err:
        load(tmp_path, write_zip(tmp_path / "bad.zip", files))
    assert message in str(err.value)


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """aggregate -> split once for the module: ``agg``, ``train`` and ``val`` folders."""
    root = tmp_path_factory.mktemp("splits")
    aggregated(root, 12)
    split(split_settings(root, stratified_split_n_fold=2))
    return root


def registered(tracking: str) -> list[str]:
    return [m.name for m in MlflowClient(tracking).search_registered_models()]


def test_a_bad_validation_mltable_registers_nothing(splits: Path, tmp_path: Path) -> None:
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    val = tmp_path / "val"
    shutil.copytree(splits / "val", val)
    (val / "annotations.jsonl").write_text('{"image_url": "x.jpg", "label": "not a list"}\n')
    settings = {"train_input_path": splits / "train", "val_input_path": val, "tracking_uri": tracking}
    with pytest.raises(DatasetError, match=r"^validation MLTable .*label file annotations\.jsonl line 1"):
        register_data(RegisterDataSettings.load({**settings, "output_path": tmp_path / "out"}, env={}))
    assert registered(tracking) == []
    # an output path that is an existing file: refused before anything is registered
    (tmp_path / "file").write_text("x")
    settings["val_input_path"] = splits / "val"
    with pytest.raises(DatasetError, match="is an existing file"):
        register_data(RegisterDataSettings.load({**settings, "output_path": tmp_path / "file"}, env={}))
    assert registered(tracking) == []


def test_register_model_into_an_existing_file_registers_nothing(tmp_path: Path) -> None:
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    model = fake_training_run(tmp_path, tracking, "m1", 0.4)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="MODEL_METADATA_PATH"):
        register_model(
            RegisterModelSettings.load(
                {"model_input_path": model, "model_metadata_path": tmp_path / "file" / "sub", "tracking_uri": tracking},
                env={"MODEL_BASE_NAME": "sym"},
            )
        )  # fmt: skip
    assert registered(tracking) == []


def test_a_split_that_fails_writes_nothing_and_names_the_image(splits: Path, tmp_path: Path) -> None:
    (tmp_path / "val").write_text("an existing file")
    settings = SplitSettings.load(
        {"input_data_path": splits / "agg", "train_output_path": tmp_path / "train",
         "val_output_path": tmp_path / "val", "stratified_split_n_fold": 2},
        env={},
    )  # fmt: skip
    with pytest.raises(DatasetError, match="validation output folder"):
        split(settings)
    assert not (tmp_path / "train").exists()
    agg = tmp_path / "agg"
    shutil.copytree(splits / "agg", agg)
    lines = (agg / "annotations.jsonl").read_text().splitlines()
    (agg / "annotations.jsonl").write_text("\n".join([*lines, lines[0]]) + "\n")
    twice = json.loads(lines[0])["image_url"].rsplit("/", 1)[-1]
    with pytest.raises(DatasetError, match=rf"names 1 image\(s\) twice: {twice}"):
        split(split_settings(tmp_path, stratified_split_n_fold=2))
