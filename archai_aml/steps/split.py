"""Data split: train and validation MLTables from the aggregated MLTable::

    python -m archai_aml.steps.split --input-data-path out/aggregated \\
        --train-output-path out/train --val-output-path out/val

- ``USE_STRATIFIED_SPLIT`` true (the default): scikit-learn's ``StratifiedKFold`` with
  ``STRATIFIED_SPLIT_N_FOLD`` folds (shuffled with ``--seed``); fold ``--fold`` (0) is the validation set, the
  other folds the training set. An image with boxes of several classes is stratified by its **rarest** class
  (the class found in the fewest images of the data set; ties by name), so that the rare classes are spread
  over the folds; an image without boxes is stratified as ``<none>``. Each stratum needs at least ``k``
  images: fewer is an error naming the class.
- false: no split; the training set is every image, less the mandatory validation files.
- ``MANDATORY_TRAIN_FILENAMES`` / ``MANDATORY_VAL_FILENAMES`` (image file names, comma-separated) are taken
  out before the split and put into their set. A name that is not in the data set, or is in both lists, is an
  error.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from archai_aml.errors import ConfigError, DatasetError
from archai_aml.steps.labels import image_name, read_mltable, record_classes, write_mltable
from archai_aml.steps.outputs import check_output_folder
from archai_aml.steps.settings import StepSettings, env_field, mandatory_list_validator, run_cli

__all__ = ["NO_CLASS", "SplitResult", "SplitSettings", "main", "split", "split_records", "strata"]

log = logging.getLogger(__name__)

#: The stratum of an image without boxes.
NO_CLASS = "<none>"


class SplitSettings(StepSettings):
    input_data_path: Path = env_field(env="SPLIT_INPUT_DATA_PATH", description="aggregated MLTable folder")
    use_stratified_split: bool = env_field(True, env="USE_STRATIFIED_SPLIT")
    stratified_split_n_fold: int = env_field(5, env="STRATIFIED_SPLIT_N_FOLD", ge=2)
    fold: int = Field(0, ge=0, description="which fold is the validation set")
    seed: int = Field(42, description="shuffle seed of the folds")
    mandatory_train_filenames: list[str] = env_field([], env="MANDATORY_TRAIN_FILENAMES")
    mandatory_val_filenames: list[str] = env_field([], env="MANDATORY_VAL_FILENAMES")
    train_output_path: Path = env_field(env="TRAIN_OUTPUT_PATH", description="folder of the training MLTable")
    val_output_path: Path = env_field(env="VAL_OUTPUT_PATH", description="folder of the validation MLTable")

    _lists = mandatory_list_validator("mandatory_train_filenames", "mandatory_val_filenames")


@dataclass
class SplitResult:
    train: int
    val: int


def strata(records: Sequence[dict[str, Any]]) -> list[str]:
    """The stratum of each record: its rarest class (see the module docstring)."""
    images_with = Counter(c for r in records for c in record_classes(r))
    out = []
    for record in records:
        classes = record_classes(record)
        out.append(min(classes, key=lambda c: (images_with[c], c)) if classes else NO_CLASS)
    return out


def split_records(
    records: Sequence[dict[str, Any]], settings: SplitSettings
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, val) records (see the module docstring)."""
    by_name = {image_name(r): r for r in records}
    if len(by_name) != len(records):
        twice = sorted(n for n, c in Counter(image_name(r) for r in records).items() if c > 1)
        raise DatasetError(
            f"the aggregated data set names {len(twice)} image(s) twice: {', '.join(twice[:5])}"
            f"{' ...' if len(twice) > 5 else ''} (each image once: fix the aggregation's input)"
        )
    train_names, val_names = settings.mandatory_train_filenames, settings.mandatory_val_filenames
    for what, names in (("MANDATORY_TRAIN_FILENAMES", train_names), ("MANDATORY_VAL_FILENAMES", val_names)):
        missing = [n for n in names if n not in by_name]
        if missing:
            raise DatasetError(f"{what}: {missing} not in the data set ({len(by_name)} images)")
    both = sorted(set(train_names) & set(val_names))
    if both:
        raise ConfigError(f"{both} are in both MANDATORY_TRAIN_FILENAMES and MANDATORY_VAL_FILENAMES")
    forced = set(train_names) | set(val_names)
    rest = [r for r in records if image_name(r) not in forced]
    train = [by_name[n] for n in train_names]
    val = [by_name[n] for n in val_names]
    if not settings.use_stratified_split:
        return train + rest, val
    k = settings.stratified_split_n_fold
    if settings.fold >= k:
        raise ConfigError(f"fold {settings.fold} does not exist with STRATIFIED_SPLIT_N_FOLD={k}")
    labels = strata(rest)
    counts = Counter(labels)
    small = sorted((n, c) for c, n in counts.items() if n < k)
    if small:
        n, cls = small[0]
        raise DatasetError(
            f"STRATIFIED_SPLIT_N_FOLD={k} is larger than the {n} image(s) of class {cls!r} (images whose rarest "
            f"class it is, mandatory files excluded): lower k to at most {n}, add images, or set "
            "USE_STRATIFIED_SPLIT=false"
        )
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=settings.seed)
    for index, (train_idx, val_idx) in enumerate(folds.split([[0]] * len(rest), labels)):
        if index == settings.fold:
            return train + [rest[i] for i in train_idx], val + [rest[i] for i in val_idx]
    raise AssertionError("unreachable: fold < k")


def split(settings: SplitSettings) -> SplitResult:
    records = read_mltable(settings.input_data_path, "input")
    if not records:
        raise DatasetError(f"{settings.input_data_path} holds no records")
    train, val = split_records(records, settings)
    # both outputs checked before either is written: a failed split writes nothing
    check_output_folder(settings.train_output_path, "training output folder")
    check_output_folder(settings.val_output_path, "validation output folder")
    if settings.train_output_path.resolve() == settings.val_output_path.resolve():
        raise ConfigError(f"the training and validation outputs are one folder: {settings.train_output_path}")
    write_mltable(settings.train_output_path, train)
    write_mltable(settings.val_output_path, val)
    log.info(
        "split %d images into %d train / %d validation (%s)",
        len(records),
        len(train),
        len(val),
        f"stratified, fold {settings.fold} of {settings.stratified_split_n_fold}"
        if settings.use_stratified_split
        else "no split",
    )
    return SplitResult(train=len(train), val=len(val))


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(SplitSettings, split, argv, prog="split", description=__doc__ or "")


if __name__ == "__main__":
    raise SystemExit(main())
