"""Job builders for a plain script, in Azure ML SDK v2 terms (real ``azure.ai.ml`` objects, not submitted).

- :func:`script_job`: a ``command`` job running ``python <script> <args>`` from the ``pipeline/`` code
  snapshot, with the data sets as ``uri_folder`` inputs (mounted or downloaded) and the folder convention
  of :mod:`archai_aml.paths` passed as environment variables, so the script finds the same paths as here;
  ``instance_count`` and ``distribution`` (:func:`distribution`: MPI or PyTorch) make it a distributed job.
- :func:`sweep_job`: a hyperparameter sweep over a command job whose inputs are the search space
  (sampling algorithm, primary metric and goal, early termination policy, max total / concurrent trials).

Metrics go through MLflow: Azure ML sets ``MLFLOW_TRACKING_URI`` in every job, so ``mlflow.log_metric``
in the script lands in the run (and is what a sweep's primary metric reads). ``./outputs`` and ``./logs``
under the job's working folder are kept by Azure ML; :data:`ENV_OUTPUTS` points the script at
``./outputs``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from archai_aml._optional import require
from archai_aml.errors import ConfigError
from archai_aml.paths import ENV_OUTPUTS, ENV_PIPELINE, ENV_RAW, ENV_WORKING

__all__ = ["data_uri", "distribution", "early_termination", "script_job", "sweep_job"]

#: Where Azure ML keeps what a job writes (relative to its working folder, the code snapshot).
JOB_OUTPUTS = "outputs"


def data_uri(datastore: str, partition: str, kind: str) -> str:
    """The datastore URI of ``data_blobs/<kind>`` synced to the store's container (the models datastore)."""
    return f"azureml://datastores/{datastore}/paths/{partition}/{kind}"


def distribution(kind: Literal["mpi", "pytorch"], process_count_per_instance: int = 1) -> Any:
    """``MpiDistribution`` or ``PyTorchDistribution`` with that many processes per node."""
    require("azure.ai.ml", feature="Azure ML jobs")
    from azure.ai.ml import MpiDistribution, PyTorchDistribution

    if process_count_per_instance < 1:
        raise ConfigError(f"process_count_per_instance must be at least 1, got {process_count_per_instance}")
    if kind == "mpi":
        return MpiDistribution(process_count_per_instance=process_count_per_instance)
    if kind == "pytorch":
        return PyTorchDistribution(process_count_per_instance=process_count_per_instance)
    raise ConfigError(f"distribution {kind!r}: use mpi or pytorch")


def script_job(
    script: str,
    args: Sequence[str] = (),
    *,
    code: str,
    compute: str,
    environment: str,
    experiment: str,
    data: Mapping[str, str] | None = None,
    data_mode: Literal["ro_mount", "download"] = "ro_mount",
    environment_variables: Mapping[str, str] | None = None,
    instance_count: int = 1,
    distribution: Any = None,
    name: str | None = None,
    identity: Any = None,
    timeout_s: int | None = None,
    extra_inputs: Mapping[str, Any] | None = None,
) -> Any:
    """The ``command`` job that runs ``python script args`` from ``code`` (see the module docstring).

    ``data`` maps a kind (``raw``, ``working``) to the URI of its synced folder; ``extra_inputs`` adds
    inputs (a sweep's search space) that ``args`` may bind as ``${{inputs.<name>}}``.
    """
    require("azure.ai.ml", feature="Azure ML jobs")
    from azure.ai.ml import Input, command

    if instance_count < 1:
        raise ConfigError(f"instance_count must be at least 1, got {instance_count}")
    inputs: dict[str, Any] = {}
    env = dict(environment_variables or {})
    env[ENV_PIPELINE] = "."
    env[ENV_OUTPUTS] = JOB_OUTPUTS
    mounts = []
    for kind, uri in (data or {}).items():
        key = {"raw": ENV_RAW, "working": ENV_WORKING}.get(kind)
        if key is None:
            raise ConfigError(f"data kind {kind!r}: use raw or working")
        inputs[f"data_{kind}"] = Input(type="uri_folder", path=uri, mode=data_mode)
        mounts.append(f"{key}=${{{{inputs.data_{kind}}}}}")
    for kind, key in (("raw", ENV_RAW), ("working", ENV_WORKING)):
        if kind not in (data or {}):
            env[key] = f"data_blobs/{kind}"  # nothing synced: an empty folder of the snapshot
    inputs.update(extra_inputs or {})
    # the mount paths are known only when the job starts: `env VAR=${{inputs..}}` sets them for the script
    line = shlex.join(["python", script, *args])
    line = line.replace("'${{", "${{").replace("}}'", "}}")  # keep bindings unquoted for Azure ML
    full = " ".join(["env", *mounts, line]) if mounts else line
    return command(
        command=full,
        code=code,
        inputs=inputs,
        environment=environment,
        environment_variables=env,
        compute=compute,
        instance_count=instance_count,
        distribution=distribution,
        identity=identity,
        experiment_name=experiment,
        display_name=name or script,
        name=name,
        tags={"archai_aml": "run", "script": script},
        timeout=timeout_s,
    )


def early_termination(kind: Literal["bandit", "median", "truncation"], **settings: Any) -> Any:
    """An early termination policy: ``BanditPolicy`` (slack_factor / slack_amount), ``MedianStoppingPolicy``
    or ``TruncationSelectionPolicy`` (truncation_percentage); ``evaluation_interval``, ``delay_evaluation``."""
    from azure.ai.ml.sweep import BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy

    classes = {
        "bandit": BanditPolicy,
        "median": MedianStoppingPolicy,
        "truncation": TruncationSelectionPolicy,
    }
    if kind not in classes:
        raise ConfigError(f"early termination {kind!r}: use one of {', '.join(classes)}")
    return classes[kind](**settings)


def sweep_job(
    base: Any,
    search_space: Mapping[str, Any],
    *,
    primary_metric: str,
    goal: Literal["maximize", "minimize"],
    sampling: Literal["random", "grid", "bayesian"] = "random",
    max_total_trials: int,
    max_concurrent_trials: int,
    policy: Any = None,
    timeout_s: int | None = None,
    compute: str | None = None,
) -> Any:
    """A ``SweepJob`` over the command job ``base``; ``search_space`` maps its inputs to ``Choice``,
    ``Uniform``, ... (``azure.ai.ml.sweep``). The script logs ``primary_metric`` through MLflow."""
    if max_concurrent_trials < 1 or max_total_trials < max_concurrent_trials:
        raise ConfigError(
            f"sweep limits: max_concurrent_trials ({max_concurrent_trials}) must be >= 1 and <= "
            f"max_total_trials ({max_total_trials})"
        )
    missing = [k for k in search_space if k not in base.inputs]
    if missing:
        raise ConfigError(
            f"sweep search space {missing} are not inputs of the job: pass them as extra_inputs and bind "
            "them in the arguments as ${{inputs.<name>}}"
        )
    trial = base(**search_space)
    sweep = trial.sweep(
        compute=compute or base.compute,
        sampling_algorithm=sampling,
        primary_metric=primary_metric,
        goal=goal.capitalize(),
        early_termination_policy=policy,
    )
    sweep.set_limits(
        max_total_trials=max_total_trials, max_concurrent_trials=max_concurrent_trials, timeout=timeout_s
    )
    sweep.experiment_name = base.experiment_name
    return sweep
