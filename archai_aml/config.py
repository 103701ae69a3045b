"""Configuration of archai-aml: pydantic v2 models loaded from YAML with ``${ENV_VAR}`` substitution.

``${NAME}`` takes the environment variable ``NAME`` and fails at load time when it is not set;
``${NAME:-default}`` falls back to ``default``. A field that is wrong or unknown fails at load time with
a message naming it (``store.backend: Input should be 'embedded' or 'azure'``). Secret values
(connection strings, account keys, SAS tokens) are :class:`pydantic.SecretStr`: they print and dump as
``**********``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from archai_aml.errors import ConfigError

__all__ = [
    "ArchaiAmlConfig",
    "AzureMLConfig",
    "ClusterConfig",
    "DatastoresConfig",
    "EnvironmentConfig",
    "RunnerConfig",
    "SearchConfig",
    "StoreConfig",
    "TargetConfig",
    "TrainingConfig",
    "WorkspaceConfig",
    "dump_config",
    "load_config",
    "substitute_env",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StoreConfig(_Model):
    """Where status rows and blobs live.

    ``embedded`` (the default) keeps a SQLite database and a files folder under ``path``. ``azure`` uses an
    Azure storage account: a full ``connection_string`` (Azurite's ``UseDevelopmentStorage=true`` too), or
    ``account_name``/``table_url``/``blob_url`` with a ``sas_token``, or with an Azure AD identity
    (``DefaultAzureCredential``; ``managed_identity_client_id`` picks a user-assigned identity).
    """

    backend: Literal["embedded", "azure"] = "embedded"
    path: Path = Path(".archai_aml/store")
    table_name: str = Field(default="status", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")
    container_name: str = Field(default="models", pattern=r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
    connection_string: SecretStr | None = None
    account_name: str | None = None
    table_url: str | None = None
    blob_url: str | None = None
    sas_token: SecretStr | None = None
    managed_identity_client_id: str | None = None
    max_concurrency: int = Field(default=8, ge=1, le=64)

    @model_validator(mode="after")
    def _check_azure(self) -> StoreConfig:
        if self.backend == "azure" and not (
            self.connection_string is not None or self.account_name or (self.table_url and self.blob_url)
        ):
            raise ValueError(
                "backend 'azure' needs connection_string, or account_name, or table_url and blob_url"
            )
        return self

    def resolved_urls(self) -> tuple[str, str]:
        """(table endpoint, blob endpoint) for the account-URL forms of the azure backend."""
        table = self.table_url or (
            f"https://{self.account_name}.table.core.windows.net" if self.account_name else None
        )
        blob = self.blob_url or (
            f"https://{self.account_name}.blob.core.windows.net" if self.account_name else None
        )
        if not table or not blob:
            raise ConfigError("store: set account_name, or both table_url and blob_url")
        return table, blob


class WorkspaceConfig(_Model):
    subscription_id: str
    resource_group: str
    workspace_name: str


class ClusterConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{1,31}$")
    size: str = "Standard_NC6s_v3"
    min_instances: int = Field(default=0, ge=0)
    max_instances: int = Field(default=4, ge=1)
    idle_time_before_scale_down: int = Field(default=300, ge=0)
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
    epochs: float = Field(default=1.0, gt=0)
    metric_key: str = "val_iou"
    environment_variables: dict[str, str] = Field(default_factory=dict)
    max_parallel: int = Field(default=2, ge=1)
    jobs_per_gpu: int = Field(default=1, ge=1)
    gpus: list[int] | None = None
    timeout_seconds: float = Field(default=3600.0, gt=0)
    max_failure_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    poll_interval_min_s: float = Field(default=0.05, gt=0)
    poll_interval_max_s: float = Field(default=20.0, gt=0)
    local_root: Path = Path(".archai_aml/jobs")


class TargetConfig(_Model):
    """The hardware a runner measures on."""

    name: Literal["cpu", "qnn", "snpe", "aihub"] = "cpu"
    input_shape: list[int] = Field(default_factory=lambda: [1, 3, 256, 256])
    device: str | None = None
    #: snpe: the SDK folder (default: $SNPE_ROOT) and the SoCs of the offline HTP graph cache (e.g. sm8650)
    sdk_root: Path | None = None
    htp_socs: str | None = None
    #: aihub: the Qualcomm AI Hub device to compile for and run on
    hub_device: str = "Samsung Galaxy S24 (Family)"
    max_benchmark_runs: int = Field(default=5, ge=1)
    benchmark_iterations: int = Field(default=50, ge=1)
    calibration_images: int = Field(default=32, ge=1)
    f1_onnx_images: int = Field(default=10000, ge=1)
    f1_1k_images: int = Field(default=1000, ge=1)
    f1_10k_images: int = Field(default=10000, ge=1)
    dataset: str | None = None


class RunnerConfig(_Model):
    """How ``archai-aml runner`` works: lease length, polling, working and host-lock folders."""

    lease_ttl_s: float = Field(default=60.0, gt=0)
    poll_interval_s: float = Field(default=10.0, gt=0)
    working: Path = Path(".archai_aml/runner")
    lock_dir: Path | None = None


class SearchConfig(_Model):
    iterations: int = Field(default=2, ge=1)
    init_num_models: int = Field(default=4, ge=1)
    max_unseen_population: int = Field(default=4, ge=1)
    mutations_per_parent: int = Field(default=1, ge=1)
    num_crossovers: int = Field(default=2, ge=0)
    num_random_mix: int = Field(default=2, ge=0)
    seed: int = 1
    #: Narrower choices for the example search space (``depths``, ``channels``, ``stem_strides``).
    space: dict[str, list[int]] = Field(default_factory=dict)
    #: Runner threads the search starts for its lifetime (0: rely on a runner fleet started elsewhere).
    local_runners: int = Field(default=1, ge=0)
    #: Latency polls: seconds between polls, and polls without progress before giving up.
    latency_poll_interval_s: float = Field(default=5.0, gt=0)
    latency_max_retries: int = Field(default=120, ge=1)
    #: Partition of the latency rows (default ``<experiment_name>-latency``; training rows have the same
    #: names, so they cannot share a partition).
    latency_experiment: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


class ArchaiAmlConfig(_Model):
    experiment_name: str = Field(default="archai-aml", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
    store: StoreConfig = StoreConfig()
    aml: AzureMLConfig | None = None
    training: TrainingConfig = TrainingConfig()
    target: TargetConfig = TargetConfig()
    runner: RunnerConfig = RunnerConfig()
    search: SearchConfig = SearchConfig()


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(value: Any, env: Mapping[str, str] | None = None, _where: str = "") -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string of ``value`` (recursively).

    Azure ML bindings (``${{inputs.x}}``) are left alone. A variable that is unset and has no default raises
    :class:`ConfigError` naming the variable and the field where it is used.
    """
    env = os.environ if env is None else env
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{_where or 'config'}: environment variable {name} is not set "
                f"(set it, or write ${{{name}:-default}} for a default)"
            )

        return _VAR.sub(repl, value)
    if isinstance(value, Mapping):
        return {k: substitute_env(v, env, f"{_where}.{k}" if _where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env, f"{_where}[{i}]") for i, v in enumerate(value)]
    return value


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        lines.append(f"  {loc}: {e['msg']}")
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
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file {path} does not exist") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: the configuration must be a mapping, got {type(raw).__name__}")
    raw = substitute_env(raw, env)
    try:
        return ArchaiAmlConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, where)) from None


def dump_config(config: BaseModel) -> str:
    """YAML of a configuration with every secret masked."""
    return yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False)
