"""Run ``azure-ai-ml`` pipeline jobs on this machine: each command node is a subprocess.

:class:`LocalJobRunner` is the embedded default of :class:`~archai_aml.pipelines.base.JobRunner`. It walks
the pipeline's command nodes and runs each with ``bash -c`` in its own process group (so that cancel can
kill the whole group), in the node's code folder, with:

- ``${{inputs.<name>}}`` / ``${{outputs.<name>}}`` replaced by local folders: ``azureml://datastores/<ds>/
  paths/<p>`` maps to ``<local_root>/datastores/<ds>/<p>``, local paths stay as they are;
- the runner's process environment, then the node's ``environment_variables``, then the runner's own
  ``env`` (where store secrets live: never in the pipeline object), then ``AZUREML_RUN_ID`` (``<pipeline>_
  <node>``), ``AZUREML_ROOT_RUN_ID`` (the pipeline id) and ``CUDA_VISIBLE_DEVICES`` when GPUs are used;
- ``PATH`` starting with the folder of this process's Python, so that ``python`` in a command is the
  interpreter (and virtual environment) of the search that runs the pipeline, as an Azure ML job's
  ``python`` is its environment's;
- one log file per node, ``<local_root>/<pipeline>/<node>.log`` (stdout and stderr).

Parallelism is bounded by slots shared by every pipeline of the runner: ``len(gpus) * jobs_per_gpu``
slots when GPUs are used (each job pinned to one GPU; several jobs may share one), ``max_parallel`` on CPU.

Statuses follow Azure ML: a node is ``NotStarted`` until it gets a slot, ``Preparing`` while it is launched,
``Running``, then ``Completed`` (exit code 0), ``Failed`` or ``Canceled``. The pipeline is ``NotStarted``
before its first node starts, ``Running`` while any node has not ended, then ``Failed`` if any node failed,
``Canceled`` if it was cancelled, else ``Completed``. With ``settings.continue_on_step_failure`` false (Azure
ML's default) the first failure cancels the nodes that are still waiting or running; the training pipeline
sets it true so one failing model does not stop the others.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archai_aml.config import ArchaiAmlConfig, StoreConfig
from archai_aml.errors import JobError
from archai_aml.pipelines.base import (
    CANCELED,
    COMPLETED,
    FAILED,
    NOT_STARTED,
    PREPARING,
    RUNNING,
    is_terminal,
)
from archai_aml.pipelines.local_nodes import NodeRecord, NodeResolver
from archai_aml.store import job_environment

__all__ = ["LocalJobRunner", "NodeRecord", "detect_gpus"]

log = logging.getLogger(__name__)


def detect_gpus() -> list[int]:
    """GPU indices visible to torch (empty without CUDA or without torch)."""
    try:
        import torch

        return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    except Exception:  # no torch, or a broken CUDA install: run on CPU
        return []


@dataclass
class _PipelineRun:
    name: str
    experiment: str
    nodes: dict[str, NodeRecord]
    continue_on_failure: bool
    submitted: float
    cancel_requested: bool = False
    stop_scheduling: bool = False
    dispatched: bool = False
    version: int = 0
    seen_version: int = 0
    threads: list[threading.Thread] = field(default_factory=list)


class LocalJobRunner:
    """Runs pipeline jobs as local subprocesses (see the module docstring)."""

    #: The completion monitor may ask for the pipeline status on every poll: it costs no request.
    status_every = 1

    def __init__(
        self,
        local_root: str | Path = ".archai_aml/jobs",
        *,
        max_parallel: int = 2,
        jobs_per_gpu: int = 1,
        gpus: list[int] | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        kill_grace_s: float = 5.0,
    ) -> None:
        if max_parallel < 1 or jobs_per_gpu < 1:
            raise ValueError("max_parallel and jobs_per_gpu must be at least 1")
        self.local_root = Path(local_root).resolve()
        self._nodes = NodeResolver(self.local_root)
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.kill_grace_s = kill_grace_s
        self.gpus = detect_gpus() if gpus is None else list(gpus)
        self.jobs_per_gpu = jobs_per_gpu
        self.max_parallel = max_parallel
        self._slots: queue.Queue[int | None] = queue.Queue()
        if self.gpus:
            for _ in range(jobs_per_gpu):
                for gpu in self.gpus:
                    self._slots.put(gpu)
        else:
            for _ in range(max_parallel):
                self._slots.put(None)
        self._runs: dict[str, _PipelineRun] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)

    @classmethod
    def from_config(cls, config: ArchaiAmlConfig, store_config: StoreConfig | None = None) -> LocalJobRunner:
        """A runner with the configured parallelism whose subprocesses can open ``store_config``.

        The store's secrets (a connection string) go into the runner's own environment only.
        """
        training = config.training
        return cls(
            training.local_root,
            max_parallel=training.max_parallel,
            jobs_per_gpu=training.jobs_per_gpu,
            gpus=training.gpus,
            env=job_environment(store_config or config.store, include_secrets=True),
        )

    @property
    def slots(self) -> int:
        """How many jobs may run at once."""
        return len(self.gpus) * self.jobs_per_gpu if self.gpus else self.max_parallel

    @property
    def pipeline_ids(self) -> list[str]:
        """Every pipeline submitted to this runner, oldest first."""
        with self._lock:
            return list(self._runs)

    # ------------------------------------------------------------------------------------------ submit
    def local_path(self, uri: str) -> Path:
        """The local folder for an input/output path (datastore URIs mapped under ``local_root``)."""
        return self._nodes.local_path(uri)

    def submit(self, pipeline_job: Any, *, experiment_name: str | None = None) -> Any:
        """Start every command node of ``pipeline_job`` (in slots as they free up); returns the job, named."""
        name = getattr(pipeline_job, "name", None) or f"local_{secrets.token_hex(6)}"
        with self._lock:
            if name in self._runs:
                raise JobError(
                    f"a pipeline named {name!r} was already submitted to this runner: use a new name"
                )
        nodes: dict[str, NodeRecord] = {}
        outputs: dict[tuple[str, str], str] = {}
        for node_name, node in pipeline_job.jobs.items():
            nodes[node_name] = self._nodes.node_record(pipeline_job, name, node_name, node, outputs)
        (self.local_root / name).mkdir(parents=True, exist_ok=True)
        settings = getattr(pipeline_job, "settings", None)
        run = _PipelineRun(
            name=name,
            experiment=experiment_name or getattr(pipeline_job, "experiment_name", None) or "",
            nodes=nodes,
            continue_on_failure=bool(getattr(settings, "continue_on_step_failure", False)),
            submitted=time.monotonic(),
        )
        with self._lock:
            self._runs[name] = run
        dispatcher = threading.Thread(
            target=self._dispatch, args=(run,), name=f"dispatch-{name}", daemon=True
        )
        run.threads.append(dispatcher)
        dispatcher.start()
        pipeline_job.name = name
        log.info(
            "local pipeline %s: %d nodes, %d slots, logs in %s",
            name,
            len(nodes),
            self.slots,
            self.local_root / name,
        )
        return pipeline_job

    # ------------------------------------------------------------------------------------ execution
    def _touch(self, run: _PipelineRun) -> None:
        with self._changed:
            run.version += 1
            self._changed.notify_all()

    def _take_slot(self, run: _PipelineRun) -> tuple[bool, int | None]:
        while True:
            if run.cancel_requested or run.stop_scheduling:
                return False, None
            try:
                return True, self._slots.get(timeout=0.05)
            except queue.Empty:
                continue

    def _dispatch(self, run: _PipelineRun) -> None:
        run.dispatched = True
        for node in run.nodes.values():
            if not self._upstream_completed(run, node):
                continue
            ok, slot = self._take_slot(run)
            if not ok:
                break
            if run.cancel_requested or run.stop_scheduling:
                self._slots.put(slot)
                break
            self._start(run, node, slot)
        with self._lock:
            for node in run.nodes.values():
                if node.status == NOT_STARTED:
                    node.status = CANCELED
        self._touch(run)

    def _upstream_completed(self, run: _PipelineRun, node: NodeRecord) -> bool:
        """Wait until the nodes ``node`` reads from ended; False (``node`` canceled) unless all completed."""
        upstream = [run.nodes[n] for n in node.after if n in run.nodes]
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    run.cancel_requested
                    or run.stop_scheduling
                    or all(is_terminal(u.status) for u in upstream)
                )
            )
            if all(u.status == COMPLETED for u in upstream):
                return True
            if not (run.cancel_requested or run.stop_scheduling):
                node.status = CANCELED
        self._touch(run)
        return False

    def _start(self, run: _PipelineRun, node: NodeRecord, slot: int | None) -> None:
        node.status = PREPARING
        self._touch(run)
        env = dict(os.environ) if self.inherit_env else {"PATH": os.environ.get("PATH", "")}
        env.update(node.env)
        env.update(self.env)
        env["PATH"] = _interpreter_first(env.get("PATH", ""))
        env["AZUREML_RUN_ID"] = f"{run.name}_{node.name}"
        env["AZUREML_ROOT_RUN_ID"] = run.name
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(slot)
        node.gpu = slot
        node.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(node.log_path, "wb") as logf:
                node.proc = subprocess.Popen(
                    ["bash", "-c", node.command],
                    cwd=node.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            log.error("pipeline %s: node %s could not start: %s", run.name, node.name, exc)
            with open(node.log_path, "a", encoding="utf-8") as logf:
                logf.write(f"could not start: {exc}\n")
            node.status = FAILED
            self._after_end(run, node, slot)
            return
        node.started = time.monotonic()
        node.pid = node.proc.pid
        node.status = RUNNING
        self._touch(run)
        watcher = threading.Thread(
            target=self._watch, args=(run, node, slot), name=f"watch-{node.name}", daemon=True
        )
        run.threads.append(watcher)
        watcher.start()

    def _watch(self, run: _PipelineRun, node: NodeRecord, slot: int | None) -> None:
        assert node.proc is not None
        rc = node.proc.wait()
        node.ended = time.monotonic()
        node.returncode = rc
        with self._lock:
            if (run.cancel_requested or node.killed) and rc != 0:
                node.status = CANCELED
            else:
                node.status = COMPLETED if rc == 0 else FAILED
        if node.status == FAILED:
            log.warning(
                "pipeline %s: node %s failed with exit code %s (log: %s)",
                run.name,
                node.name,
                rc,
                node.log_path,
            )
        self._after_end(run, node, slot)

    def _after_end(self, run: _PipelineRun, node: NodeRecord, slot: int | None) -> None:
        """Release the node's slot; a failure without ``continue_on_failure`` first stops the pipeline."""
        stop = node.status == FAILED and not run.continue_on_failure
        if stop:
            run.stop_scheduling = True  # before the slot is released: nothing else may start
        self._slots.put(slot)
        if stop:
            for other in run.nodes.values():
                if other is not node and other.status in (PREPARING, RUNNING):
                    self._kill(other)
        self._touch(run)

    def _kill(self, node: NodeRecord, sig: int = signal.SIGTERM) -> None:
        if node.proc is None or node.proc.poll() is not None:
            return
        node.killed = True
        try:
            os.killpg(node.proc.pid, sig)
        except ProcessLookupError:
            pass

    # --------------------------------------------------------------------------------------- queries
    def _run(self, job_id: str) -> _PipelineRun:
        with self._lock:
            run = self._runs.get(job_id)
        if run is None:
            raise JobError(f"no pipeline {job_id!r} was submitted to this local runner")
        return run

    def status(self, job_id: str) -> str:
        run = self._run(job_id)
        with self._lock:
            statuses = [n.status for n in run.nodes.values()]
            if not all(is_terminal(s) for s in statuses):
                if not run.dispatched or all(s == NOT_STARTED for s in statuses):
                    return NOT_STARTED
                return RUNNING
            if FAILED in statuses:
                return FAILED
            if run.cancel_requested or CANCELED in statuses:
                return CANCELED
            return COMPLETED

    def node_statuses(self, job_id: str) -> dict[str, str]:
        run = self._run(job_id)
        with self._lock:
            return {name: n.status for name, n in run.nodes.items()}

    def records(self, job_id: str) -> list[NodeRecord]:
        """The node records of a pipeline (command, GPU, pid, start/end times, exit code)."""
        return list(self._run(job_id).nodes.values())

    def logs(self, job_id: str, node: str) -> str:
        run = self._run(job_id)
        record = run.nodes.get(node)
        if record is None:
            raise JobError(f"pipeline {job_id!r} has no node {node!r}; nodes: {sorted(run.nodes)}")
        try:
            return record.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_change(self, job_id: str, timeout: float) -> bool:
        run = self._run(job_id)
        with self._changed:
            changed = self._changed.wait_for(
                lambda: run.version != run.seen_version, timeout=max(timeout, 0.0)
            )
            run.seen_version = run.version
            return bool(changed)

    def wait(self, job_id: str, timeout: float | None = None) -> str:
        """Block until the pipeline ended (or ``timeout`` seconds passed); returns its status."""
        self._run(job_id)  # an unknown id raises JobError
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not is_terminal(self.status(job_id)):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(timeout=left if left is not None else 1.0)
        return self.status(job_id)

    def cancel(self, job_id: str) -> None:
        """Cancel: waiting nodes never start; running ones get SIGTERM on their process group, then SIGKILL
        after ``kill_grace_s``. Returns when every process of the pipeline has exited."""
        run = self._run(job_id)
        run.cancel_requested = True
        running = [n for n in run.nodes.values() if n.proc is not None and n.proc.poll() is None]
        for node in running:
            self._kill(node, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_grace_s
        for node in running:
            assert node.proc is not None
            try:
                node.proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                self._kill(node, signal.SIGKILL)
                node.proc.wait()
        for thread in list(run.threads):
            if thread is not threading.current_thread():
                thread.join(timeout=self.kill_grace_s)
        log.info("local pipeline %s canceled", job_id)

    def studio_url(self, job_id: str) -> str | None:
        return None

    def close(self) -> None:
        """Cancel every pipeline that has not ended."""
        for job_id in self.pipeline_ids:
            if not is_terminal(self.status(job_id)):
                self.cancel(job_id)


def _interpreter_first(path: str) -> str:
    """``path`` with the folder of :data:`sys.executable` in front (once)."""
    folder = str(Path(sys.executable).parent)
    rest = [p for p in path.split(os.pathsep) if p and p != folder]
    return os.pathsep.join([folder, *rest])
