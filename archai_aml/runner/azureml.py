"""Runners on an Azure ML CPU cluster: one command job with N instances, each running
``archai-aml runner --no-device-work`` (conversion, quantization and ``f1_onnx``: the work that needs no
device), the counterpart of the anchor's Kubernetes quantizer on the engine the user already has.

The job runs on ``config.aml.cpu_cluster`` with ``instance_count = N`` and an MPI distribution of one
process per instance, so Azure ML starts the command once on every node; the runners coordinate through
the status table's leases like any others (each node is its own host, so each quantizes one model at a
time). The store is reached through :func:`archai_aml.store.job_environment` without secrets: endpoints
and the job's identity (``aml.identity_client_id`` names a user-assigned managed identity, otherwise the
submitting user's identity). The environment is ``aml.environment`` at the version workspace setup creates
(:func:`archai_aml.workspace.environment.environment_reference`: a wheel of this checkout, content-hashed).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from archai_aml._optional import require
from archai_aml.config import ArchaiAmlConfig, StoreConfig
from archai_aml.errors import ConfigError, JobError
from archai_aml.store import job_environment

__all__ = ["build_runner_job", "submit_runner_job"]

_SECRET_MARKERS = ("AccountKey=", "SharedAccessSignature=", "sig=", "DefaultEndpointsProtocol=")


def build_runner_job(
    config: ArchaiAmlConfig,
    *,
    instances: int,
    target: str = "cpu",
    store_config: StoreConfig | None = None,
    extra_args: Sequence[str] = (),
    timeout_s: int | None = None,
) -> Any:
    """The ``azure.ai.ml`` command job that runs ``instances`` device-less runners on the CPU cluster."""
    require("azure.ai.ml", feature="submitting runners as an Azure ML job")
    from azure.ai.ml import MpiDistribution, command
    from azure.ai.ml.entities import ManagedIdentityConfiguration, UserIdentityConfiguration

    if config.aml is None:
        raise ConfigError("aml: set the Azure ML workspace (aml.workspace) to submit runners to a cluster")
    if instances < 1:
        raise ConfigError(f"runner instances must be at least 1, got {instances}")
    cluster = config.aml.cpu_cluster
    if instances > cluster.max_instances:
        raise ConfigError(
            f"{instances} runner instances exceed aml.cpu_cluster.max_instances={cluster.max_instances} "
            f"of {cluster.name}: raise it or submit fewer"
        )
    store_config = store_config or config.store
    if store_config.backend != "azure":
        raise ConfigError("runners on Azure ML need the azure store backend (the embedded store is local)")
    env = job_environment(store_config, identity_client_id=config.aml.identity_client_id)
    if "ARCHAI_AML_STORE_TABLE_URL" not in env:
        raise ConfigError(
            "the store is known only by a connection string, which must not go into a job definition: "
            "set store.account_name (or table_url and blob_url) so the job reaches it with its identity"
        )
    for key, value in env.items():
        if any(marker in value for marker in _SECRET_MARKERS):
            raise JobError(f"environment variable {key} would carry a store secret into the job: refused")
    tc, rc = config.target, config.runner
    args = [
        "archai-aml", "runner", "--target", target, "--experiment", config.experiment_name,
        "--no-device-work", "--working", "./runner", "--lease-ttl", str(rc.lease_ttl_s),
        "--poll-interval", str(rc.poll_interval_s),
        "--f1-sizes", f"{tc.f1_onnx_images},{tc.f1_1k_images},{tc.f1_10k_images}",
        *extra_args,
    ]  # fmt: skip
    from archai_aml.workspace.environment import environment_reference

    environment = config.aml.environment
    identity = (
        ManagedIdentityConfiguration(client_id=config.aml.identity_client_id)
        if config.aml.identity_client_id
        else UserIdentityConfiguration()
    )
    return command(
        command=shlex.join(args),
        environment=environment_reference(environment),
        environment_variables=env,
        compute=cluster.name,
        instance_count=instances,
        distribution=MpiDistribution(process_count_per_instance=1),
        identity=identity,
        display_name=f"archai-aml runners ({instances}) for {config.experiment_name}",
        experiment_name=config.experiment_name,
        tags={"archai_aml": "runner", "experiment": config.experiment_name},
        timeout=timeout_s,
    )


def submit_runner_job(
    config: ArchaiAmlConfig,
    *,
    instances: int,
    target: str = "cpu",
    ml_client: Any = None,
    store_config: StoreConfig | None = None,
    extra_args: Sequence[str] = (),
) -> Any:
    """Build the runner job and submit it with ``ml_client.jobs.create_or_update``; returns the job."""
    job = build_runner_job(
        config, instances=instances, target=target, store_config=store_config, extra_args=extra_args
    )
    if ml_client is None:
        from archai_aml.azure_auth import ml_client as workspace_client

        assert config.aml is not None  # checked by build_runner_job
        ml_client = workspace_client(config.aml)
    try:
        return ml_client.jobs.create_or_update(job, experiment_name=config.experiment_name)
    except Exception as exc:
        raise JobError(
            f"submitting {instances} runners to {config.aml.cpu_cluster.name if config.aml else '?'} failed: "
            f"{exc}; check the workspace, the cluster and the environment"
        ) from exc
