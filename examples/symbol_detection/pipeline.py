"""The symbol-detection pipeline: the six archai-aml steps wired with ``dsl.pipeline``.

    # once: put the images and labels into the data store (embedded store by default)
    python -m archai_aml.steps.data_loader --archive symbols.zip --output loader.json
    # then, here (LocalJobRunner, the small local detector, MLflow registry) ...
    python examples/symbol_detection/pipeline.py --input-image-data-path <images folder> \\
        --input-label-data-path <labels folder> \\
        --input-images-string-absolute-path azureml://datastores/workspaceblobstore/paths/data/images
    # ... or on Azure ML (AutoML, the workspace registry)
    python examples/symbol_detection/pipeline.py --backend azure --environment symbol-env@latest \\
        --input-image-data-path azureml://datastores/workspaceblobstore/paths/data/images \\
        --input-label-data-path azureml://datastores/workspaceblobstore/paths/data/labels

Settings are arguments or the variables of docs/pipeline-steps.md (``PIPELINE_CPU_COMPUTE_NAME``,
``TRAINING_GPU_COMPUTE_NAME``, ``USE_STRATIFIED_SPLIT``, ``TRAINING_MAX_TRIALS``, ...). With ``TRAIN_DATASET``
set, the data steps are skipped and training starts from that data.
"""

# no `from __future__ import annotations`: dsl.pipeline reads the Input(...) annotations at run time

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from archai_aml.steps.automl import DEFAULT_MODEL_CHOICES
from archai_aml.steps.components import automl_node, step_component
from archai_aml.steps.settings import StepSettings, env_field, mandatory_list_validator

log = logging.getLogger("symbol_detection")

HERE = Path(__file__).resolve().parent


class PipelineSettings(StepSettings):
    backend: Literal["local", "azure"] = env_field("local", env="PIPELINE_BACKEND")
    pipeline_cpu_compute_name: str = env_field("cpu-cluster", env="PIPELINE_CPU_COMPUTE_NAME")
    training_gpu_compute_name: str = env_field("gpu-cluster", env="TRAINING_GPU_COMPUTE_NAME")
    environment: str | None = env_field(None, env="PIPELINE_ENVIRONMENT", description="Azure ML environment")
    input_image_data_path: str | None = env_field(None, env="INPUT_IMAGE_DATA_PATH")
    input_label_data_path: str | None = env_field(None, env="INPUT_LABEL_DATA_PATH")
    input_images_string_absolute_path: str | None = env_field(None, env="INPUT_IMAGES_STRING_ABSOLUTE_PATH")
    use_stratified_split: bool = env_field(True, env="USE_STRATIFIED_SPLIT")
    stratified_split_n_fold: int = env_field(5, env="STRATIFIED_SPLIT_N_FOLD", ge=2)
    mandatory_train_filenames: list[str] = env_field([], env="MANDATORY_TRAIN_FILENAMES")
    mandatory_val_filenames: list[str] = env_field([], env="MANDATORY_VAL_FILENAMES")
    data_asset_name: str = env_field("symbol-detection-data", env="DATA_ASSET_NAME")
    data_store_name: str = env_field("workspaceblobstore", env="DATA_STORE_NAME")
    train_dataset: str | None = env_field(None, env="TRAIN_DATASET")
    val_dataset: str | None = env_field(None, env="VAL_DATASET")
    model_base_name: str = env_field("symbol-detection", env="MODEL_BASE_NAME")
    timeout_minutes: int = env_field(180, env="TRAINING_JOB_TIMEOUT_MINUTES", ge=1)
    max_trials: int = env_field(8, env="TRAINING_MAX_TRIALS", ge=1)
    concurrent_trials: int = env_field(4, env="TRAINING_CONCURRENT_TRIALS", ge=1)
    validation_data_size: float = env_field(0.2, env="TRAINING_VALIDATION_DATA_SIZE", gt=0.0, lt=1.0)
    auto_mode: bool = env_field(True, env="AUTO_MODE")
    search_space_file: Path | None = env_field(
        HERE / "config_search_space.yml", env="TRAINING_SEARCH_SPACE_FILE"
    )
    model_choices: list[str] = env_field(list(DEFAULT_MODEL_CHOICES), env="TRAINING_MODEL_CHOICES")
    experiment_name: str = env_field("symbol-detection", env="EXPERIMENT_NAME")
    epochs: int = env_field(30, env="LOCAL_TRAINING_EPOCHS", ge=1, description="local detector only")

    _lists = mandatory_list_validator("mandatory_train_filenames", "mandatory_val_filenames", "model_choices")


def build_pipeline(s: PipelineSettings, *, node_environment: Mapping[str, str] | None = None) -> Any:
    """The pipeline job (not submitted). ``node_environment``: variables every node gets."""
    from azure.ai.ml import Input, dsl

    azure = s.backend == "azure"
    env = dict(node_environment or {})
    if azure:
        env.setdefault("ARCHAI_AML_REGISTRY", "workspace")
    common: dict[str, Any] = {"environment": s.environment, "environment_variables": env, "code": HERE}
    cpu = s.pipeline_cpu_compute_name if azure else None
    gpu = s.training_gpu_compute_name if azure else None
    omit = [
        k
        for k, v in (
            ("mandatory_train", s.mandatory_train_filenames),
            ("mandatory_val", s.mandatory_val_filenames),
        )
        if not v
    ]
    has_val = s.use_stratified_split or bool(s.mandatory_val_filenames)
    automl = {
        "compute": s.training_gpu_compute_name,
        "experiment_name": s.experiment_name,
        "target_column_name": "label",
        "validation_data_size": s.validation_data_size,
        "max_trials": s.max_trials,
        "concurrent_trials": s.concurrent_trials,
        "timeout_minutes": s.timeout_minutes,
        "auto_mode": s.auto_mode,
        "search_space_file": s.search_space_file,
        "model_choices": s.model_choices,
    }

    def training(train: Any, val: Any) -> Any:
        if azure:
            node = automl_node(training_data=train, validation_data=val, **automl)
        else:
            node = step_component("train", compute=gpu, **common)(train=train, val=val, epochs=s.epochs)
        node.name = "train"
        return node

    def registration(model: Any, dataset_version: Any) -> Any:
        kwargs = {"model": model, "model_base_name": s.model_base_name}
        if dataset_version is None:
            reg = step_component("register_model", compute=cpu, omit=["dataset_version"], **common)(**kwargs)
        else:
            reg = step_component("register_model", compute=cpu, **common)(
                dataset_version=dataset_version, **kwargs
            )
        reg.name = "register_model"
        tag = step_component("tag_model", compute=cpu, **common)(
            model_metadata=reg.outputs.model_metadata, model_base_name=s.model_base_name
        )
        tag.name = "tag_model"
        return tag.outputs.best_model_metadata

    if s.train_dataset:  # reuse registered data: train -> register -> tag

        @dsl.pipeline(name="symbol_detection_retrain", default_compute=cpu)  # type: ignore[call-overload]
        def retrain(  # type: ignore[no-untyped-def]
            train_data: Input(type="mltable"),  # type: ignore[valid-type]
            val_data: Input(type="mltable", optional=True) = None,  # type: ignore[valid-type]
        ):
            trained = training(train_data, val_data)
            return {"best_model_metadata": registration(trained.outputs.best_model, None)}

        inputs = {"train_data": Input(type="mltable", path=s.train_dataset)}
        if s.val_dataset:
            inputs["val_data"] = Input(type="mltable", path=s.val_dataset)
        job = retrain(**inputs)
    else:
        if not (s.input_image_data_path and s.input_label_data_path):
            raise SystemExit("set INPUT_IMAGE_DATA_PATH and INPUT_LABEL_DATA_PATH (or TRAIN_DATASET)")

        @dsl.pipeline(name="symbol_detection", default_compute=cpu)  # type: ignore[call-overload]
        def symbol_detection(  # type: ignore[no-untyped-def]
            images: Input(type="uri_folder"),  # type: ignore[valid-type]  # typed: it registers as a component
            labels: Input(type="uri_folder"),  # type: ignore[valid-type]
            images_uri: Input(type="string"),  # type: ignore[valid-type]
        ):
            agg = step_component("aggregate", compute=cpu, **common)(
                images=images, labels=labels, images_uri=images_uri
            )
            agg.name = "aggregate"
            split_args: dict[str, Any] = {
                "data": agg.outputs.aggregated,
                "use_stratified_split": s.use_stratified_split,
                "n_fold": s.stratified_split_n_fold,
            }
            if s.mandatory_train_filenames:
                split_args["mandatory_train"] = ",".join(s.mandatory_train_filenames)
            if s.mandatory_val_filenames:
                split_args["mandatory_val"] = ",".join(s.mandatory_val_filenames)
            parts = step_component("split", compute=cpu, omit=omit, **common)(**split_args)
            parts.name = "split"
            data = step_component("register_data", compute=cpu, **common)(
                train=parts.outputs.train,
                val=parts.outputs.val,
                data_asset_name=s.data_asset_name,
                data_store_name=s.data_store_name,
            )
            data.name = "register_data"
            trained = training(parts.outputs.train, parts.outputs.val if has_val or not azure else None)
            return {
                "best_model_metadata": registration(trained.outputs.best_model, data.outputs.dataset_version)
            }

        job = symbol_detection(
            images=Input(type="uri_folder", path=s.input_image_data_path),
            labels=Input(type="uri_folder", path=s.input_label_data_path),
            images_uri=s.input_images_string_absolute_path or s.input_image_data_path,
        )
    job.experiment_name = s.experiment_name
    job.settings.continue_on_step_failure = False
    return job


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = PipelineSettings.argument_parser("pipeline.py", __doc__ or "").parse_args(argv)
    settings = PipelineSettings.load(vars(args))
    job = build_pipeline(settings)
    if settings.backend == "azure":
        from archai_aml.pipelines.azureml import AzureMLJobRunner
        from archai_aml.steps.registry import RegistrySettings

        submitted = AzureMLJobRunner(RegistrySettings.load().ml_client()).submit(
            job, experiment_name=settings.experiment_name
        )
        log.info("submitted %s: %s", submitted.name, getattr(submitted, "studio_url", None))
        return 0
    from archai_aml.pipelines.local import LocalJobRunner
    from archai_aml.steps.launch import launch_environment

    # the nodes run in this example's folder: resolve the store and MLflow defaults here, where the user
    # launched the pipeline, and pass them down (nothing lands in the source tree)
    runner = LocalJobRunner(".archai_aml/jobs", gpus=[], env=launch_environment())
    name = runner.submit(job, experiment_name=settings.experiment_name).name
    status = runner.wait(name)
    log.info("pipeline %s: %s (logs in .archai_aml/jobs/%s)", name, status, name)
    return 0 if status == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
