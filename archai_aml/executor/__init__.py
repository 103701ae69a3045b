"""The cloud executor: run a plain script on Azure ML (or here) with the project folder convention of
:mod:`archai_aml.paths`, its data sets synced to the store's blobs (``archai-aml run``)."""

from archai_aml.executor.jobs import data_uri, distribution, early_termination, script_job, sweep_job
from archai_aml.executor.run import (
    RunResult,
    distributed_launcher,
    ensure_compute,
    ensure_environment,
    load_compute,
    run_local,
    run_on_azure,
)
from archai_aml.executor.sweep import SweepConfig, azure_sweep_job, best_trial, load_sweep
from archai_aml.executor.sweep_local import run_sweep_local
from archai_aml.executor.sync import DATA_PARTITION, SyncResult, pull_dataset, sync_dataset

__all__ = [
    "DATA_PARTITION",
    "RunResult",
    "SweepConfig",
    "SyncResult",
    "azure_sweep_job",
    "best_trial",
    "data_uri",
    "distributed_launcher",
    "distribution",
    "early_termination",
    "ensure_compute",
    "ensure_environment",
    "load_compute",
    "load_sweep",
    "pull_dataset",
    "run_local",
    "run_on_azure",
    "run_sweep_local",
    "script_job",
    "sweep_job",
    "sync_dataset",
]
