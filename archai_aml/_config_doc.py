"""docs/configuration.md, generated from the pydantic models of :mod:`archai_aml.config`.

    python -m archai_aml._config_doc > docs/configuration.md

Types, defaults and constraints come from the models; the meaning of a field is its ``Field(description=)``
when it has one, else the entry in :data:`MEANINGS`. A field with neither makes :func:`generate` fail naming
it, and ``tests/test_configuration_doc.py`` fails when the committed page differs from what this module
generates: the page cannot drift from the models.
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from archai_aml.config import ArchaiAmlConfig
from archai_aml.plugins import load_object

__all__ = ["MEANINGS", "generate"]

#: "Model.field" -> what it means (for fields without a ``description`` of their own).
MEANINGS: dict[str, str] = {
    "ArchaiAmlConfig.experiment_name": "the partition of the status table (and blob folder) of this search's training rows",
    "ArchaiAmlConfig.store": "where status rows and blobs live",
    "ArchaiAmlConfig.aml": "the Azure ML workspace; leave it out to run training jobs on this machine (`LocalJobRunner`)",
    "ArchaiAmlConfig.training": "the partial-training job of each model",
    "ArchaiAmlConfig.target": "the hardware runners measure on",
    "ArchaiAmlConfig.runner": "how `archai-aml runner` (and the search's runner threads) work",
    "ArchaiAmlConfig.search": "the example search (`examples/face_segmentation/search.py`)",
    "StoreConfig.backend": "the store backend, a registered name: `embedded` (SQLite + files under `path`), `azure` (a storage account), or one a package registers",
    "EmbeddedStoreConfig.path": "folder of the embedded store",
    "StoreConfig.table_name": "the status table (an Azure table, or a SQLite table)",
    "StoreConfig.container_name": "the blob container (a folder for the embedded store)",
    "AzureStoreConfig.connection_string": "Azure: a full connection string (a secret: `${VAR}` it, never write it in the file)",
    "AzureStoreConfig.account_name": "Azure: the storage account, reached with an Azure AD identity or `sas_token`",
    "AzureStoreConfig.table_url": "Azure: the table endpoint (instead of `account_name`)",
    "AzureStoreConfig.blob_url": "Azure: the blob endpoint (instead of `account_name`)",
    "AzureStoreConfig.sas_token": "Azure: a SAS token for the account URLs (a secret)",
    "AzureStoreConfig.managed_identity_client_id": "Azure: the client id of the user-assigned identity to authenticate with",
    "StoreConfig.progress": "progress bars on folder uploads and downloads: `true`, `false`, or unset (shown on a terminal only)",
    "StoreConfig.max_concurrency": "parallel transfers of one blob upload or download",
    "AzureMLConfig.workspace": "the workspace that runs the training pipelines",
    "AzureMLConfig.training_cluster": "the cluster of the training jobs",
    "AzureMLConfig.cpu_cluster": "the cluster of runners submitted as an Azure ML job (`archai-aml runner --submit N`)",
    "AzureMLConfig.environment": "the Azure ML environment of the jobs",
    "AzureMLConfig.datastores": "the datastores the jobs read data and write models through",
    "AzureMLConfig.identity_client_id": "client id of the user-assigned identity the jobs reach the store with",
    "AzureMLConfig.identity_resource_id": "ARM id of that identity; `archai-aml workspace setup` attaches it to new clusters",
    "WorkspaceConfig.subscription_id": "the Azure subscription",
    "WorkspaceConfig.resource_group": "the resource group of the workspace",
    "WorkspaceConfig.workspace_name": "the Azure ML workspace",
    "ClusterConfig.name": "compute cluster name",
    "ClusterConfig.size": "VM size",
    "ClusterConfig.min_instances": "nodes kept running when idle",
    "ClusterConfig.max_instances": "nodes at most",
    "ClusterConfig.idle_time_before_scale_down": "seconds a node idles before it is released",
    "ClusterConfig.tier": "`dedicated` or `low_priority` (cheaper, preemptible) VMs",
    "EnvironmentConfig.name": "environment name in the workspace",
    "EnvironmentConfig.version": "environment version (default: the latest, or a new one when the image or conda file changed)",
    "EnvironmentConfig.image": "the Docker base image",
    "EnvironmentConfig.conda_file": "a conda environment YAML installed on the image",
    "DatastoresConfig.models": "datastore on the store's blob container",
    "DatastoresConfig.data": "datastore of the training data",
    "DatastoresConfig.data_container": "blob container (in the store's storage account) of the `data` datastore",
    "TrainingConfig.code_dir": "folder uploaded as the jobs' code (the command runs in it)",
    "TrainingConfig.command": "the training command; `${{inputs.data}}`, `${{outputs.output}}` and `{model_id}`, `{experiment}`, `{epochs}`, `{arch_file}` are filled per model",
    "TrainingConfig.data": "the training data: a local folder, or an `azureml://` URI",
    "TrainingConfig.data_mode": "how Azure ML gives the data to the job",
    "TrainingConfig.epochs": "epochs of partial training",
    "TrainingConfig.metric_key": "the row column the training evaluator returns",
    "TrainingConfig.environment_variables": "extra environment of every training job (no secrets: they would enter the job definition)",
    "TrainingConfig.max_parallel": "local jobs at once on CPU (the pipeline's max concurrency)",
    "TrainingConfig.jobs_per_gpu": "local jobs sharing one GPU",
    "TrainingConfig.gpus": "local GPUs to use (default: every GPU found; `[]`: CPU only)",
    "TrainingConfig.timeout_seconds": "how long one batch may take before it is canceled",
    "TrainingConfig.max_failure_rate": "fraction of a batch that may fail before the search stops with an error",
    "TrainingConfig.poll_interval_min_s": "first interval of the completion monitor's polls",
    "TrainingConfig.poll_interval_max_s": "the polls back off up to this interval",
    "TrainingConfig.local_root": "folder of the local jobs' outputs and logs",
    "TargetConfig.name": "the target backend, a registered name (`get_target(name)`): `cpu`, `qnn`, `snpe`, `aihub`, `fixed`, or one a package registers",
    "JobRunnerConfig.name": "the job runner, a registered name: `local` (subprocesses), `azureml` (the `aml:` workspace), or one a package registers; default `azureml` with an `aml:` section, else `local`",
    "ArchaiAmlConfig.job_runner": "where training jobs run (the registered job runner it names)",
    "FixedCostTargetConfig.cost": "seconds of convert, benchmark and batch (each unless given on its own)",
    "FixedCostTargetConfig.convert": "seconds of convert (default: `cost`)",
    "FixedCostTargetConfig.quantize": "seconds of quantize",
    "FixedCostTargetConfig.info": "seconds of info",
    "FixedCostTargetConfig.benchmark": "seconds of a benchmark run (default: `cost`)",
    "FixedCostTargetConfig.batch": "seconds of a batch run (default: `cost`)",
    "FixedCostTargetConfig.journal": "a JSON-lines file every call is journaled to",
    "TargetConfig.input_shape": "the model input shape (NCHW)",
    "TargetConfig.device": "the device (board serial) a runner uses; none for the CPU target",
    "TargetConfig.max_benchmark_runs": "benchmark runs per model (their mean is `mean`, their spread `stdev`)",
    "TargetConfig.benchmark_iterations": "inferences per benchmark run",
    "TargetConfig.calibration_images": "images for static quantization",
    "TargetConfig.f1_onnx_images": "test images of `f1_onnx` (float ONNX model on onnxruntime)",
    "TargetConfig.f1_1k_images": "test images of `f1_1k` and `f1_1k_f` on the target",
    "TargetConfig.f1_10k_images": "test images of `f1_10k` on the target",
    "TargetConfig.dataset": "folder of the test and calibration data (default: the procedural data set)",
    "RunnerConfig.lease_ttl_s": "a lease not renewed for this long expires and another runner takes the row",
    "RunnerConfig.poll_interval_s": "seconds between queue polls when there is nothing to do",
    "RunnerConfig.working": "working folder of downloaded and converted models",
    "RunnerConfig.lock_dir": "folder of the host locks (one quantization at a time per machine; default: the temp folder)",
    "SearchConfig.iterations": "search iterations",
    "SearchConfig.init_num_models": "random models of the first iteration",
    "SearchConfig.max_unseen_population": "new models per iteration at most",
    "SearchConfig.mutations_per_parent": "mutations of each Pareto model per iteration",
    "SearchConfig.num_crossovers": "crossovers per iteration",
    "SearchConfig.num_random_mix": "random models mixed in per iteration",
    "SearchConfig.seed": "seed of the search and the search space",
    "SearchConfig.space": "narrower choices for the example search space (`depths`, `channels`, `stem_strides`)",
    "SearchConfig.local_runners": "runner threads the search starts for its lifetime (0: a fleet started elsewhere measures)",
    "SearchConfig.latency_poll_interval_s": "seconds between the latency evaluator's polls",
    "SearchConfig.latency_max_retries": "polls without progress before the latency evaluator gives up",
    "SearchConfig.latency_experiment": "partition of the latency rows (default `<experiment_name>-latency`)",
    "SearchConfig.target_f1": "latency rows also get the target's F1 runs (the results show the on-target `f1_1k`)",
    "SearchConfig.allow_simulated_latency": "accept latency measured on a simulator (the x86-64 QNN HTP emulator) as an objective",
    "SearchConfig.min_rank_tau": "warn when Kendall's tau between partial and full (or higher-budget) training is below this",
    "SnpeTargetConfig.sdk_root": "snpe: the SNPE / QAIRT SDK folder (default: `$SNPE_ROOT`)",
    "SnpeTargetConfig.htp_socs": "snpe: SoCs of the offline HTP graph cache (`snpe-dlc-graph-prepare --htp_socs`, e.g. `sm8650`)",
    "AiHubTargetConfig.hub_device": "aihub: the Qualcomm AI Hub device to compile for and run on",
    "QnnTargetSection.qnn": "options of the `qnn` target (below)",
    "QnnTargetConfig.activation_type": "QDQ activation type: `uint8` or `uint16`",
    "QnnTargetConfig.weight_type": "QDQ weight type: `uint8` or `uint16`",
    "QnnTargetConfig.per_channel": "per-channel weight quantization",
    "QnnTargetConfig.calibrate_method": "calibration: `minmax`, `entropy` or `percentile`",
    "QnnTargetConfig.htp_performance_mode": "the QNN EP's `htp_performance_mode` (default: the EP's own)",
    "QnnTargetConfig.soc_model": "the QNN EP's `soc_model` (default: the EP's own)",
    "QnnTargetConfig.htp_arch": "the QNN EP's `htp_arch` (default: the EP's own)",
    "QnnTargetConfig.embed_context": "embed the context binary in the EP-context model (default: `model_ctx_qnn.bin` beside it)",
    "QnnTargetConfig.toolchain": "`onnxruntime` (direct calls) or `olive` (Olive passes) for quantize and compile",
    "QnnTargetConfig.workers": "processes that run HTP batches in parallel (the x86-64 emulator takes about one core each)",
}

HEADER = """# Configuration

<!-- GENERATED by `python -m archai_aml._config_doc > docs/configuration.md` from the pydantic models in
archai_aml/config.py; tests/test_configuration_doc.py fails when this page and the models differ. -->

One YAML file, loaded by `archai_aml.load_config(path)` into `ArchaiAmlConfig` (pydantic v2). Every string
may use `${VAR}` (the environment variable `VAR`; unset fails at load time naming it and the field) or
`${VAR:-default}`; Azure ML bindings `${{inputs.data}}` are left alone. An unknown or wrong field fails at
load time with its dotted path (`target.sdk_root: Extra inputs are not permitted (target 'cpu' has no such
setting; ...)`). The `store:`, `target:` and `job_runner:` sections are validated by the settings model of
the backend they name (`backend:` or `name:`, a registered name); each backend's own fields are listed
below its section. Secret fields
print and dump as `**********` (`archai_aml.dump_config`). Paths are relative to the current folder.
"""


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in args if a is not type(None)]
        return " \\| ".join(parts) + (" \\| null" if type(None) in args else "")
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"map of {_type(args[0])} to {_type(args[1])}"
    if annotation is SecretStr:
        return "secret string"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    names = {str: "string", int: "int", float: "float", bool: "bool", Path: "path"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _constraints(info: FieldInfo) -> str:
    out = []
    for meta in info.metadata:
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{sign} {value}")
        pattern = getattr(meta, "pattern", None)
        if pattern:
            out.append(f"matches `{pattern}`")
    return ", ".join(out)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        dumped = value.model_dump(mode="json", exclude_defaults=True)
        return "defaults" + (f" with {json.dumps(dumped)}" if dumped else "")
    if value is None:
        return "null"
    if isinstance(value, Path):
        return f"`{value.as_posix()}`"
    return f"`{json.dumps(value)}`"


def _sections() -> dict[type[BaseModel], list[type[BaseModel]]]:
    """Each backend section model -> archai-aml's own backends' settings models (the same on every
    machine: packages a user installed are left out of the page)."""
    from archai_aml.plugins import BUILTIN_ENTRY_POINTS, JOB_RUNNERS, STORES, TARGETS

    out: dict[type[BaseModel], list[type[BaseModel]]] = {}
    for registry in (STORES, TARGETS, JOB_RUNNERS):
        names = BUILTIN_ENTRY_POINTS[registry.group]
        out[registry.section] = [load_object(names[name]) for name in names]
    return out


def _models(root: type[BaseModel]) -> list[tuple[type[BaseModel], list[str]]]:
    """Every model reachable from ``root`` (depth first), with the dotted paths it is used at; after a
    backend section, the settings model of each of archai-aml's backends."""
    order: list[type[BaseModel]] = []
    paths: dict[type[BaseModel], list[str]] = {}
    sections = _sections()

    def visit(model: type[BaseModel], path: str) -> None:
        if model not in paths:
            order.append(model)
            paths[model] = []
        paths[model].append(path)
        for name, info in _own_fields(model).items():
            for arg in (info.annotation, *typing.get_args(info.annotation)):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    visit(arg, f"{path}.{name}" if path else name)
        for backend in sections.get(model, []):
            key = model.registry.key  # type: ignore[attr-defined]
            visit(backend, f"{path} ({key}: {backend.model_fields[key].default})")

    visit(root, "")
    return [(m, paths[m]) for m in order]


def _own_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The fields a backend's settings model adds to its section (all fields of any other model)."""
    for section in _sections():
        if model is not section and issubclass(model, section):
            key = section.registry.key  # type: ignore[attr-defined]
            return {n: f for n, f in model.model_fields.items() if n == key or n not in section.model_fields}
    return dict(model.model_fields)


def generate(root: type[BaseModel] = ArchaiAmlConfig, meanings: dict[str, str] | None = None) -> str:
    """The Markdown page; raises ``KeyError`` naming every field that has no meaning."""
    meanings = MEANINGS if meanings is None else meanings
    missing = [
        f"{model.__name__}.{name}"
        for model, _ in _models(root)
        for name, info in _own_fields(model).items()
        if not info.description
        and f"{model.__name__}.{name}" not in meanings
        and not _is_discriminator(model, name)
    ]
    if missing:
        raise KeyError(f"config fields without a meaning (add Field(description=) or MEANINGS): {missing}")
    out = [HEADER]
    for model, paths in _models(root):
        where = "the top level" if paths == [""] else ", ".join(f"`{p}`" for p in paths)
        out.append(f"## {model.__name__}\n\nAt {where}.")
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith("Usage docs:"):
            doc = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", doc)  # Sphinx roles as plain code
            out.append(" ".join(doc.replace("``", "`").split()))
        extra = getattr(model, "extra", None)
        if _is_backend(model) and extra:
            out.append(f"Needs the `{extra}` extra: `pip install 'archai-aml[{extra}]'`.")
        rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
        for name, info in _own_fields(model).items():
            kind = _type(info.annotation)
            limits = _constraints(info)
            meaning = (
                "selects this backend"
                if _is_discriminator(model, name)
                else info.description or meanings[f"{model.__name__}.{name}"]
            )
            rows.append(
                f"| `{name}` | {kind}{f' ({limits})' if limits else ''} | {_default(info)} | {meaning} |"
            )
        out.append("\n".join(rows))
    return "\n\n".join(out) + "\n"


def _is_backend(model: type[BaseModel]) -> bool:
    return any(model is not section and issubclass(model, section) for section in _sections())


def _is_discriminator(model: type[BaseModel], name: str) -> bool:
    return _is_backend(model) and name == model.registry.key  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.stdout.write(generate())
