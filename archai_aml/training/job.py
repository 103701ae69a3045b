"""The helper a training script uses inside its job: status row, metrics, MLflow.

::

    with TrainingJob.from_env(experiment=args.experiment, model_id=args.model_id) as job:
        arch_file = job.download_arch(workdir)          # <experiment>/<model_id>/<model_id>.json
        ...train...
        job.report({"val_iou": iou})                    # row + MLflow; may be called several times

On entry the row goes to ``status=training`` with ``job_id`` (``AZUREML_RUN_ID``), ``pipeline_id``
(``AZUREML_ROOT_RUN_ID``), ``node`` (host name) and ``training_start``. On a clean exit the reported
metrics, ``training_time`` (seconds inside the ``with`` block) and ``status=complete`` are written in one
write; on an exception ``status=failed`` and ``error="<Type>: <message>"`` (truncated), and the
exception propagates so the job exits non-zero. SIGTERM (a cancelled, preempted or timed-out job) is turned
into :class:`~archai_aml.errors.JobTerminatedError` inside the block (main thread only), so such a job
also leaves ``failed`` with a reason instead of a row stuck at ``training``.

Every row write is a compare-and-swap on the row's ``_version``: when a newer pipeline batch took the model
over (the row's ``batch`` differs from this job's ``ARCHAI_AML_BATCH``), this job's late writes are dropped
with a warning instead of overwriting the newer job's status.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from archai_aml.errors import (
    ConcurrencyError,
    ConfigError,
    EntityExistsError,
    InvalidNameError,
    JobTerminatedError,
    StoreError,
)
from archai_aml.store import Store, open_store, store_config_from_env
from archai_aml.store.base import Entity
from archai_aml.store.rules import RESERVED_KEYS, check_column
from archai_aml.training.checkpoint import Continuation

__all__ = [
    "ENV_BATCH",
    "ENV_EXPERIMENT",
    "ENV_JOB_ID",
    "ENV_METRIC_KEY",
    "ENV_MODEL_ID",
    "ENV_PIPELINE_ID",
    "ERROR_MAX_CHARS",
    "TrainingJob",
    "error_text",
]

log = logging.getLogger(__name__)

ENV_JOB_ID = "AZUREML_RUN_ID"
ENV_PIPELINE_ID = "AZUREML_ROOT_RUN_ID"
#: Set on every training node by the training pipeline (archai_aml.pipelines.training), read here.
ENV_BATCH = "ARCHAI_AML_BATCH"
ENV_EXPERIMENT = "ARCHAI_AML_EXPERIMENT"
ENV_MODEL_ID = "ARCHAI_AML_MODEL_ID"
ENV_METRIC_KEY = "ARCHAI_AML_METRIC_KEY"
ERROR_MAX_CHARS = 2000
_CAS_ATTEMPTS = 20


def error_text(exc: BaseException, limit: int = ERROR_MAX_CHARS) -> str:
    """``"<Type>: <message>"`` of an exception, cut to ``limit`` characters."""
    text = f"{type(exc).__name__}: {exc}".strip()
    if len(text) > limit:
        text = text[: limit - 15] + " ...(truncated)"
    return text


def _check_metric_name(key: str) -> None:
    """:class:`InvalidNameError` unless ``key`` can be a column of the status row (see ``check_column``)."""
    if key in RESERVED_KEYS:
        raise InvalidNameError(
            f"metric {key!r} is reserved by the status store (partition, name, _version, _timestamp): rename it"
        )
    check_column(key)


def _metric_value(key: str, value: Any) -> int | float | str | bool:
    if isinstance(value, (bool, int, str)):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric {key!r} is a {type(value).__name__}; report numbers or strings") from None
    return number


class _MlflowLogger:
    """MLflow logging that never fails the job: any MLflow error becomes a warning and turns MLflow off."""

    def __init__(self, experiment: str, run_name: str, local_dir: Path) -> None:
        self.active = False
        self.run_id: str | None = None
        self.tracking_uri: str | None = None
        try:
            import mlflow
        except ImportError as exc:  # mlflow-skinny is a dependency, but a slim image may lack it
            log.warning("MLflow is not importable (%s): metrics go to the status store only", exc)
            return
        self._mlflow = mlflow
        try:
            remote = os.environ.get("MLFLOW_TRACKING_URI")
            if remote:  # Azure ML: the workspace's tracking server; MLFLOW_RUN_ID names the job's run
                self.tracking_uri = remote
                run = mlflow.start_run()
            else:
                logging.getLogger("mlflow").setLevel(logging.WARNING)
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
                # a run id set for a remote server does not exist in a local file store
                stale_run_id = os.environ.pop("MLFLOW_RUN_ID", None)
                if stale_run_id:
                    log.debug("ignoring MLFLOW_RUN_ID=%s: logging to a local MLflow store", stale_run_id)
                self.tracking_uri = (local_dir / "mlruns").resolve().as_uri()
                mlflow.set_tracking_uri(self.tracking_uri)
                mlflow.set_experiment(experiment)
                run = mlflow.start_run(run_name=run_name)
            self.run_id = run.info.run_id
            self.active = True
            log.debug("MLflow run %s at %s", self.run_id, self.tracking_uri)
        except Exception as exc:
            log.warning("MLflow logging is off for this job: %s", error_text(exc, 300))

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        if not self.active:
            return
        try:
            fn(*args, **kwargs)
        except Exception as exc:
            log.warning("MLflow %s failed, MLflow logging is off from now on: %s", what, error_text(exc, 300))
            self.active = False

    def params(self, params: Mapping[str, Any]) -> None:
        self._call("log_params", self._mlflow.log_params, {k: str(v)[:500] for k, v in params.items()})

    def metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        numeric = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        }
        if numeric:
            self._call("log_metrics", self._mlflow.log_metrics, numeric, step=step)

    def end(self, status: str) -> None:
        self._call("end_run", self._mlflow.end_run, status=status)
        self.active = False


class TrainingJob:
    """Context manager that reports one model's training to the status store (and MLflow).

    Use :meth:`from_env` inside a job; the constructor takes an open :class:`Store` (tests, notebooks).
    """

    def __init__(
        self,
        store: Store,
        experiment: str,
        model_id: str,
        *,
        metric_key: str = "val_iou",
        job_id: str | None = None,
        pipeline_id: str | None = None,
        batch: str | None = None,
        output_dir: str | Path | None = None,
        use_mlflow: bool = True,
        close_store: bool = False,
        continuation: Continuation | None = None,
    ) -> None:
        _check_metric_name(metric_key)  # a reserved metric key fails here, before any training time is spent
        self.store = store
        self.experiment = experiment
        self.model_id = model_id
        self.metric_key = metric_key
        self.job_id = job_id
        self.pipeline_id = pipeline_id
        self.batch = batch
        self.output_dir = Path(output_dir) if output_dir is not None else Path.cwd()
        self.use_mlflow = use_mlflow
        self.metrics: dict[str, Any] = {}
        self.training_time: float | None = None
        self.status: str | None = None
        self.superseded = False
        self._close_store = close_store
        #: where this job is in the model's training (continued training: ``archai_aml.training.checkpoint``)
        self.continuation = continuation or Continuation()
        self._start: float | None = None
        self._mlflow: _MlflowLogger | None = None
        self._previous_sigterm: Any = None
        self._sigterm_installed = False

    # ------------------------------------------------------------------------------------- construction
    @classmethod
    def from_env(
        cls,
        *,
        experiment: str | None = None,
        model_id: str | None = None,
        metric_key: str | None = None,
        output_dir: str | Path | None = None,
        use_mlflow: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> TrainingJob:
        """A job on the store the environment names (see :func:`archai_aml.store.store_config_from_env`).

        ``experiment``/``model_id``/``metric_key`` default to ``ARCHAI_AML_EXPERIMENT`` /
        ``ARCHAI_AML_MODEL_ID`` / ``ARCHAI_AML_METRIC_KEY`` (then ``val_iou``); the job id is
        ``AZUREML_RUN_ID`` and the pipeline id ``AZUREML_ROOT_RUN_ID`` (both set by Azure ML and by the local
        executor).
        """
        env = os.environ if env is None else env
        experiment = experiment or env.get(ENV_EXPERIMENT)
        model_id = model_id or env.get(ENV_MODEL_ID)
        if not experiment or not model_id:
            raise ConfigError(
                "TrainingJob needs an experiment and a model id: pass --experiment/--model-id or set "
                f"{ENV_EXPERIMENT}/{ENV_MODEL_ID}"
            )
        config = store_config_from_env(env)
        if config is None:
            raise ConfigError(
                "no status store in the environment: set ARCHAI_AML_STORE (a folder or a connection string "
                "for local runs) or ARCHAI_AML_STORE_TABLE_URL + ARCHAI_AML_STORE_BLOB_URL (Azure ML jobs)"
            )
        store = open_store(config)
        return cls(
            store,
            experiment,
            model_id,
            metric_key=metric_key or env.get(ENV_METRIC_KEY) or "val_iou",
            job_id=env.get(ENV_JOB_ID) or None,
            pipeline_id=env.get(ENV_PIPELINE_ID) or None,
            batch=env.get(ENV_BATCH) or None,
            output_dir=output_dir,
            use_mlflow=use_mlflow,
            close_store=True,
            continuation=Continuation.from_env(env),
        )

    # ---------------------------------------------------------------------------------------- row writes
    def _write(self, values: Mapping[str, Any]) -> Entity | None:
        """Merge ``values`` into the row by compare-and-swap; None when a newer batch owns the row."""
        for _ in range(_CAS_ATTEMPTS):
            row = self.store.get(self.experiment, self.model_id)
            if row is None:
                try:
                    return self.store.create(
                        self.experiment, self.model_id, {k: v for k, v in values.items() if v is not None}
                    )
                except EntityExistsError:  # created meanwhile: decide again on the new row
                    continue
            row_batch = row.get("batch")
            if self.batch and row_batch and row_batch != self.batch:
                self.superseded = True
                log.warning(
                    "model %s/%s now belongs to batch %s, not this job's %s: not writing %s",
                    self.experiment,
                    self.model_id,
                    row_batch,
                    self.batch,
                    sorted(values),
                )
                return None
            if row.get("status") == "canceled" and values.get("status") in ("training", "failed"):
                # the orchestrator canceled this model (and then this job): the row keeps saying so
                log.warning(
                    "model %s/%s was canceled: not writing %s", self.experiment, self.model_id, sorted(values)
                )
                return None
            try:
                return self.store.merge(
                    self.experiment, self.model_id, values, expected_version=row["_version"]
                )
            except ConcurrencyError:
                continue
        raise StoreError(
            f"could not update {self.experiment}/{self.model_id}: the row kept changing during "
            f"{_CAS_ATTEMPTS} compare-and-swap attempts; check for another writer looping on it"
        )

    # -------------------------------------------------------------------------------------------- API
    def download_arch(self, target_folder: str | Path, blob_name: str | None = None) -> Path:
        """Download the model's ArchConfig JSON (``<model_id>.json`` by default) into ``target_folder``."""
        name = blob_name or f"{self.model_id}.json"
        try:
            paths = self.store.download(self.experiment, self.model_id, target_folder, blob_names=[name])
        except FileNotFoundError as exc:
            raise ConfigError(
                f"the store has no blob {self.experiment}/{self.model_id}/{name}: upload the model's ArchConfig "
                "JSON there first (start_training_pipeline does)"
            ) from exc
        if not paths:
            raise ConfigError(f"the store has no blob {self.experiment}/{self.model_id}/{name}")
        return paths[0]

    def resume_checkpoint(self, folder: str | Path) -> Path | None:
        """The checkpoint this job continues from, downloaded into ``folder``; None: train from scratch."""
        return self.continuation.download(self.store, self.experiment, self.model_id, folder)

    def save_checkpoint(self, path: str | Path, epochs: float | None = None) -> str:
        """Upload ``path`` as the model's checkpoint after ``epochs`` epochs in all (default: the job's total);
        the row names it when the job completes. Returns the blob name."""
        total = epochs if epochs is not None else self.continuation.total_epochs
        if total is None:
            raise ConfigError("save_checkpoint needs the epochs the checkpoint holds (epochs=...)")
        return self.continuation.upload(self.store, self.experiment, self.model_id, path, total)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log hyper-parameters to MLflow (not to the status row)."""
        if self._mlflow is not None:
            self._mlflow.params(params)

    def report(self, metrics: Mapping[str, Any], *, step: int | None = None) -> None:
        """Record metrics: written to the row now (status unchanged) and logged to MLflow.

        A metric name the store cannot hold as a column (``PartitionKey``, ``RowKey``, ``Timestamp``, ``etag``,
        not an identifier, ...) raises :class:`~archai_aml.errors.InvalidNameError` before anything is written.
        """
        for key in metrics:
            _check_metric_name(key)
        clean = {k: _metric_value(k, v) for k, v in metrics.items()}
        self.metrics.update(clean)
        self._write(clean)
        if self._mlflow is not None:
            self._mlflow.metrics(clean, step=step)

    def elapsed(self) -> float:
        """Seconds since the job started (0 before)."""
        return 0.0 if self._start is None else time.perf_counter() - self._start

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        raise JobTerminatedError(
            f"job {self.job_id or '-'} received SIGTERM (cancelled, preempted or timed out) after "
            f"{self.elapsed():.0f} s of training"
        )

    def _install_sigterm(self) -> None:
        """Turn SIGTERM into an exception so the row says ``failed`` instead of staying ``training``."""
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
            self._sigterm_installed = True

    def _restore_sigterm(self) -> None:
        if self._sigterm_installed:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._sigterm_installed = False

    def __enter__(self) -> TrainingJob:
        self._start = time.perf_counter()
        self._install_sigterm()
        values: dict[str, Any] = {
            "status": "training",
            "node": socket.gethostname(),
            "training_start": datetime.now(timezone.utc),
            "error": None,
        }
        if self.job_id:
            values["job_id"] = self.job_id
        if self.pipeline_id:
            values["pipeline_id"] = self.pipeline_id
        try:
            self._write(values)
            self.status = "training"
            log.info("training %s/%s (job %s)", self.experiment, self.model_id, self.job_id or "-")
            if self.use_mlflow:
                self._mlflow = _MlflowLogger(self.experiment, self.model_id, self.output_dir)
                self.log_params(
                    {
                        "model_id": self.model_id,
                        "experiment": self.experiment,
                        "job_id": self.job_id or "",
                        "pipeline_id": self.pipeline_id or "",
                    }
                )
        except BaseException:
            self._restore_sigterm()
            if self._close_store:
                self.store.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._restore_sigterm()
        self.training_time = self.elapsed()
        failed = exc is not None and not (isinstance(exc, SystemExit) and exc.code in (0, None))
        try:
            if not failed:
                values: dict[str, Any] = {
                    **self.metrics,
                    "training_time": self.training_time,
                    "training_end": datetime.now(timezone.utc),
                    "status": "complete",
                }
                values.update(
                    self.continuation.completion_values(
                        self.store.get(self.experiment, self.model_id), self.metric_key, self.metrics
                    )
                )
                if self.metric_key not in self.metrics:
                    log.warning(
                        "model %s finished without reporting %r: the search will read no score for it",
                        self.model_id,
                        self.metric_key,
                    )
                self._write(values)
                self.status = "complete"
                if self._mlflow is not None:
                    self._mlflow.metrics({"training_time": self.training_time})
                    self._mlflow.end("FINISHED")
                log.info("model %s complete in %.1f s: %s", self.model_id, self.training_time, self.metrics)
            else:
                assert exc is not None
                text = error_text(exc)
                try:
                    self._write(
                        {
                            "status": "failed",
                            "error": text,
                            "training_time": self.training_time,
                            "training_end": datetime.now(timezone.utc),
                        }
                    )
                except Exception as write_exc:  # the original error matters more: log and let it propagate
                    log.error("could not record the failure of %s: %s", self.model_id, error_text(write_exc))
                self.status = "failed"
                if self._mlflow is not None:
                    self._mlflow.end("FAILED")
                log.error("model %s failed after %.1f s: %s", self.model_id, self.training_time, text)
        finally:
            if self._close_store:
                self.store.close()
