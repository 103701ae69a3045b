"""Publish the pipeline to rerun on a schedule (Azure ML), or run the same schedule definition once here.

A schedule definition is a YAML file::

    name: symbol-detection-nightly
    pipeline: examples/symbol_detection/pipeline.py   # a file with PipelineSettings and build_pipeline
    settings:                                         # PipelineSettings values (else their variables)
      input_image_data_path: azureml://datastores/workspaceblobstore/paths/data/images
      input_label_data_path: azureml://datastores/workspaceblobstore/paths/data/labels
    trigger: {cron: "0 2 * * *", time_zone: UTC}      # or {frequency: day, interval: 1, hours: [2], minutes: [0]}

- ``archai-aml schedule publish FILE [--dry-run]``: the pipeline (``backend: azure``) is registered as a
  pipeline component (``MLClient.components``) and a ``JobSchedule`` with a ``CronTrigger`` or
  ``RecurrenceTrigger`` creates a pipeline job from it (``MLClient.schedules``); ``--dry-run`` prints both as
  YAML and creates nothing.
- ``archai-aml schedule run FILE``: one run of the same pipeline here, now (``LocalJobRunner``, the defaults
  resolved at the current folder). New images appended to the data folders are picked up: the data asset
  gets a new version (its content hash changed), the model a new one, and the best-model alias moves only
  when the mAP improved.

The pipeline file is the user's own code, imported as a module (like ``python pipeline.py``).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from archai_aml.errors import ConfigError, JobError, WorkspaceError

__all__ = ["ScheduleDefinition", "TriggerConfig", "build_schedule", "load_definition", "publish", "run_once"]

log = logging.getLogger(__name__)


class TriggerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str | None = None
    frequency: Literal["minute", "hour", "day", "week", "month"] | None = None
    interval: int = Field(1, ge=1)
    hours: list[int] | None = None
    minutes: list[int] | None = None
    week_days: list[str] | None = None
    time_zone: str = "UTC"
    start_time: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TriggerConfig:
        if (self.cron is None) == (self.frequency is None):
            raise ValueError(
                "give either cron (an expression) or frequency (a recurrence), not both or neither"
            )
        return self

    def build(self) -> Any:
        from azure.ai.ml.entities import CronTrigger, RecurrencePattern, RecurrenceTrigger

        if self.cron is not None:
            return CronTrigger(expression=self.cron, time_zone=self.time_zone, start_time=self.start_time)
        pattern = None
        if self.hours is not None or self.minutes is not None:
            pattern = RecurrencePattern(
                hours=self.hours or [0], minutes=self.minutes or [0], week_days=self.week_days
            )
        assert self.frequency is not None
        return RecurrenceTrigger(
            frequency=self.frequency, interval=self.interval, schedule=pattern, time_zone=self.time_zone,
            start_time=self.start_time,
        )  # fmt: skip


class ScheduleDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
    pipeline: Path
    settings: dict[str, Any] = Field(default_factory=dict)
    trigger: TriggerConfig
    description: str | None = None


def load_definition(path: str | Path) -> ScheduleDefinition:
    """The definition of a YAML file (``${VAR}`` substituted); a bad field fails naming it."""
    import yaml

    from archai_aml.config import substitute_env

    file = Path(path)
    try:
        data = substitute_env(yaml.safe_load(file.read_text(encoding="utf-8")) or {})
    except FileNotFoundError:
        raise ConfigError(f"schedule definition {file} does not exist") from None
    try:
        definition = ScheduleDefinition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "schedule"
        raise ConfigError(f"{file}: {where}: {first['msg']}") from None
    if not definition.pipeline.is_absolute():
        definition.pipeline = (file.parent / definition.pipeline).resolve()
        if not definition.pipeline.is_file():  # relative to the current folder, as a command line would be
            definition.pipeline = Path(data["pipeline"]).resolve()
    if not definition.pipeline.is_file():
        raise ConfigError(f"{file}: pipeline: {data['pipeline']} does not exist")
    return definition


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"archai_aml_pipeline_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import the pipeline file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    if not hasattr(module, "build_pipeline") or not hasattr(module, "PipelineSettings"):
        raise ConfigError(f"{path} defines no PipelineSettings and build_pipeline")
    return module


def build_job(definition: ScheduleDefinition, backend: Literal["local", "azure"]) -> Any:
    """The pipeline job of the definition for ``backend``."""
    module = _module(definition.pipeline)
    settings = module.PipelineSettings.load({**definition.settings, "backend": backend})
    return module.build_pipeline(settings)


def build_schedule(definition: ScheduleDefinition, create_job: Any) -> Any:
    """The ``JobSchedule`` that creates ``create_job`` on the definition's trigger."""
    from azure.ai.ml.entities import JobSchedule

    return JobSchedule(
        name=definition.name, trigger=definition.trigger.build(), create_job=create_job,
        description=definition.description, tags={"archai_aml": "schedule"},
    )  # fmt: skip


def publish(
    definition: ScheduleDefinition, ml_client: Any = None, *, dry_run: bool = False
) -> dict[str, Any]:
    """Register the pipeline component and create the schedule (``dry_run``: only describe them)."""
    import yaml
    from azure.ai.ml.entities import PipelineJob

    job = build_job(definition, "azure")
    component = job.component
    if dry_run:
        schedule = build_schedule(definition, job)
        text = {"component": component._to_dict(), "schedule": schedule._to_dict()}
        log.info(
            "dry run: would register pipeline component %s and create schedule %s",
            component.name,
            definition.name,
        )
        return {"dry_run": True, "yaml": yaml.safe_dump(text, sort_keys=False)}
    if ml_client is None:
        from archai_aml.steps.registry import RegistrySettings

        ml_client = RegistrySettings.load().ml_client()
    try:
        registered = ml_client.components.create_or_update(component)
    except Exception as exc:
        raise WorkspaceError(f"could not register the pipeline component {component.name}: {exc}") from exc
    create_job = PipelineJob(
        component=f"azureml:{registered.name}:{registered.version}", inputs=dict(job.inputs),
        settings=job.settings, experiment_name=job.experiment_name, display_name=definition.name,
    )  # fmt: skip
    schedule = build_schedule(definition, create_job)
    try:
        created = ml_client.schedules.begin_create_or_update(schedule).result()
    except Exception as exc:
        raise WorkspaceError(f"could not create the schedule {definition.name}: {exc}") from exc
    log.info("schedule %s creates %s:%s (%s)", created.name, registered.name, registered.version,
             type(schedule.trigger).__name__)  # fmt: skip
    return {
        "dry_run": False,
        "component": f"{registered.name}:{registered.version}",
        "schedule": created.name,
    }


def run_once(definition: ScheduleDefinition, *, jobs_root: str | Path = ".archai_aml/jobs", timeout: float | None = None,
             env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """One run of the definition's pipeline here, now; returns the pipeline's name, status and outputs folder."""
    from archai_aml.pipelines.local import LocalJobRunner
    from archai_aml.steps.launch import launch_environment

    variables = {**launch_environment(), **(env or {})}
    job = build_job(_local_paths(definition, variables), "local")
    runner = LocalJobRunner(jobs_root, gpus=[], env=variables)
    name = runner.submit(job, experiment_name=job.experiment_name or definition.name).name
    status = runner.wait(name, timeout=timeout)
    log.info(
        "schedule %s: pipeline %s %s (logs in %s)", definition.name, name, status, runner.local_root / name
    )
    if status != "Completed":
        raise JobError(
            f"schedule {definition.name}: pipeline {name} {status}; logs in {runner.local_root / name}"
        )
    return {"pipeline": name, "status": status, "outputs": str(runner.local_root / name / "outputs")}


def _local_paths(definition: ScheduleDefinition, env: dict[str, str]) -> ScheduleDefinition:
    """The definition with its image and label folders given as datastore URIs mapped to this machine's
    folders (the embedded store's container, as the steps resolve them); the images' URI string stays."""
    from archai_aml.steps.datastore import local_datastore_folder, resolve_local
    from archai_aml.store import store_config_from_env

    values = dict(definition.settings)
    root = None
    for key in ("input_image_data_path", "input_label_data_path"):
        value = values.get(key)
        if isinstance(value, str) and value.startswith("azureml://"):
            root = root or local_datastore_folder(store_config_from_env(env))
            values[key] = str(resolve_local(value, root))
            if key == "input_image_data_path":
                values.setdefault("input_images_string_absolute_path", value)
    return definition.model_copy(update={"settings": values})
