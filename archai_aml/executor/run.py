"""Run a plain script on Azure ML (or here) to completion: sync, compute, environment, run, download.

:func:`run_on_azure` goes through the phases, reporting one line per phase to ``on_phase``:

1. **sync**: each data set (``working/<name>``, ``raw/<name>``) to the store's blobs (:mod:`.sync`);
2. **compute**: the cluster of the compute YAML (a :class:`~archai_aml.config.ClusterConfig`) is reused
   when it exists with that configuration, created otherwise; one with other settings is an error;
3. **environment**: the conda file in the wheel-carrying environment of
   :mod:`archai_aml.workspace.environment` (created when its content-hashed version is new);
4. **run**: the command job is submitted; its log is streamed (the SDK's ``jobs.stream`` in a thread)
   while the main thread polls the status until it is final (:mod:`archai_aml.pipelines.job_states`:
   ``NotResponding`` and ``Paused`` are not, and are reported with what they mean). Ctrl-C cancels the job
   (``jobs.begin_cancel``) and waits up to ``cancel_wait_s`` seconds for Azure ML to confirm, saying so
   when it did not;
5. **download**: the job's outputs and logs into ``outputs/<job name>/``. A failed job's result carries a
   :class:`~archai_aml.errors.JobFailedError` naming it and its studio page (``RunResult.error``).

:func:`run_local` runs the same script here as a subprocess with the same folder convention
(``outputs/<job name>/`` as its outputs), streaming its output; Ctrl-C stops it.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from archai_aml.config import AzureMLConfig, ClusterConfig, EnvironmentConfig, StoreConfig
from archai_aml.errors import ConfigError, JobError, JobFailedError
from archai_aml.executor.jobs import data_uri, script_job
from archai_aml.executor.sync import DATA_PARTITION, SyncResult, sync_dataset
from archai_aml.paths import DATA_BLOBS, PIPELINE, ProjectPaths
from archai_aml.pipelines.job_states import is_final, status_name, waiting_note
from archai_aml.store import Store

__all__ = ["RunResult", "ensure_compute", "ensure_environment", "load_compute", "run_local", "run_on_azure"]

log = logging.getLogger(__name__)

Phase = Callable[[str, str], None]


@dataclass
class RunResult:
    job_name: str
    status: str
    outputs: Path
    synced: list[SyncResult] = field(default_factory=list)
    returncode: int | None = None
    #: Why an Azure ML job failed (its name, the service's error, its studio page); None otherwise.
    error: JobFailedError | None = None


def _log_phase(phase: str, text: str) -> None:
    log.info("[%s] %s", phase, text)


def new_job_name(script: str) -> str:
    stem = "".join(c if c.isalnum() else "_" for c in Path(script).stem)[:40] or "run"
    return f"{stem}_{time.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(3)}"


def load_compute(path: str | Path) -> ClusterConfig:
    """The compute YAML (``name``, ``size``, ``min_instances``, ``max_instances``, ``tier``, ...)."""
    import yaml
    from pydantic import ValidationError

    from archai_aml.config import substitute_env

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--compute: {file} does not exist")
    data = substitute_env(yaml.safe_load(file.read_text(encoding="utf-8")) or {})
    try:
        return ClusterConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "compute"
        raise ConfigError(f"{file}: {where}: {first['msg']}") from exc


def ensure_compute(
    ml_client: Any, cluster: ClusterConfig, aml: AzureMLConfig, *, poll_interval_s: float = 5.0
) -> str:
    """Reuse the cluster when it exists with this configuration, create it when missing."""
    from archai_aml.workspace.setup import _create, plan_cluster

    item = plan_cluster(ml_client, cluster, aml)
    for warning in item.warnings:
        log.warning("%s", warning)
    if item.action == "differs":
        raise ConfigError(
            f"compute {cluster.name} exists with other settings ({item.detail}): use another name in the "
            "compute YAML or change it to match"
        )
    if item.action == "create":
        _create(ml_client, item, progress=False, poll_interval_s=poll_interval_s)
    return cluster.name


def ensure_environment(ml_client: Any, env: EnvironmentConfig) -> str:
    """The environment's ``name:version``, created when this content-hashed version is new."""
    from archai_aml.workspace.environment import plan_environment
    from archai_aml.workspace.setup import _create

    item = plan_environment(ml_client, env)
    if item.action == "create":
        _create(ml_client, item, progress=False, poll_interval_s=1.0)
    return str(item.reference)


def _sync_all(
    store: Store, project: ProjectPaths, datasets: Sequence[str], *, zipped: Sequence[str], concurrency: int,
    progress: bool, on_phase: Phase, resync: bool = False,
) -> list[SyncResult]:  # fmt: skip
    results = []
    data_root = project.raw.parent
    for dataset in datasets:
        result = sync_dataset(
            store, data_root, dataset, concurrency=concurrency, zipped=dataset in zipped, progress=progress,
            resync=resync,
        )  # fmt: skip
        on_phase("sync", f"{dataset}: {len(result.uploaded)} sent, {len(result.skipped)} already there")
        results.append(result)
    return results


def _stream(ml_client: Any, name: str, url: str | None, failures: list[JobFailedError]) -> None:
    from archai_aml.azureml_jobs import stream_job

    try:
        stream_job(ml_client, name, url)
    except JobFailedError as exc:  # the status poll sees the same end; the error says why
        failures.append(exc)
    except Exception as exc:  # the status poll decides the outcome; a broken stream only loses log lines
        log.warning("log stream of %s ended: %s", name, exc)


def run_on_azure(
    ml_client: Any,
    aml: AzureMLConfig,
    store: Store,
    store_config: StoreConfig,
    project_root: str | Path,
    script: str,
    args: Sequence[str] = (),
    *,
    compute: ClusterConfig,
    conda_file: str | Path,
    experiment: str,
    datasets: Sequence[str] = (),
    upload_datasets: bool = True,
    zipped: Sequence[str] = (),
    concurrency: int = 8,
    progress: bool = True,
    on_phase: Phase = _log_phase,
    poll_interval_s: float = 10.0,
    job_name: str | None = None,
    cancel_wait_s: float | None = None,
    resync: bool = False,
    sweep: Any = None,
    **job_options: Any,
) -> RunResult:
    """Sync, ensure compute and environment, run ``script`` (under ``pipeline/``) to its end, download.

    ``cancel_wait_s``: after Ctrl-C, how long to wait for Azure ML to confirm the cancel (default
    :data:`archai_aml.azureml_jobs.CANCEL_WAIT_S`)."""
    project = ProjectPaths.of_project(project_root)
    if not (project.pipeline / script).is_file():
        raise ConfigError(f"script {script} is not in {project.pipeline} (the project's {PIPELINE}/ folder)")
    if datasets and store_config.backend != "azure":
        raise ConfigError(
            "data sets for an Azure ML job need the azure store backend (the job reads them from the store's "
            "blob container through the models datastore): configure store.backend: azure"
        )
    synced = []
    if upload_datasets and datasets:
        synced = _sync_all(
            store,
            project,
            datasets,
            zipped=zipped,
            concurrency=concurrency,
            progress=progress,
            on_phase=on_phase,
            resync=resync,
        )
    else:
        on_phase("sync", "skipped" if datasets else "no data sets")
    kinds = sorted({d.strip("/").split("/", 1)[0] for d in datasets})
    data = {kind: data_uri(aml.datastores.models, DATA_PARTITION, kind) for kind in kinds}
    cluster = ensure_compute(ml_client, compute, aml)
    on_phase("compute", f"{cluster} ({compute.size}, up to {compute.max_instances} nodes)")
    env = EnvironmentConfig(
        name=f"{experiment}-env", image=aml.environment.image, conda_file=Path(conda_file)
    )
    environment = ensure_environment(ml_client, env)
    on_phase("compute", f"environment {environment}")
    name = job_name or new_job_name(script)
    extra: dict[str, Any] = {}
    if sweep is not None:  # a SweepConfig: each parameter an input the trial's arguments bind
        from archai_aml.executor.sweep import trial_args

        bind, extra = trial_args(sweep)
        args = [*args, *bind]
    job = script_job(
        script, args, code=str(project.pipeline), compute=cluster, environment=environment, experiment=experiment,
        data=data, name=None if sweep is not None else name, extra_inputs=extra or None, **job_options,
    )  # fmt: skip
    if sweep is not None:
        from archai_aml.executor.sweep import azure_sweep_job

        job = azure_sweep_job(sweep, job)
        job.name = name
    try:
        submitted = ml_client.jobs.create_or_update(job, experiment_name=experiment)
    except Exception as exc:
        raise JobError(
            f"submitting {script} to {cluster} failed: {exc}; check the workspace and quota"
        ) from exc
    from archai_aml.azureml_jobs import CANCEL_WAIT_S, cancel_job

    name = str(getattr(submitted, "name", None) or name)
    url = getattr(submitted, "studio_url", None)
    on_phase("run", f"{name} submitted: {url or ''}".rstrip())
    failures: list[JobFailedError] = []
    streamer = threading.Thread(target=_stream, args=(ml_client, name, url, failures), daemon=True)
    streamer.start()
    status = status_name(getattr(submitted, "status", None)) or "Queued"
    try:
        while not is_final(status):
            time.sleep(poll_interval_s)
            new = status_name(ml_client.jobs.get(name).status)
            if new != status:
                note = waiting_note(new)
                on_phase("run", f"{name}: {new}" + (f" ({note}; {url or 'see the studio'})" if note else ""))
            status = new
    except KeyboardInterrupt:
        wait_s = CANCEL_WAIT_S if cancel_wait_s is None else cancel_wait_s
        on_phase("run", f"interrupted: canceling {name} (waiting up to {wait_s:g} s for Azure ML to confirm)")
        if cancel_job(ml_client, name, wait_s=wait_s):
            on_phase("run", f"{name} canceled")
        else:
            on_phase("run", f"{name}: cancel not confirmed after {wait_s:g} s; it may still run: {url or ''}")
        raise
    streamer.join(timeout=5)
    target = project.outputs / name
    target.mkdir(parents=True, exist_ok=True)
    ml_client.jobs.download(name, download_path=str(target), all=True)
    on_phase("download", f"outputs and logs of {name} in {target}")
    error = None
    if status == "Failed":
        error = failures[0] if failures else JobFailedError(name, url, "status Failed")
        on_phase("run", str(error))
    return RunResult(name, status, target, synced, error=error)


def run_local(
    project_root: str | Path,
    script: str,
    args: Sequence[str] = (),
    *,
    experiment: str,
    job_name: str | None = None,
    env: dict[str, str] | None = None,
    stdout: IO[str] | None = None,
    on_phase: Phase = _log_phase,
    launcher: Sequence[str] | None = None,
) -> RunResult:
    """Run ``pipeline/<script>`` here with the same folder convention; outputs in ``outputs/<job name>/``.
    ``launcher``: what runs the script (default ``python -u``; :func:`distributed_launcher` for torchrun)."""
    project = ProjectPaths.of_project(project_root)
    path = project.pipeline / script
    if not path.is_file():
        raise ConfigError(f"script {script} is not in {project.pipeline} (the project's {PIPELINE}/ folder)")
    name = job_name or new_job_name(script)
    paths = ProjectPaths.of_project(project_root, outputs=project.outputs / name)
    paths.outputs.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env.update(paths.environment())
    child_env.setdefault("MLFLOW_TRACKING_URI", (paths.outputs / "mlruns").as_uri())
    child_env["ARCHAI_AML_EXPERIMENT"] = experiment
    on_phase("sync", f"local run: data read in place from {project.raw.parent} ({DATA_BLOBS}/)")
    on_phase("run", f"{name}: python {script} {' '.join(args)}".rstrip())
    out = stdout or sys.stdout
    log_file = paths.outputs / "logs" / "std_log.txt"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [*(launcher or [sys.executable, "-u"]), str(path), *args], cwd=project.pipeline, env=child_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        with log_file.open("w", encoding="utf-8") as keep:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                keep.write(line)
        code = proc.wait()
    except KeyboardInterrupt:
        on_phase("run", f"interrupted: stopping {name}")
        proc.terminate()
        proc.wait(timeout=10)
        raise
    status = "Completed" if code == 0 else "Failed"
    on_phase("download", f"{name} {status.lower()} (exit {code}); outputs in {paths.outputs}")
    return RunResult(name, status, paths.outputs, [], code)


def distributed_launcher(instances: int, processes_per_instance: int, distribution: str) -> list[str]:
    """The local stand-in of a distributed job: PyTorch's own ``torchrun`` (``torch.distributed.run``) with
    ``instances * processes_per_instance`` processes on this machine (one node: the instances share it), a
    rendezvous on 127.0.0.1; each process gets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` as on Azure ML's PyTorch distribution. ``mpi`` needs ``mpirun`` on the PATH."""
    import shutil
    import socket

    total = instances * processes_per_instance
    if instances < 1 or processes_per_instance < 1:
        raise ConfigError("--instances and --processes-per-instance must be at least 1")
    if distribution == "mpi":
        mpirun = shutil.which("mpirun")
        if mpirun is None:
            raise ConfigError(
                "--distribution mpi --local needs mpirun on the PATH (Open MPI); or use pytorch"
            )
        return [mpirun, "-np", str(total), sys.executable, "-u"]
    if distribution != "pytorch":
        raise ConfigError(f"--distribution {distribution!r}: use pytorch or mpi")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(total),
            "--master-addr", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
