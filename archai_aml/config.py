"""Configuration of archai-aml: pydantic v2 models loaded from YAML with ``${ENV_VAR}`` substitution.

``${NAME}`` takes the environment variable ``NAME`` and fails at load time when it is not set;
``${NAME:-default}`` falls back to ``default``. A field that is wrong or unknown fails at load time with
a message naming it (``target.sdk_root: Extra inputs are not permitted (target 'cpu', whose settings
are: ...)``); the ``store:``, ``target:`` and ``job_runner:`` sections are validated by the settings model
of the backend they name (:mod:`archai_aml.plugins`). Secret values
(connection strings, account keys, SAS tokens) are :class:`pydantic.SecretStr`: they print and dump as
``**********``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from archai_aml.config_base import Bool, ConfigModel, Float, Int
from archai_aml.config_yaml import load_yaml, substitute_env
from archai_aml.errors import REDACTED, ConfigError, redact_secrets
from archai_aml.plugins import JOB_RUNNERS, STORES, TARGETS, Registry, SectionModel

__all__ = [
    "ArchaiAmlConfig",
    "AzureMLConfig",
    "ClusterConfig",
    "DatastoresConfig",
    "EnvironmentConfig",
    "JobRunnerConfig",
    "RunnerConfig",
    "SearchConfig",
    "StoreConfig",
    "TargetConfig",
    "TrainingConfig",
    "WorkspaceConfig",
    "dump_config",
    "known_secrets",
    "load_config",
    "load_yaml",
    "substitute_env",
]


_Model = ConfigModel  # the base of every section (unknown fields fail)


class StoreConfig(SectionModel):
    """Where status rows and blobs live: the settings every store backend has; ``backend`` picks the
    backend (a registered name), whose own model adds its fields.

    ``embedded`` (the default) keeps a SQLite database and a files folder under ``path``. ``azure`` uses an
    Azure storage account: a full ``connection_string`` (Azurite's ``UseDevelopmentStorage=true`` too), or
    ``account_name``/``table_url``/``blob_url`` with a ``sas_token``, or with an Azure AD identity
    (``DefaultAzureCredential``; ``managed_identity_client_id`` picks a user-assigned identity).
    ``StoreConfig(backend="azure", ...)`` builds the chosen backend's model.
    """

    registry: ClassVar[Registry] = STORES

    backend: str = "embedded"
    table_name: str = Field(default="status", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")
    container_name: str = Field(default="models", pattern=r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
    max_concurrency: Int = Field(default=8, ge=1, le=64)
    #: Progress bars of folder uploads and downloads: true always, false never, unset on a terminal only.
    progress: Bool | None = None

    @field_validator("backend")
    @classmethod
    def _registered(cls, value: str) -> str:
        return STORES.check_name(value)

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        """The factory gets these settings as ``config`` and the caller's keyword arguments."""
        return {"config": self, **context}

    def job_environment(self, include_secrets: bool) -> dict[str, str]:
        """Environment variables (besides the table and container names) that let a job open this store;
        see :func:`archai_aml.store.job_environment`. None by default: a job cannot reach the store."""
        return {}

    def http_counter(self) -> Any:
        """An object counting the HTTP requests the store sends (``.total``, ``.counts``) to pass to
        ``open_store(config, http_counter=...)``, or None when the backend sends none."""
        return None


class WorkspaceConfig(_Model):
    subscription_id: str
    resource_group: str
    workspace_name: str


class ClusterConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{1,31}$")
    size: str = "Standard_NC24ads_A100_v4"
    min_instances: Int = Field(default=0, ge=0)
    max_instances: Int = Field(default=4, ge=1)
    idle_time_before_scale_down: Int = Field(default=300, ge=0)
    tier: Literal["dedicated", "low_priority"] = "dedicated"

    @model_validator(mode="after")
    def _check_instances(self) -> ClusterConfig:
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances must not exceed max_instances")
        return self


class EnvironmentConfig(_Model):
    name: str = "archai-aml"
    version: str | None = None
    image: str = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04:latest"
    conda_file: Path | None = None


class DatastoresConfig(_Model):
    """Names of the Azure ML datastores: ``models`` points at the store's blob container."""

    models: str = "models"
    data: str = "datasets"
    #: Blob container (in the store's storage account) that the ``data`` datastore points at.
    data_container: str = Field(default="datasets", pattern=r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")


class AzureMLConfig(_Model):
    workspace: WorkspaceConfig
    training_cluster: ClusterConfig = ClusterConfig(name="gpu-cluster")
    cpu_cluster: ClusterConfig = ClusterConfig(name="cpu-cluster", size="Standard_D4s_v3")
    environment: EnvironmentConfig = EnvironmentConfig()
    datastores: DatastoresConfig = DatastoresConfig()
    identity_client_id: str | None = None
    #: ARM id of that user-assigned identity; ``archai-aml workspace setup`` attaches it to new clusters.
    identity_resource_id: str | None = None


class TrainingConfig(_Model):
    """The user's partial-training job.

    ``command`` runs inside ``code_dir``. It may use ``${{inputs.data}}`` and ``${{outputs.output}}``
    (Azure ML bindings) and the placeholders ``{model_id}``, ``{experiment}``, ``{epochs}``,
    ``{arch_file}`` (the ArchConfig JSON's blob name), which are filled per model.
    """

    code_dir: Path = Path("examples/face_segmentation")
    command: str = (
        "python train.py --data ${{inputs.data}} --output ${{outputs.output}} "
        "--model-id {model_id} --experiment {experiment} --epochs {epochs}"
    )
    data: str = "data"
    data_mode: Literal["download", "ro_mount"] = "download"
    epochs: Float = Field(default=1.0, gt=0)
    metric_key: str = "val_iou"
    environment_variables: dict[str, str] = Field(default_factory=dict)
    max_parallel: Int = Field(default=2, ge=1)
    jobs_per_gpu: Int = Field(default=1, ge=1)
    gpus: list[Int] | None = None
    timeout_seconds: Float = Field(default=3600.0, gt=0)
    max_failure_rate: Float = Field(default=0.5, ge=0.0, le=1.0)
    poll_interval_min_s: Float = Field(default=0.05, gt=0)
    poll_interval_max_s: Float = Field(default=20.0, gt=0)
    local_root: Path = Path(".archai_aml/jobs")


class TargetConfig(SectionModel):
    """The hardware a runner measures on: the settings every target has; ``name`` picks the backend (a
    registered name), whose own model adds its fields (``TargetConfig(name="snpe", ...)`` builds it)."""

    registry: ClassVar[Registry] = TARGETS

    name: str = "cpu"
    input_shape: list[Int] = Field(default_factory=lambda: [1, 3, 256, 256])
    device: str | None = None
    max_benchmark_runs: Int = Field(default=5, ge=1)
    benchmark_iterations: Int = Field(default=50, ge=1)
    calibration_images: Int = Field(default=32, ge=1)
    f1_onnx_images: Int = Field(default=10000, ge=1)
    f1_1k_images: Int = Field(default=1000, ge=1)
    f1_10k_images: Int = Field(default=10000, ge=1)
    dataset: str | None = None

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        return TARGETS.check_name(value)


class JobRunnerConfig(SectionModel):
    """Where training jobs run: ``name`` picks the job runner (a registered name; default ``azureml`` when
    the ``aml:`` section is given, else ``local``), whose own model adds its fields."""

    registry: ClassVar[Registry] = JOB_RUNNERS

    name: str = "local"

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        return JOB_RUNNERS.check_name(value)

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        """The factory gets the whole configuration (``config``) and the ``store_config`` jobs reach."""
        return {"config": context["config"], "store_config": context.get("store_config")}


class RunnerConfig(_Model):
    """How ``archai-aml runner`` works: lease length, polling, working and host-lock folders."""

    lease_ttl_s: Float = Field(default=60.0, gt=0)
    poll_interval_s: Float = Field(default=10.0, gt=0)
    working: Path = Path(".archai_aml/runner")
    lock_dir: Path | None = None


class SearchConfig(_Model):
    iterations: Int = Field(default=2, ge=1)
    init_num_models: Int = Field(default=4, ge=1)
    max_unseen_population: Int = Field(default=4, ge=1)
    mutations_per_parent: Int = Field(default=1, ge=1)
    num_crossovers: Int = Field(default=2, ge=0)
    num_random_mix: Int = Field(default=2, ge=0)
    seed: Int = 1
    #: Narrower choices for the example search space (``depths``, ``channels``, ``stem_strides``).
    space: dict[str, list[Int]] = Field(default_factory=dict)
    #: Runner threads the search starts for its lifetime (0: rely on a runner fleet started elsewhere).
    local_runners: Int = Field(default=1, ge=0)
    #: Latency polls: seconds between polls, and polls without progress before giving up.
    latency_poll_interval_s: Float = Field(default=5.0, gt=0)
    latency_max_retries: Int = Field(default=120, ge=1)
    #: Partition of the latency rows (default ``<experiment_name>-latency``; training rows have the same
    #: names, so they cannot share a partition).
    latency_experiment: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
    #: The latency rows also get the target's F1 runs (``target.f1_*_images`` images); the results show
    #: the on-target ``f1_1k`` (the quantized model on the target, e.g. the QNN HTP).
    target_f1: bool = False
    #: Accept latency measured on a simulator (the QNN HTP emulator of an x86-64 host) as the objective.
    allow_simulated_latency: bool = False
    #: Warn when Kendall's tau between partial and full (or higher-budget) training is below this.
    min_rank_tau: Float = Field(default=0.6, ge=-1, le=1)


class ArchaiAmlConfig(_Model):
    experiment_name: str = Field(default="archai-aml", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
    store: SerializeAsAny[StoreConfig] = Field(default_factory=StoreConfig)
    aml: AzureMLConfig | None = None
    job_runner: SerializeAsAny[JobRunnerConfig] = Field(default_factory=JobRunnerConfig)
    training: TrainingConfig = TrainingConfig()
    target: SerializeAsAny[TargetConfig] = Field(default_factory=TargetConfig)
    runner: RunnerConfig = RunnerConfig()
    search: SearchConfig = SearchConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_job_runner(cls, data: Any) -> Any:
        # no job runner named: the Azure ML one when the workspace is given, else local subprocesses
        if isinstance(data, Mapping):
            runner = data.get("job_runner")
            if runner is None or (isinstance(runner, Mapping) and runner.get("name") is None):
                name = "azureml" if data.get("aml") is not None else "local"
                data = {**data, "job_runner": {**(runner or {}), "name": name}}
        return data

    @field_validator("store", "target", "job_runner", mode="before")
    @classmethod
    def _backend_section(cls, value: Any, info: ValidationInfo) -> Any:
        """A section is validated by the model of the backend it names (a registered name)."""
        registry = {"store": STORES, "target": TARGETS, "job_runner": JOB_RUNNERS}[str(info.field_name)]
        return registry.section_value(value)


_TYPE_ERRORS = {"int_type", "float_type", "bool_type"}


_SECTIONS = {"store": STORES, "target": TARGETS, "job_runner": JOB_RUNNERS}


def _backend_of(raw: Any, section: str) -> str | None:
    """The backend a section of the raw configuration names (its default when it names none)."""
    registry = _SECTIONS[section]
    value = raw.get(section) if isinstance(raw, Mapping) else None
    if section == "job_runner" and not (isinstance(value, Mapping) and value.get("name")):
        return "azureml" if isinstance(raw, Mapping) and raw.get("aml") is not None else "local"
    name = value.get(registry.key) if isinstance(value, Mapping) else None
    return str(name) if name is not None else registry.default_name()


def _format_validation_error(err: ValidationError, source: str, raw: Any = None) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        got = ""
        if e["type"] in _TYPE_ERRORS and isinstance(e.get("input"), (str, bool)):
            got = f" (got the {type(e['input']).__name__} {e['input']!r}: write the value unquoted, as its type)"
        section = str(e["loc"][0]) if e["loc"] else ""
        if section in _SECTIONS and len(e["loc"]) > 1 and e["loc"][1] != _SECTIONS[section].key:
            backend = _backend_of(raw, section)
            registry = _SECTIONS[section]
            if registry.known(backend):
                if e["type"] == "extra_forbidden":
                    own = ", ".join(sorted(registry.settings_model(str(backend)).model_fields))
                    got += f" ({registry.kind} {backend!r} has no such setting; its settings: {own})"
                else:
                    got += f" ({registry.kind} {backend!r})"
        lines.append(f"  {loc}: {e['msg']}{got}")
    return f"invalid configuration in {source}:\n" + "\n".join(lines)


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> ArchaiAmlConfig:
    """Load and validate a configuration from a YAML file, a mapping, or nothing (all defaults)."""
    where = "defaults"
    raw: Any
    if source is None:
        raw = {}
    elif isinstance(source, Mapping):
        raw, where = dict(source), "mapping"
    else:
        path = Path(source)
        where = str(path)
        try:
            raw = load_yaml(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} does not exist") from None
        except yaml.YAMLError as exc:
            # PyYAML quotes the offending line: ConfigError redacts secret shapes, and the YAML error is not
            # chained (a traceback would print it unredacted)
            raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: the configuration must be a mapping, got {type(raw).__name__}")
    raw = substitute_env(raw, env)
    try:
        return ArchaiAmlConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, where, raw)) from None


def known_secrets(config: BaseModel) -> set[str]:
    """Every secret a configuration holds: its ``SecretStr`` values and, of a connection string, the account
    key and SAS token it carries."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if secret:
                found.add(secret)
                found.update(_secret_parts(secret))
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(config)
    return {s for s in found if len(s) >= 8}


def _secret_parts(text: str) -> set[str]:
    parts = set()
    for item in text.split(";"):
        key, _, value = item.partition("=")
        if key.strip().lower() in ("accountkey", "sharedaccesssignature") and value:
            parts.add(value.strip())
    return parts


def dump_config(config: BaseModel) -> str:
    """YAML of a configuration with every secret masked: ``SecretStr`` fields, any other value that holds a
    secret of the configuration (e.g. a store connection string copied into
    ``training.environment_variables``), and known secret shapes (account keys, SAS signatures)."""
    secrets = sorted(known_secrets(config), key=len, reverse=True)

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            if any(secret in value for secret in secrets):
                return REDACTED
            return redact_secrets(value)
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    return yaml.safe_dump(mask(config.model_dump(mode="json", exclude_none=True)), sort_keys=False)
