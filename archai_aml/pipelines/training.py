"""Build and submit the partial-training pipeline: one Azure ML ``command`` node per model.

:func:`start_training_pipeline` uploads each model's ``ArchConfig`` JSON to the store, creates or merges its
status row (``status=preparing``), builds a real ``azure-ai-ml`` pipeline with :func:`azure.ai.ml.dsl.pipeline`
and submits it through a :class:`~archai_aml.pipelines.base.JobRunner`. It does not wait: the
:class:`~archai_aml.pipelines.monitor.CompletionMonitor` does.

No secret ever enters the pipeline definition: the nodes receive :func:`archai_aml.store.job_environment`
without secrets (endpoints + identity on Azure); a local runner passes the secrets through its own process
environment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archai_aml._optional import require
from archai_aml.config import ArchaiAmlConfig, DatastoresConfig, StoreConfig
from archai_aml.errors import ConfigError, JobError
from archai_aml.pipelines.base import JobRunner
from archai_aml.store import Store, job_environment
from archai_aml.store.base import Entity
from archai_aml.store.connection import parse_connection_string
from archai_aml.training.checkpoint import ENV_EPOCHS_DONE, ENV_RESUME, ENV_TOTAL_EPOCHS, Resume
from archai_aml.training.job import ENV_BATCH, ENV_EXPERIMENT, ENV_METRIC_KEY, ENV_MODEL_ID

__all__ = [
    "ENV_BATCH",
    "ENV_EXPERIMENT",
    "ENV_METRIC_KEY",
    "ENV_MODEL_ID",
    "arch_config_json",
    "build_training_pipeline",
    "check_model_ids",
    "fill_placeholders",
    "model_id_for",
    "new_batch_id",
    "start_training_pipeline",
    "store_config_of",
]

log = logging.getLogger(__name__)

#: The placeholders filled per model in ``training.command``; any other ``{...}`` (``${{inputs.data}}``) stays.
PLACEHOLDERS = ("model_id", "experiment", "epochs", "arch_file")
_PLACEHOLDER = re.compile(r"(?<!\{)\{(" + "|".join(PLACEHOLDERS) + r")\}(?!\})")
_ID_CHARS = re.compile(r"[^a-z0-9_]")


def model_id_for(arch: Any) -> str:
    """``id_`` + the archid, lower case (Azure ML rejects node and job names starting with a digit, and
    lowercases node names: ``id_ABC`` would be submitted as ``id_abc``).

    Characters other than lower-case letters, digits and ``_`` are replaced by ``_`` (upper-case letters by
    their lower case) and a short hash of the original archid keeps such ids distinct: ``ABC`` and ``abc``
    give two ids. Archai's own archids (SHA-1 hex digests) are kept as they are.
    """
    archid = str(getattr(arch, "archid", arch))
    clean = _ID_CHARS.sub("_", archid.lower())
    if clean != archid:
        clean = f"{clean[:200]}_{hashlib.sha1(archid.encode('utf-8')).hexdigest()[:10]}"
    return "id_" + clean


def check_model_ids(model_ids: Sequence[str]) -> None:
    """Refuse, before anything is submitted, ids that Azure ML would rename: upper case (node names are
    lowercased by the SDK) or two ids that differ only in case."""
    seen: dict[str, str] = {}
    for model_id in model_ids:
        if model_id != model_id.lower() or _ID_CHARS.search(model_id):
            raise ConfigError(
                f"model id {model_id!r}: Azure ML node names are lower-case letters, digits and _ "
                "(the SDK would rename it); make ids with model_id_for"
            )
        if model_id in seen:
            raise ConfigError(f"model id {model_id!r} appears twice in one training pipeline")
        seen[model_id] = model_id


def format_epochs(epochs: float) -> str:
    return str(int(epochs)) if float(epochs).is_integer() else repr(float(epochs))


def fill_placeholders(command: str, values: Mapping[str, str]) -> str:
    """Replace ``{model_id}``, ``{experiment}``, ``{epochs}``, ``{arch_file}`` only (Azure ML bindings survive)."""
    return _PLACEHOLDER.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), command
    )


def arch_config_json(arch: Any, search_space: Any = None) -> bytes:
    """The ``ArchConfig`` JSON of an :class:`archai.discrete_search.api.ArchaiModel`.

    ``ConfigSearchSpace`` models carry an ``ArchConfig`` in ``metadata['config']`` (its ``to_dict()`` is
    written); otherwise the search space's ``save_arch`` writes the file (as archai's search spaces do).
    """
    metadata = getattr(arch, "metadata", None) or {}
    config = metadata.get("config") if isinstance(metadata, Mapping) else None
    if config is not None and hasattr(config, "to_dict"):
        return json.dumps(config.to_dict(), indent=2, sort_keys=True).encode("utf-8")
    if isinstance(config, Mapping):
        return json.dumps(dict(config), indent=2, sort_keys=True).encode("utf-8")
    if search_space is not None and hasattr(search_space, "save_arch"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "arch.json"
            search_space.save_arch(arch, str(path))
            return path.read_bytes()
    raise ConfigError(
        f"model {getattr(arch, 'archid', arch)!r} has no ArchConfig in metadata['config']: "
        "use a ConfigSearchSpace or pass the search space (with save_arch) to the evaluator"
    )


def new_batch_id(experiment: str) -> str:
    """A fresh id for one pipeline submission (also the pipeline job's name)."""
    return f"train_{experiment}_{secrets.token_hex(6)}"


def store_config_of(store: Store | None, config: ArchaiAmlConfig) -> StoreConfig:
    """The :class:`StoreConfig` describing ``store`` (set by ``open_store``), else ``config.store``."""
    described = getattr(store, "config", None) if store is not None else None
    return described if isinstance(described, StoreConfig) else config.store


def _secret_values(store_config: StoreConfig) -> list[str]:
    values = []
    connection_string = getattr(store_config, "connection_string", None)  # the backend's secrets, if any
    sas_token = getattr(store_config, "sas_token", None)
    if connection_string is not None:
        cs = connection_string.get_secret_value()
        settings = parse_connection_string(cs)
        values += [cs, settings.account_key or "", settings.sas_token or ""]
    if sas_token is not None:
        values.append(sas_token.get_secret_value().lstrip("?"))
    return [v for v in values if len(v) >= 8]


def _data_path(config: ArchaiAmlConfig) -> str:
    data = config.training.data
    if "://" in data or data.startswith("azureml:"):
        return data
    return str(Path(data).resolve())


def build_training_pipeline(
    description: str,
    config: ArchaiAmlConfig,
    store_config: StoreConfig,
    model_ids: Sequence[str],
    training_epochs: float,
    batch_id: str,
    resume: Mapping[str, Resume] | None = None,
) -> Any:
    """A ``PipelineJob`` with one ``command`` node per model id (named after it), not submitted.

    The ids must be what :func:`model_id_for` makes (lower case, :func:`check_model_ids`), so that the node
    names Azure ML keeps are the ids the store's rows carry. A model of ``resume`` continues from its
    checkpoint: its ``{epochs}`` is the missing epochs only and its environment names the checkpoint (see
    :mod:`archai_aml.training.checkpoint`)."""
    check_model_ids(model_ids)
    resume = dict(resume or {})
    require("azure.ai.ml", feature="building Azure ML training pipelines (also for local runs)")
    from azure.ai.ml import Input, Output, command, dsl
    from azure.ai.ml.entities import ManagedIdentityConfiguration, UserIdentityConfiguration

    training = config.training
    aml = config.aml
    experiment = config.experiment_name
    datastores = aml.datastores if aml is not None else DatastoresConfig()
    compute = aml.training_cluster.name if aml is not None else None
    environment = None
    identity: Any = None
    if aml is not None:
        from archai_aml.workspace.environment import environment_reference

        environment = environment_reference(aml.environment)  # the version workspace setup creates
        identity = (
            ManagedIdentityConfiguration(client_id=aml.identity_client_id)
            if aml.identity_client_id
            else UserIdentityConfiguration()
        )

    base_env = dict(training.environment_variables)
    base_env.update(job_environment(store_config, identity_client_id=aml.identity_client_id if aml else None))
    base_env[ENV_EXPERIMENT] = experiment
    base_env[ENV_BATCH] = batch_id
    base_env[ENV_METRIC_KEY] = training.metric_key
    base_env[ENV_TOTAL_EPOCHS] = format_epochs(training_epochs)
    for secret in _secret_values(store_config):
        for key, value in base_env.items():
            if secret in value:
                raise ConfigError(
                    f"training.environment_variables.{key} holds a store secret: jobs reach the store through "
                    "their identity (or the local runner's own environment); remove it"
                )
    code_dir = str(Path(training.code_dir).resolve())
    epochs_text = format_epochs(training_epochs)

    @dsl.pipeline(name=batch_id, description=description, default_compute=compute)  # type: ignore[call-overload]
    def partial_training(data):  # type: ignore[no-untyped-def]  # dsl reads the signature
        for model_id in model_ids:
            point = resume.get(model_id)
            node_epochs = format_epochs(training_epochs - point.epochs_done) if point else epochs_text
            values = {
                "model_id": model_id,
                "experiment": experiment,
                "epochs": node_epochs,
                "arch_file": f"{model_id}.json",
            }
            env = dict(base_env)
            env[ENV_MODEL_ID] = model_id
            if point is not None:
                env[ENV_RESUME] = point.checkpoint
                env[ENV_EPOCHS_DONE] = format_epochs(point.epochs_done)
            component = command(
                name=model_id,
                display_name=model_id,
                description=f"partial training of {model_id} for {node_epochs} epochs"
                + (f" (continued from {point.epochs_done:g})" if point else ""),
                inputs={"data": Input(type="uri_folder", mode=training.data_mode)},
                outputs={
                    "output": Output(
                        type="uri_folder",
                        path=f"azureml://datastores/{datastores.models}/paths/{experiment}/{model_id}",
                        mode="rw_mount",
                    )
                },
                code=code_dir,
                command=fill_placeholders(training.command, values),
                environment=environment,
                environment_variables=env,
                compute=compute,
                identity=identity,
                is_deterministic=False,
            )
            node = component(data=data)
            node.name = model_id

    pipeline_job = partial_training(
        data=Input(type="uri_folder", path=_data_path(config), mode=training.data_mode)
    )
    pipeline_job.name = batch_id
    pipeline_job.display_name = batch_id
    pipeline_job.experiment_name = experiment
    # one model failing must not stop the others (Azure ML's default stops the whole pipeline)
    pipeline_job.settings.continue_on_step_failure = True
    return pipeline_job


def start_training_pipeline(
    description: str,
    job_runner: JobRunner,
    store: Store,
    model_architectures: Sequence[Any],
    config: ArchaiAmlConfig,
    training_epochs: float,
    output_folder: str | Path,
    *,
    store_config: StoreConfig | None = None,
    search_space: Any = None,
    batch_id: str | None = None,
    resume: Mapping[str, Resume] | None = None,
) -> tuple[Any, list[str]]:
    """Upload the models' ArchConfigs, mark their rows ``preparing``, build and submit one pipeline.

    Returns ``(pipeline_job, model_ids)``: the submitted job (its ``name`` is the pipeline id, also the
    ``batch`` column of every row) and the model ids in the order of ``model_architectures``.
    Writes ``pending.json`` to ``output_folder``. ``resume`` (model id -> checkpoint) continues those
    models' training for the missing epochs only.
    """
    experiment = config.experiment_name
    store_config = store_config or store_config_of(store, config)
    batch_id = batch_id or new_batch_id(experiment)
    metric_key = config.training.metric_key
    model_ids: list[str] = []
    archids: dict[str, str] = {}
    for arch in model_architectures:
        model_id = model_id_for(arch)
        if model_id in archids:
            continue
        model_ids.append(model_id)
        archids[model_id] = str(getattr(arch, "archid", arch))
        store.upload_bytes(experiment, model_id, f"{model_id}.json", arch_config_json(arch, search_space))
    if not model_ids:
        raise ValueError("start_training_pipeline needs at least one model")

    pipeline_job = build_training_pipeline(
        description, config, store_config, model_ids, training_epochs, batch_id, resume
    )
    rows: dict[str, Entity] = {}
    for model_id in model_ids:
        rows[model_id] = store.merge(
            experiment,
            model_id,
            {
                "status": "preparing",
                "experiment": experiment,
                "epochs": float(training_epochs),
                "batch": batch_id,
                "pipeline_id": batch_id,
                "archid": archids[model_id],
                "job_id": None,
                "error": None,
                "training_time": None,
                metric_key: None,
            },
        )
    try:
        submitted = job_runner.submit(pipeline_job, experiment_name=experiment)
    except Exception as exc:
        for model_id in model_ids:
            store.merge(
                experiment,
                model_id,
                {"status": "failed to start", "error": f"pipeline submission failed: {exc}"[:2000]},
                expected_version=None,
            )
        if isinstance(exc, JobError):
            raise
        raise JobError(
            f"could not submit training pipeline {batch_id} ({len(model_ids)} models): {exc}; "
            "check the compute, environment and data settings"
        ) from exc
    pipeline_id = str(getattr(submitted, "name", None) or batch_id)
    if pipeline_id != batch_id:  # a runner that renamed the job: record the id it answers to
        for model_id in model_ids:
            store.merge(experiment, model_id, {"pipeline_id": pipeline_id})
    log.info(
        "submitted training pipeline %s: %d models, %s epochs", pipeline_id, len(model_ids), training_epochs
    )
    url = job_runner.studio_url(pipeline_id)
    if url:
        log.info("pipeline %s: %s", pipeline_id, url)

    output = Path(output_folder)
    output.mkdir(parents=True, exist_ok=True)
    pending = {
        "experiment": experiment,
        "batch": batch_id,
        "pipeline_id": pipeline_id,
        "epochs": float(training_epochs),
        "models": [
            {"id": m, "archid": archids[m], "status": "preparing", "epochs": float(training_epochs)}
            for m in model_ids
        ],
    }
    (output / "pending.json").write_text(json.dumps(pending, indent=2), encoding="utf-8")
    return submitted, model_ids
