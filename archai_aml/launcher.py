"""Take a search to Azure ML (``examples/face_segmentation/aml.py``): the configuration the job reads, and one
pipeline of a data-preparation step and the search step.

:func:`config_for_job` turns the search's YAML into the file uploaded with the job: every secret field
(each :class:`pydantic.SecretStr` of the configuration: the store's connection string and SAS token) keeps
only its ``${VAR}`` name (written ``${VAR:-}``: unset in the job, where the store is reached with the job's
identity), a secret written literally is refused, the other ``${VAR}`` are resolved here (the job does not
have this shell's environment) except ``ARCHAI_AML_OUTPUT``/``ARCHAI_AML_EXAMPLE_DIR`` which the search
script sets in the job, and the data and runner settings are pointed at the pipeline's own (``overrides``).

:func:`build_search_pipeline` builds a real ``azure-ai-ml`` pipeline: ``prepare_data`` (the data set to the
data datastore) then ``search`` (``search.py`` on the CPU cluster: it submits the training pipelines itself,
through the ``AzureMLJobRunner``, and its latency rows go to the runner fleet), or only ``prepare_data``
with ``test``. Both nodes reach the store through :func:`archai_aml.store.job_environment` (endpoints and
identity, no secret); :func:`check_no_secret` refuses a pipeline whose YAML holds a secret value.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from archai_aml._optional import require
from archai_aml.config import ArchaiAmlConfig, load_config
from archai_aml.errors import ConfigError, JobError
from archai_aml.plugins import Registry
from archai_aml.store import job_environment
from archai_aml.store.connection import parse_connection_string

__all__ = ["JOB_VARIABLES", "build_search_pipeline", "check_no_secret", "config_for_job", "secret_fields"]

log = logging.getLogger(__name__)

#: Variables the search script sets inside the job: left as ``${...}`` in the uploaded configuration.
JOB_VARIABLES = ("ARCHAI_AML_OUTPUT", "ARCHAI_AML_EXAMPLE_DIR")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ONLY_VAR = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}$")


def secret_fields(
    model: type[BaseModel] = ArchaiAmlConfig, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """The paths of every ``SecretStr`` field of the configuration model (``("store", "connection_string")``...);
    a backend section (``store:``, ``target:``, ``job_runner:``) counts the fields of every registered
    backend's settings model."""
    paths: list[tuple[str, ...]] = []
    for model_ in _with_backends(model):
        for name, info in model_.model_fields.items():
            annotation = info.annotation
            args = getattr(annotation, "__args__", (annotation,))
            for arg in args:
                if arg is SecretStr:
                    path = (*prefix, name)
                    if path not in paths:
                        paths.append(path)
                elif isinstance(arg, type) and issubclass(arg, BaseModel):
                    paths.extend(p for p in secret_fields(arg, (*prefix, name)) if p not in paths)
    return paths


def _with_backends(model: type[BaseModel]) -> list[type[BaseModel]]:
    """``model``, and when it is a backend section, the settings model of each registered backend."""
    registry = getattr(model, "registry", None)
    if not isinstance(registry, Registry) or model is not registry.section:
        return [model]
    models: list[type[BaseModel]] = [model]
    for name in registry.names():
        try:
            models.append(registry.settings_model(name))
        except ConfigError as exc:  # a user's backend whose settings cannot be loaded has no fields here
            log.warning("%s", exc)
    return models


def _resolve(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in JOB_VARIABLES:
                return m.group(0)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set (set it before launching)")

        return _VAR.sub(repl, value)
    if isinstance(value, Mapping):
        return {k: _resolve(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def config_for_job(
    raw_yaml: str, env: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> tuple[str, list[str]]:
    """The YAML uploaded with the job and the names of the secret variables in it (see the module docstring).

    ``overrides``: ``"section.field"`` -> value, applied after resolution (e.g. ``training.data``).
    """
    raw = yaml.safe_load(raw_yaml) or {}
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a mapping")
    secrets: dict[tuple[str, ...], str] = {}
    for path in secret_fields():
        node: Any = raw
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or node.get(path[-1]) is None:
            continue
        value = node[path[-1]]
        m = _ONLY_VAR.match(value) if isinstance(value, str) else None
        if m is None:
            raise ConfigError(
                f"{'.'.join(path)}: a secret must be given as ${{VAR}} (an environment variable), not written "
                "in the file: it would be uploaded with the job"
            )
        secrets[path] = m.group(1)
        node[path[-1]] = None  # resolved below without it, put back as its name
    resolved = _resolve(raw, env, "config")
    for dotted, value in (overrides or {}).items():
        node = resolved
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    for path, name in secrets.items():
        node = resolved
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = f"${{{name}:-}}"
    text = yaml.safe_dump(resolved, sort_keys=False)
    # it must load in the job: the job variables set, the secrets unset
    try:
        load_config(yaml.safe_load(text), env=dict.fromkeys(JOB_VARIABLES, "/job"))
    except ConfigError as exc:
        raise ConfigError(
            f"the configuration does not load without its secrets, as the job would read it: {exc}\n"
            "(jobs get no secret: set store.account_name, or table_url and blob_url, so they reach the store "
            "with their identity)"
        ) from None
    return text, sorted(secrets.values())


def secret_values(config: ArchaiAmlConfig) -> list[str]:
    """The secret values of a loaded configuration (and the key and SAS inside a connection string)."""
    values: list[str] = []
    for path in secret_fields():
        node: Any = config
        for key in path:
            node = getattr(node, key, None)
        if isinstance(node, SecretStr):
            value = node.get_secret_value()
            values.append(value.lstrip("?"))
            if path[-1] == "connection_string":
                settings = parse_connection_string(value)
                values += [settings.account_key or "", settings.sas_token or ""]
    return [v for v in values if len(v) >= 8]


def check_no_secret(job: Any, config: ArchaiAmlConfig, *texts: str) -> str:
    """The job's YAML; :class:`JobError` if it (or one of ``texts``) holds a secret value of ``config``."""
    out = io.StringIO()
    job.dump(out)
    dumped = out.getvalue()
    for value in secret_values(config):
        for text in (dumped, *texts):
            if value in text:
                raise JobError("the job definition would carry a store secret: refused (nothing submitted)")
    return dumped


def _environment_ref(name: str) -> str:
    return name if (":" in name or "@" in name) else f"{name}@latest"


def build_search_pipeline(
    config: ArchaiAmlConfig,
    job_config: Path,
    *,
    code_dir: Path,
    environment: str,
    data_uri: str,
    source: str | None = None,
    test: bool = False,
    name: str | None = None,
) -> Any:
    """The pipeline job: ``prepare_data`` (then ``search`` unless ``test``), not submitted."""
    require("azure.ai.ml", feature="submitting the search to Azure ML")
    from azure.ai.ml import Input, Output, command, dsl
    from azure.ai.ml.entities import ManagedIdentityConfiguration, UserIdentityConfiguration

    aml = config.aml
    if aml is None:
        raise ConfigError("aml: set the Azure ML workspace (aml.workspace) to launch the search there")
    store = config.store
    if store.backend != "azure":
        raise ConfigError(
            "store.backend: the search on Azure ML needs the azure store (the embedded one is local)"
        )
    env = job_environment(store, identity_client_id=aml.identity_client_id)
    if "ARCHAI_AML_STORE_TABLE_URL" not in env:
        raise ConfigError(
            "store: known only by a connection string, which must not go into a job: set store.account_name "
            "(or table_url and blob_url) so the jobs reach the store with their identity"
        )
    identity = (
        ManagedIdentityConfiguration(client_id=aml.identity_client_id)
        if aml.identity_client_id
        else UserIdentityConfiguration()
    )
    env_ref = _environment_ref(environment)
    compute = aml.cpu_cluster.name
    experiment = config.experiment_name
    prep_inputs = {"source": Input(type="uri_folder", mode="ro_mount")} if source else {}
    prepare = command(
        name="prepare_data",
        display_name="prepare_data",
        description=f"the data set of {experiment} to {data_uri}",
        inputs=prep_inputs,
        outputs={"data": Output(type="uri_folder", path=data_uri, mode="rw_mount")},
        code=str(code_dir),
        command="python prepare_data.py --output ${{outputs.data}}"
        + (" --source ${{inputs.source}}" if source else ""),
        environment=env_ref,
        compute=compute,
        environment_variables=dict(env),
        identity=identity,
    )
    search = command(
        name="search",
        display_name="search",
        description=f"archai-aml search {experiment}: training pipelines on {aml.training_cluster.name}, "
        "latency by the runner fleet",
        inputs={"config": Input(type="uri_file"), "data": Input(type="uri_folder", mode="ro_mount")},
        outputs={"output": Output(type="uri_folder", mode="rw_mount")},
        code=str(code_dir),
        # the data input orders the steps (and is checked); the search reads training.data itself
        command="test -d ${{inputs.data}} && python search.py --config ${{inputs.config}} "
        "--output ${{outputs.output}} --no-progress",
        environment=env_ref,
        compute=compute,
        environment_variables=dict(env),
        identity=identity,
    )

    @dsl.pipeline(name=name, description=f"archai-aml search {experiment}", default_compute=compute)  # type: ignore[call-overload]
    def search_pipeline(config_file, source_data=None):  # type: ignore[no-untyped-def]  # dsl reads it
        prep = prepare(source=source_data) if source else prepare()
        prep.name = "prepare_data"
        if not test:
            node = search(config=config_file, data=prep.outputs.data)  # type: ignore[attr-defined]
            node.name = "search"

    kwargs: dict[str, Any] = {"config_file": Input(type="uri_file", path=str(job_config))}
    if source:
        kwargs["source_data"] = Input(type="uri_folder", path=source, mode="ro_mount")
    job = search_pipeline(**kwargs)
    job.experiment_name = experiment
    job.display_name = f"{experiment}: {'prepare data (test)' if test else 'prepare data, search'}"
    job.settings.continue_on_step_failure = False
    return job
