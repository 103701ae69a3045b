"""Data loader: unzip an archive of JPEG images with ``.npy`` labels, convert each label file to AutoML JSONL,
upload images and labels to the data store (the store's blob side; the embedded store by default).

Run once before the pipeline::

    python -m archai_aml.steps.data_loader --archive symbols.zip \\
        --image-output-path data/images --label-output-path data/labels

``--raw-blob-sas-url`` (or ``RAW_BLOB_SAS_URL``) downloads the archive first; the SAS never appears in a log
or an error (only the URL without its query). The store comes from ``--store-config`` (a YAML configuration's
``store:``), else ``STORAGE_ACCOUNT_CONNECTION_STRING`` (+ ``STORAGE_ACCOUNT_CONTAINER_NAME``), else the
environment of every archai-aml command (``ARCHAI_AML_STORE``), else the embedded default.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from pydantic import SecretStr

from archai_aml.config import StoreConfig
from archai_aml.errors import ConfigError, DatasetError
from archai_aml.steps.datastore import datastore_uri, split_store_path
from archai_aml.steps.labels import npy_to_record, write_jsonl
from archai_aml.steps.settings import StepSettings, env_field, run_cli
from archai_aml.store import Store, open_store, resolve_store_config, store_config_from_env
from archai_aml.store.rules import safe_blob_path

__all__ = ["DataLoaderSettings", "LoadResult", "load_archive", "main", "redact_url"]

log = logging.getLogger(__name__)

_IMAGE_SUFFIXES = (".jpg", ".jpeg")


class DataLoaderSettings(StepSettings):
    archive: Path | None = env_field(None, env="RAW_ARCHIVE_PATH", description="local zip archive")
    raw_blob_sas_url: SecretStr | None = env_field(
        None, env="RAW_BLOB_SAS_URL", description="SAS URL of the zip"
    )
    raw_input_path: Path | None = env_field(
        None,
        env="RAW_INPUT_PATH",
        description="where to keep the downloaded zip and its files (default: temp)",
    )
    image_output_path: str = env_field("data/images", env="IMAGE_OUTPUT_PATH", description="datastore path")
    label_output_path: str = env_field("data/labels", env="LABEL_OUTPUT_PATH", description="datastore path")
    datastore: str = env_field(
        "workspaceblobstore",
        env="DATASTORE_NAME",
        description="datastore that points at the store's container",
    )
    store_config: Path | None = env_field(None, description="YAML configuration whose store: is used")
    storage_connection_string: SecretStr | None = env_field(None, env="STORAGE_ACCOUNT_CONNECTION_STRING")
    storage_container: str | None = env_field(None, env="STORAGE_ACCOUNT_CONTAINER_NAME")
    output: Path | None = env_field(None, description="write the result (URIs, counts) to this JSON file")


@dataclass
class LoadResult:
    images: int
    boxes: int
    image_uri: str
    label_uri: str
    #: Local folders of the uploaded images/labels (embedded store only).
    image_folder: str | None
    label_folder: str | None


def redact_url(url: str) -> str:
    """``url`` without its query (where a SAS token lives)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def download(url: str, target: Path, timeout_s: float = 120.0) -> Path:
    """Stream ``url`` into ``target``; errors name the URL without its SAS."""
    shown = redact_url(url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"raw-blob-sas-url {shown!r} is not an http(s) URL")
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s", shown)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(target, "wb") as f:  # noqa: S310
            shutil.copyfileobj(response, f, length=1 << 20)
    except urllib.error.HTTPError as exc:
        raise DatasetError(
            f"download of {shown} failed: HTTP {exc.code} {exc.reason}; check the SAS"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise DatasetError(f"download of {shown} failed: {reason}") from None
    return target


def _extract(archive: Path, folder: Path) -> list[Path]:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{archive.name} is not a readable zip archive: {exc}") from None
    files = []
    with zf:
        for member in zf.infolist():
            if member.is_dir() or member.filename.startswith("__MACOSX/"):
                continue
            target = safe_blob_path(folder, member.filename)  # refuses names that escape the folder
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            files.append(target)
    return files


def _pairs(files: Sequence[Path]) -> tuple[list[tuple[Path, Path]], list[str]]:
    images: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    classes: list[str] = []
    for path in files:
        suffix = path.suffix.lower()
        table = images if suffix in _IMAGE_SUFFIXES else labels if suffix == ".npy" else None
        if path.name == "classes.txt":
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(
                    f"the archive's classes.txt is not UTF-8 text (byte {exc.start}: {exc.reason}): save it "
                    "as UTF-8, one class name a line"
                ) from None
            classes = [line.strip() for line in text.splitlines() if line.strip()]
        if table is None:
            continue
        if path.stem in table:
            raise DatasetError(
                f"the archive holds two files named {path.stem}{suffix}: file stems must be unique"
            )
        table[path.stem] = path
    missing = sorted(set(images) - set(labels))
    orphans = sorted(set(labels) - set(images))
    if missing or orphans:
        raise DatasetError(
            f"images without a .npy label: {missing[:5]}; labels without an image: {orphans[:5]} "
            "(each image.jpg needs image.npy)"
        )
    if not images:
        raise DatasetError("the archive holds no .jpg/.jpeg images")
    return [(images[s], labels[s]) for s in sorted(images)], classes


def open_data_store(settings: DataLoaderSettings) -> Store:
    config: StoreConfig
    if settings.store_config is not None:
        _, config = resolve_store_config(settings.store_config)
    elif settings.storage_connection_string is not None:
        config = StoreConfig.model_validate(
            {"backend": "azure", "connection_string": settings.storage_connection_string}
        )
    else:
        config = store_config_from_env() or StoreConfig()
    if settings.storage_container:
        config = config.model_copy(update={"container_name": settings.storage_container})
        StoreConfig.model_validate(config.model_dump())  # the container name checked
    return open_store(config)


def load_archive(settings: DataLoaderSettings, store: Store | None = None) -> LoadResult:
    """Extract, convert and upload (see the module docstring)."""
    if (settings.archive is None) == (settings.raw_blob_sas_url is None):
        raise ConfigError(
            "give exactly one of --archive (RAW_ARCHIVE_PATH) or --raw-blob-sas-url (RAW_BLOB_SAS_URL)"
        )
    img_part, img_name, img_prefix = split_store_path(settings.image_output_path)
    lbl_part, lbl_name, lbl_prefix = split_store_path(settings.label_output_path)
    with tempfile.TemporaryDirectory(prefix="archai_aml_loader_") as tmp:
        work = Path(settings.raw_input_path or tmp)
        archive = settings.archive
        if settings.raw_blob_sas_url is not None:
            archive = download(settings.raw_blob_sas_url.get_secret_value(), work / "raw.zip")
        assert archive is not None
        if not archive.is_file():
            raise DatasetError(f"archive {archive} does not exist")
        files = _extract(archive, work / "extracted")
        pairs, classes = _pairs(files)
        images_dir, labels_dir = work / "images", work / "labels"
        images_dir.mkdir(parents=True, exist_ok=True)
        boxes = 0
        for image_path, npy_path in pairs:
            try:
                with Image.open(image_path) as im:
                    if im.format != "JPEG":
                        raise DatasetError(f"{image_path.name} is a {im.format} image, not JPEG")
                    width, height = im.size
            except Image.DecompressionBombError as exc:  # a header claiming a huge image: never decoded
                raise DatasetError(
                    f"image {image_path.name} claims more pixels than any image this loader takes ({exc})"
                ) from None
            except (UnidentifiedImageError, OSError) as exc:
                raise DatasetError(f"{image_path.name} is not a readable image: {exc}") from None
            limit = Image.MAX_IMAGE_PIXELS
            if limit is not None and width * height > limit:  # PIL only warns below twice its limit
                raise DatasetError(
                    f"image {image_path.name} claims {width}x{height} pixels, more than the limit of "
                    f"{limit} (PIL.Image.MAX_IMAGE_PIXELS): a damaged or hostile header"
                )
            try:
                record = npy_to_record(npy_path, image_path.name, width, height, classes)
            except DatasetError as exc:
                raise DatasetError(f"image {image_path.name}: {exc}") from None
            boxes += len(record["label"])
            shutil.copyfile(image_path, images_dir / image_path.name)
            write_jsonl(labels_dir / f"{image_path.stem}.jsonl", [record])
        own_store = store is None
        store = store or open_data_store(settings)
        try:
            store.upload(img_part, img_name, images_dir, blob_name=img_prefix)
            store.upload(lbl_part, lbl_name, labels_dir, blob_name=lbl_prefix)
            root = getattr(store, "blob_root", None)
        finally:
            if own_store:
                store.close()
    local = Path(root) if root is not None else None
    result = LoadResult(
        images=len(pairs),
        boxes=boxes,
        image_uri=datastore_uri(settings.datastore, settings.image_output_path),
        label_uri=datastore_uri(settings.datastore, settings.label_output_path),
        image_folder=str(local / settings.image_output_path.strip("/")) if local else None,
        label_folder=str(local / settings.label_output_path.strip("/")) if local else None,
    )
    log.info(
        "uploaded %d images (%d boxes) to %s and their labels to %s",
        result.images,
        boxes,
        result.image_uri,
        result.label_uri,
    )
    if settings.output is not None:
        settings.output.parent.mkdir(parents=True, exist_ok=True)
        settings.output.write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(DataLoaderSettings, load_archive, argv, prog="data_loader", description=__doc__ or "")


if __name__ == "__main__":
    raise SystemExit(main())
