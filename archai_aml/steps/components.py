"""``azure-ai-ml`` command components of the steps (each runs ``python -m archai_aml.steps.<step> ...``) and the
AutoML training node, for :func:`azure.ai.ml.dsl.pipeline`.

The same components run on Azure ML (the environment must have archai-aml installed) and on
:class:`~archai_aml.pipelines.local.LocalJobRunner`. Their inputs and outputs, by step:

=============== ======================================================= ==========================
step            inputs                                                  outputs
=============== ======================================================= ==========================
aggregate       images, labels (uri_folder), images_uri (string)        aggregated (mltable)
split           data (mltable), use_stratified_split, n_fold,           train, val (mltable)
                mandatory_train, mandatory_val (string, optional)
register_data   train, val (mltable), data_asset_name, data_store_name  dataset_version (uri_folder)
train           train, val (mltable), epochs (local detector)           best_model (mlflow_model)
register_model  model (mlflow_model), dataset_version, model_base_name  model_metadata (uri_folder)
tag_model       model_metadata (uri_folder), model_base_name            best_model_metadata
deploy          best_model_metadata (uri_folder), model_base_name       deployment (uri_folder)
=============== ======================================================= ==========================
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from archai_aml._optional import require
from archai_aml.errors import ConfigError
from archai_aml.steps.automl import build_automl_job

__all__ = ["SPECS", "automl_node", "step_component"]

#: step -> (inputs {name: (type, flag)}, outputs {name: (type, flag)})
SPECS: dict[str, tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]] = {
    "aggregate": (
        {
            "images": ("uri_folder", "input-image-data-path"),
            "labels": ("uri_folder", "input-label-data-path"),
            "images_uri": ("string", "input-images-string-absolute-path"),
        },
        {"aggregated": ("mltable", "output-path")},
    ),
    "split": (
        {
            "data": ("mltable", "input-data-path"),
            "use_stratified_split": ("boolean", "use-stratified-split"),
            "n_fold": ("integer", "stratified-split-n-fold"),
            "mandatory_train": ("string", "mandatory-train-filenames"),
            "mandatory_val": ("string", "mandatory-val-filenames"),
        },
        {"train": ("mltable", "train-output-path"), "val": ("mltable", "val-output-path")},
    ),
    "register_data": (
        {
            "train": ("mltable", "train-input-path"),
            "val": ("mltable", "val-input-path"),
            "data_asset_name": ("string", "data-asset-name"),
            "data_store_name": ("string", "data-store-name"),
        },
        {"dataset_version": ("uri_folder", "output-path")},
    ),
    "train": (
        {
            "train": ("mltable", "train-dataset"),
            "val": ("mltable", "val-dataset"),
            "epochs": ("integer", "epochs"),
        },
        {"best_model": ("mlflow_model", "output-path")},
    ),
    "register_model": (
        {
            "model": ("mlflow_model", "model-input-path"),
            "dataset_version": ("uri_folder", "dataset-version-path"),
            "model_base_name": ("string", "model-base-name"),
        },
        {"model_metadata": ("uri_folder", "model-metadata-path")},
    ),
    "tag_model": (
        {
            "model_metadata": ("uri_folder", "model-metadata-path"),
            "model_base_name": ("string", "model-base-name"),
        },
        {"best_model_metadata": ("uri_folder", "best-model-metadata-path")},
    ),
    "deploy": (
        {
            "best_model_metadata": ("uri_folder", "best-model-metadata-path"),
            "model_base_name": ("string", "model-base-name"),
        },
        {"deployment": ("uri_folder", "output-path")},
    ),
}


def step_component(
    step: str,
    *,
    environment: str | None = None,
    compute: str | None = None,
    environment_variables: Mapping[str, str] | None = None,
    code: str | Path | None = None,
    omit: Collection[str] = (),
) -> Any:
    """The command component of ``step`` (``omit``: inputs left out of it, e.g. an empty mandatory list)."""
    require("azure.ai.ml", feature="building the pipeline steps' components")
    from azure.ai.ml import Input, Output, command

    if step not in SPECS:
        raise ConfigError(f"unknown step {step!r}; steps: {sorted(SPECS)}")
    spec_in, spec_out = SPECS[step]
    unknown = set(omit) - set(spec_in)
    if unknown:
        raise ConfigError(f"step {step} has no inputs {sorted(unknown)}")
    inputs = {k: Input(type=t) for k, (t, _) in spec_in.items() if k not in omit}
    outputs = {k: Output(type=t) for k, (t, _) in spec_out.items()}
    args = [f"--{flag} ${{{{inputs.{k}}}}}" for k, (_, flag) in spec_in.items() if k not in omit]
    args += [f"--{flag} ${{{{outputs.{k}}}}}" for k, (_, flag) in spec_out.items()]
    return command(
        name=f"archai_aml_{step}",
        display_name=step,
        description=f"archai-aml pipeline step {step}",
        command=" ".join([f"python -m archai_aml.steps.{step}", *args]),
        inputs=inputs,
        outputs=outputs,
        environment=environment,
        compute=compute,
        environment_variables=dict(environment_variables or {}),
        code=str(Path(code).resolve()) if code else None,
        is_deterministic=False,
    )


def automl_node(*, training_data: Any, validation_data: Any, **settings: Any) -> Any:
    """The AutoML image object-detection job as a pipeline node (its ``outputs.best_model`` is the model)."""
    from azure.ai.ml import Output

    return build_automl_job(
        training_data=training_data,
        validation_data=validation_data,
        outputs={"best_model": Output(type="mlflow_model")},
        **settings,
    )
