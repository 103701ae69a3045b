"""Data aggregation: the per-image label JSONL files into one JSONL (each ``image_url`` the image's absolute
datastore path) plus the MLTable that reads it, for AutoML and the next steps::

    python -m archai_aml.steps.aggregate --input-image-data-path <images folder> \\
        --input-label-data-path <labels folder> \\
        --input-images-string-absolute-path azureml://datastores/workspaceblobstore/paths/data/images \\
        --output-path out/aggregated

In the pipeline, ``INPUT_IMAGE_DATA_PATH`` (a datastore URI) is bound to both: mounted as the image folder,
and passed as the string prefix. Every label must name an image that is in the image folder, and
each image may be labelled once; images without labels are left out (and counted in the log).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from archai_aml.errors import ConfigError, DatasetError
from archai_aml.steps.labels import image_name, read_jsonl, write_mltable
from archai_aml.steps.settings import StepSettings, env_field, run_cli

__all__ = ["AggregateSettings", "aggregate", "main"]

log = logging.getLogger(__name__)


class AggregateSettings(StepSettings):
    input_image_data_path: Path = env_field(env="INPUT_IMAGE_DATA_PATH", description="folder of the images")
    input_label_data_path: Path = env_field(
        env="INPUT_LABEL_DATA_PATH", description="folder of the .jsonl labels"
    )
    input_images_string_absolute_path: str | None = env_field(
        None,
        env="INPUT_IMAGES_STRING_ABSOLUTE_PATH",
        description="datastore URI of the image folder (azureml://datastores/<ds>/paths/...)",
    )
    output_path: Path = env_field(
        env="AGGREGATED_OUTPUT_PATH", description="folder for annotations.jsonl + MLTable"
    )


def aggregate(settings: AggregateSettings) -> int:
    """Write the aggregated MLTable folder; returns the number of labelled images."""
    images, labels = settings.input_image_data_path, settings.input_label_data_path
    prefix = settings.input_images_string_absolute_path or str(images)
    if not prefix.startswith("azureml://"):
        raise ConfigError(
            f"input-images-string-absolute-path {prefix!r} is not a datastore URI: give "
            "azureml://datastores/<datastore>/paths/<image folder> (AutoML reads image_url from it)"
        )
    for what, folder in (("image", images), ("label", labels)):
        if not folder.is_dir():
            raise DatasetError(f"{what} folder {folder} does not exist")
    files = sorted(labels.rglob("*.jsonl"))
    if not files:
        raise DatasetError(f"label folder {labels} holds no .jsonl files")
    present = {p.name for p in images.iterdir() if p.is_file()}
    seen: dict[str, str] = {}
    records = []
    for path in files:
        for record in read_jsonl(path):
            name = image_name(record)
            if name not in present:
                raise DatasetError(f"label file {path.name} names image {name!r}, which is not in {images}")
            if name in seen:
                raise DatasetError(f"image {name!r} is labelled twice: {seen[name]} and {path.name}")
            seen[name] = path.name
            records.append({**record, "image_url": f"{prefix.rstrip('/')}/{name}"})
    count = write_mltable(settings.output_path, records)
    unlabelled = len(present - set(seen))
    log.info(
        "aggregated %d label records from %d files into %s (%d images without labels left out)",
        count,
        len(files),
        settings.output_path,
        unlabelled,
    )
    return count


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(AggregateSettings, aggregate, argv, prog="aggregate", description=__doc__ or "")


if __name__ == "__main__":
    raise SystemExit(main())
