"""The data steps on small generated data: data loader, aggregation, split, and the settings they read."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import uuid
import zipfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archai_aml.config import StoreConfig
from archai_aml.errors import ConfigError, DatasetError, UnsafeBlobNameError
from archai_aml.steps.aggregate import AggregateSettings, aggregate
from archai_aml.steps.data_loader import DataLoaderSettings, load_archive
from archai_aml.steps.labels import read_jsonl, read_mltable
from archai_aml.steps.split import SplitSettings, split, split_records, strata
from archai_aml.store import open_store

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "symbol_detection"))
from make_dataset import CLASSES, make_archive  # noqa: E402

URI = "azureml://datastores/workspaceblobstore/paths/data/images"


def load(tmp_path: Path, archive: Path, **kw: object) -> tuple[dict[str, object], Path]:
    store_cfg = StoreConfig(path=tmp_path / "store")
    settings = DataLoaderSettings.load({"archive": archive, "output": tmp_path / "loader.json", **kw}, env={})
    with open_store(store_cfg) as store:
        result = load_archive(settings, store)
    return json.loads((tmp_path / "loader.json").read_text()), Path(str(result.image_folder))


def loaded(tmp_path: Path, images: int = 24) -> dict[str, object]:
    archive = make_archive(tmp_path / "sym.zip", images=images)
    return load(tmp_path, archive)[0]


def aggregated(tmp_path: Path, images: int = 24) -> Path:
    info = loaded(tmp_path, images)
    out = tmp_path / "agg"
    aggregate(
        AggregateSettings.load(
            {
                "input_image_data_path": info["image_folder"],
                "input_label_data_path": info["label_folder"],
                "input_images_string_absolute_path": URI,
                "output_path": out,
            },
            env={},
        )
    )
    return out


def test_loader_converts_npy_to_automl_jsonl_and_uploads_to_the_store(tmp_path: Path) -> None:
    info, images = load(tmp_path, make_archive(tmp_path / "sym.zip", images=6, seed=3))
    assert info["images"] == 6 and info["image_uri"] == URI
    assert info["label_uri"] == "azureml://datastores/workspaceblobstore/paths/data/labels"
    with open_store(StoreConfig(path=tmp_path / "store")) as store:
        assert store.list_blobs("data", "images") == [f"img_{i:04d}.jpg" for i in range(6)]
        assert store.list_blobs("data", "labels") == [f"img_{i:04d}.jsonl" for i in range(6)]
        record = json.loads(store.download_bytes("data", "labels", "img_0000.jsonl"))
    with zipfile.ZipFile(tmp_path / "sym.zip") as zf:
        boxes = np.load(io.BytesIO(zf.read("labels/img_0000.npy")))
    assert record["image_url"] == "img_0000.jpg"
    assert record["image_details"] == {"format": "jpg", "width": 64, "height": 64}
    assert len(record["label"]) == len(boxes)
    for box, row in zip(record["label"], boxes, strict=True):
        assert box["label"] == CLASSES[int(row[0])]
        assert [box["topX"], box["topY"], box["bottomX"], box["bottomY"]] == pytest.approx(list(row[1:] / 64))
        assert box["isCrowd"] == 0
    assert images == tmp_path / "store" / "blobs" / "models" / "data" / "images"
    assert sorted(p.name for p in images.iterdir())[:2] == ["img_0000.jpg", "img_0001.jpg"]
    assert (
        sum(len(json.loads(p.read_text())["label"]) for p in images.parent.joinpath("labels").iterdir())
        == info["boxes"]
    )


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.jpg": jpeg(), "a.npy": b"not an npy file"}, "label file a.npy is not a readable .npy array"),
        ({"a.jpg": jpeg(), "a.npy": npy(np.zeros((2, 4)))}, "expected a numeric array of shape (N, 5)"),
        ({"a.jpg": jpeg(), "a.npy": npy(np.array([[0, 5, 5, 40, 20]]))}, "outside the 32x32 image"),
        ({"a.jpg": jpeg(), "a.npy": npy(np.array([[0, 5, 5, 4, 20]]))}, "is empty or outside"),
        (
            {"a.jpg": jpeg(), "b.jpg": jpeg(), "a.npy": npy(np.zeros((0, 5)))},
            "images without a .npy label: ['b']",
        ),
        (
            {"a.jpg": jpeg(), "a.npy": npy(np.array([[-1, 1, 1, 4, 4]]))},
            "class id -1 is not a non-negative integer",
        ),
        (
            {"classes.txt": b"x\n", "a.jpg": jpeg(), "a.npy": npy(np.array([[1, 1, 1, 4, 4]]))},
            "not one of 0..0",
        ),
        ({"a.jpg": b"\x89PNG not a jpeg", "a.npy": npy(np.zeros((0, 5)))}, "a.jpg is not a readable image"),
    ],
)
def test_loader_bad_archives_are_clear_errors(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    with pytest.raises(DatasetError) as err:
        load(tmp_path, write_zip(tmp_path / "bad.zip", files))
    assert message in str(err.value)


def test_loader_refuses_a_pickled_npy_and_an_escaping_member(tmp_path: Path) -> None:
    pickled = npy(np.array([{"boom": 1}], dtype=object))
    with pytest.raises(DatasetError, match="not a readable .npy array"):
        load(tmp_path, write_zip(tmp_path / "p.zip", {"a.jpg": jpeg(), "a.npy": pickled}))
    with pytest.raises(UnsafeBlobNameError):
        load(tmp_path, write_zip(tmp_path / "z.zip", {"../escape.jpg": jpeg()}))
    assert not (tmp_path / "escape.jpg").exists()
    with pytest.raises(ConfigError, match="exactly one of --archive"):
        load_archive(DataLoaderSettings.load({}, env={}))


@pytest.mark.azure
def test_loader_downloads_a_sas_url_and_never_logs_the_sas(tmp_path: Path, azurite, caplog) -> None:  # type: ignore[no-untyped-def]
    from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

    archive = make_archive(tmp_path / "sym.zip", images=4)
    container = "raw" + uuid.uuid4().hex[:12]
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(container)
    service.get_blob_client(container, "sym.zip").upload_blob(archive.read_bytes())
    sas = generate_blob_sas(
        "devstoreaccount1",
        container,
        "sym.zip",
        account_key=azurite.account_key,
        permission=BlobSasPermissions(read=True),
        expiry=datetime.now(timezone.utc) + timedelta(minutes=10),
    )
    url = f"{azurite.blob_url}/{container}/sym.zip?{sas}"
    caplog.set_level(logging.DEBUG)
    settings = DataLoaderSettings.load({"raw_blob_sas_url": url, "raw_input_path": tmp_path / "raw"}, env={})
    with open_store(StoreConfig(path=tmp_path / "store")) as store:
        result = load_archive(settings, store)
    assert result.images == 4
    assert (tmp_path / "raw" / "raw.zip").read_bytes() == archive.read_bytes()
    signature = sas.split("sig=")[1].split("&")[0]
    assert f"{container}/sym.zip" in caplog.text
    assert signature not in caplog.text and "sig=" not in caplog.text
    bad = DataLoaderSettings.load(
        {"raw_blob_sas_url": url.replace("sym.zip", "other.zip")}, env={}
    )  # SAS of another blob
    with pytest.raises(DatasetError) as err:
        load_archive(bad, open_store(StoreConfig(path=tmp_path / "store")))
    assert "HTTP 403" in str(err.value) and signature not in str(err.value) and "sig=" not in str(err.value)
    assert signature not in repr(bad) and "sig=" not in str(bad.model_dump())


def test_aggregate_makes_image_urls_absolute_and_writes_an_mltable(tmp_path: Path) -> None:
    out = aggregated(tmp_path, images=12)
    records = read_mltable(out)
    assert [r["image_url"] for r in records] == [f"{URI}/img_{i:04d}.jpg" for i in range(12)]
    mltable = (out / "MLTable").read_text()
    assert "file: ./annotations.jsonl" in mltable and "column_type: stream_info" in mltable


def test_aggregate_bad_inputs(tmp_path: Path) -> None:
    info = loaded(tmp_path, images=6)
    labels = Path(str(info["label_folder"]))
    values = {
        "input_image_data_path": info["image_folder"],
        "input_label_data_path": labels,
        "input_images_string_absolute_path": URI,
        "output_path": tmp_path / "agg",
    }
    (labels / "img_0002.jsonl").write_text(
        '{"image_url": "img_0002.jpg", "label": []}\n{"image_url": oops}\n'
    )
    with pytest.raises(DatasetError, match=r"label file img_0002.jsonl line 2 is not JSON"):
        aggregate(AggregateSettings.load(values, env={}))
    (labels / "img_0002.jsonl").write_text('{"image_url": "ghost.jpg", "label": []}\n')
    with pytest.raises(DatasetError, match=r"names image 'ghost.jpg', which is not in"):
        aggregate(AggregateSettings.load(values, env={}))
    (labels / "img_0002.jsonl").write_text('{"image_url": "img_0003.jpg", "label": []}\n')
    with pytest.raises(DatasetError, match=r"image 'img_0003.jpg' is labelled twice"):
        aggregate(AggregateSettings.load(values, env={}))
    (labels / "img_0002.jsonl").write_text(
        '{"image_url": "img_0002.jpg", "label": [{"label": "x", "topX": 0.5, "topY": 0, "bottomX": 0.2, "bottomY": 1}]}\n'
    )
    with pytest.raises(DatasetError, match=r"line 1: box 0 .* top < bottom"):
        aggregate(AggregateSettings.load(values, env={}))
    with pytest.raises(ConfigError, match="is not a datastore URI"):
        aggregate(
            AggregateSettings.load({**values, "input_images_string_absolute_path": "/tmp/images"}, env={})
        )


def split_settings(tmp_path: Path, **kw: object) -> SplitSettings:
    return SplitSettings.load(
        {
            "input_data_path": tmp_path / "agg",
            "train_output_path": tmp_path / "train",
            "val_output_path": tmp_path / "val",
            **kw,
        },
        env={},
    )


def test_stratified_split_spreads_every_class_and_honours_mandatory_files(tmp_path: Path) -> None:
    aggregated(tmp_path, images=30)
    records = read_mltable(tmp_path / "agg")
    settings = split_settings(
        tmp_path,
        stratified_split_n_fold=3,
        mandatory_train_filenames="img_0000.jpg, img_0001.jpg",
        mandatory_val_filenames="img_0002.jpg",
    )
    result = split(settings)
    train, val = read_mltable(tmp_path / "train"), read_mltable(tmp_path / "val")
    names = lambda rs: {r["image_url"].rsplit("/", 1)[1] for r in rs}  # noqa: E731
    assert names(train) | names(val) == names(records) and not names(train) & names(val)
    assert {"img_0000.jpg", "img_0001.jpg"} <= names(train) and "img_0002.jpg" in names(val)
    assert (result.train, result.val) == (len(train), len(val))
    rest = [
        r
        for r in records
        if r["image_url"].rsplit("/", 1)[1] not in {"img_0000.jpg", "img_0001.jpg", "img_0002.jpg"}
    ]
    per_class = Counter(strata(rest))
    val_rest = [r for r in val if not r["image_url"].endswith("img_0002.jpg")]
    val_class = Counter(strata(rest)[rest.index(r)] for r in val_rest)
    for (
        cls,
        count,
    ) in per_class.items():  # one fold of 3: a third of each stratum (StratifiedKFold's rounding)
        assert count // 3 <= val_class[cls] <= -(-count // 3), (cls, count, val_class)
    assert len(val_rest) == 9


def test_rarest_class_decides_a_multi_label_image() -> None:
    def rec(name: str, *classes: str) -> dict[str, object]:
        boxes = [{"label": c, "topX": 0.1, "topY": 0.1, "bottomX": 0.2, "bottomY": 0.2} for c in classes]
        return {"image_url": name, "label": boxes}

    records = [
        rec("a", "common"),
        rec("b", "common", "rare"),
        rec("c", "common"),
        rec("d"),
        rec("e", "rare", "x"),
    ]
    assert strata(records) == ["common", "rare", "common", "<none>", "x"]


def test_split_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    aggregated(tmp_path, images=12)
    with pytest.raises(DatasetError, match=r"MANDATORY_VAL_FILENAMES: \['nope.jpg'\] not in the data set"):
        split(split_settings(tmp_path, mandatory_val_filenames="nope.jpg"))
    with pytest.raises(ConfigError, match=r"in both MANDATORY_TRAIN_FILENAMES and MANDATORY_VAL_FILENAMES"):
        split(
            split_settings(
                tmp_path, mandatory_train_filenames="img_0001.jpg", mandatory_val_filenames="img_0001.jpg"
            )
        )
    counts = Counter(strata(read_mltable(tmp_path / "agg")))
    n, cls = min((n, c) for c, n in counts.items())
    assert n < 5 < len(counts) * n + 12  # the generated set: some class has fewer than 5 images
    with pytest.raises(DatasetError) as err:
        split(split_settings(tmp_path, stratified_split_n_fold=5))
    assert f"STRATIFIED_SPLIT_N_FOLD=5 is larger than the {n} image(s) of class {cls!r}" in str(err.value)
    assert f"lower k to at most {n}" in str(err.value)
    split(split_settings(tmp_path, stratified_split_n_fold=n))  # k equal to the smallest count works


def test_no_split_keeps_everything_but_the_mandatory_validation_files(tmp_path: Path) -> None:
    aggregated(tmp_path, images=9)
    records = read_mltable(tmp_path / "agg")
    train, val = split_records(
        records,
        split_settings(tmp_path, use_stratified_split="false", mandatory_val_filenames='["img_0004.jpg"]'),
    )
    assert len(train) == 8 and [r["image_url"].rsplit("/", 1)[1] for r in val] == ["img_0004.jpg"]
    split(split_settings(tmp_path, use_stratified_split=False))
    assert len(read_mltable(tmp_path / "train")) == 9 and read_mltable(tmp_path / "val") == []


def test_settings_come_from_arguments_then_the_environment_with_errors_naming_the_variable(
    tmp_path: Path,
) -> None:
    env = {
        "STRATIFIED_SPLIT_N_FOLD": "3",
        "USE_STRATIFIED_SPLIT": "no",
        "MANDATORY_TRAIN_FILENAMES": "a.jpg,b.jpg",
    }
    s = SplitSettings.load(
        {"input_data_path": "x", "train_output_path": "t", "val_output_path": "v"}, env=env
    )
    assert (s.stratified_split_n_fold, s.use_stratified_split, s.mandatory_train_filenames) == (
        3,
        False,
        ["a.jpg", "b.jpg"],
    )
    s = SplitSettings.load(
        {
            "input_data_path": "x",
            "train_output_path": "t",
            "val_output_path": "v",
            "stratified_split_n_fold": "7",
        },
        env=env,
    )
    assert s.stratified_split_n_fold == 7
    with pytest.raises(
        ConfigError, match=r"STRATIFIED_SPLIT_N_FOLD: Input should be a valid integer.*\(got 'many'\)"
    ):
        SplitSettings.load(
            {"input_data_path": "x", "train_output_path": "t", "val_output_path": "v"},
            env={"STRATIFIED_SPLIT_N_FOLD": "many"},
        )
    with pytest.raises(
        ConfigError, match=r"STRATIFIED_SPLIT_N_FOLD: Input should be greater than or equal to 2"
    ):
        SplitSettings.load(
            {"input_data_path": "x", "train_output_path": "t", "val_output_path": "v"},
            env={"STRATIFIED_SPLIT_N_FOLD": "1"},
        )
    with pytest.raises(ConfigError, match=r"SPLIT_INPUT_DATA_PATH: Field required"):
        SplitSettings.load({"train_output_path": "t", "val_output_path": "v"}, env={})
    settings = DataLoaderSettings.load(
        {}, env={"RAW_BLOB_SAS_URL": "ftp://host/a.zip?sv=1&sig=SECRET", "IMAGE_OUTPUT_PATH": "d/i"}
    )
    assert "SECRET" not in repr(settings) and settings.image_output_path == "d/i"
    with pytest.raises(ConfigError) as err:
        load_archive(settings)
    assert "ftp://host/a.zip" in str(err.value) and "SECRET" not in str(err.value)


def test_cli_entrypoint_runs_and_a_bad_input_exits_2_with_the_message(tmp_path: Path) -> None:
    aggregated(tmp_path, images=6)
    bad = subprocess.run(
        [sys.executable, "-m", "archai_aml.steps.split", "--input-data-path", str(tmp_path / "agg"), "--train-output-path",
         str(tmp_path / "t"), "--val-output-path", str(tmp_path / "v"), "--stratified-split-n-fold", "3"],
        capture_output=True, text=True, cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "MANDATORY_VAL_FILENAMES": "missing.jpg"},
        timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "MANDATORY_VAL_FILENAMES: ['missing.jpg'] not in the data set" in bad.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "archai_aml.steps.split", "--input-data-path", str(tmp_path / "agg"), "--train-output-path",
         str(tmp_path / "t"), "--val-output-path", str(tmp_path / "v"), "--use-stratified-split", "false"],
        capture_output=True, text=True, cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert (
        len(read_jsonl(tmp_path / "t" / "annotations.jsonl"))
        + len(read_jsonl(tmp_path / "v" / "annotations.jsonl"))
        == 6
    )
