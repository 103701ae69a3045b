"""``AmlPartialTrainingEvaluator``: an Archai ``AsyncModelEvaluator`` that partially trains models in batches.

``send`` collects models (reusing every row that already holds the metric for at least the requested
epochs); ``fetch_all`` trains the rest in ONE pipeline through a :class:`~archai_aml.pipelines.base.JobRunner`
(the :class:`~archai_aml.pipelines.local.LocalJobRunner` by default, the Azure ML one when ``config.aml`` is
set), waits with the :class:`~archai_aml.pipelines.monitor.CompletionMonitor`, and returns the metrics in
send order (``None`` for a model that did not complete). Ctrl-C (and a timeout) cancels the pipeline and
marks the batch's unfinished rows ``canceled`` before the exception goes on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from archai.discrete_search.api.archai_model import ArchaiModel
from archai.discrete_search.api.model_evaluator import AsyncModelEvaluator
from overrides import overrides

from archai_aml.config import ArchaiAmlConfig, StoreConfig
from archai_aml.errors import ConcurrencyError, EvaluationTimeoutError, TrainingFailedError
from archai_aml.pipelines.base import JobRunner
from archai_aml.pipelines.monitor import DONE_STATUSES, BatchResult, CompletionMonitor
from archai_aml.pipelines.registry import get_job_runner
from archai_aml.pipelines.training import model_id_for, start_training_pipeline, store_config_of
from archai_aml.store import Store, open_store
from archai_aml.store.base import Entity
from archai_aml.store.rules import as_float
from archai_aml.training.checkpoint import Resume, resume_point

__all__ = ["AmlPartialTrainingEvaluator"]

log = logging.getLogger(__name__)


class AmlPartialTrainingEvaluator(AsyncModelEvaluator):
    """Partial training of a search's models as one pipeline per ``fetch_all``.

    Args:
        config: the archai-aml configuration (``training``, ``store``, ``aml``, ``experiment_name``).
        local_output: folder for ``pending.json`` and ``models.json``.
        tr_epochs: epochs of partial training (a ``budget`` given to ``send`` multiplies it).
        timeout_seconds: how long ``fetch_all`` may wait for one batch.
        job_runner: where jobs run; default: the one ``config.job_runner`` names through the registry
            (``AzureMLJobRunner`` when ``config.aml`` is set, else a ``LocalJobRunner`` whose subprocesses
            can open the store).
        store: the status store; default: ``open_store(config.store)``.
        store_config: how jobs reach ``store`` (default: the store's own ``config``, else ``config.store``).
        search_space: used to serialize models without ``metadata['config']`` (its ``save_arch``).
        progress: show a tqdm progress bar while waiting.
        continue_training: a model whose row holds a checkpoint of fewer epochs than asked (a successive-
            halving promotion, a crash between budgets) trains the missing epochs only, from that
            checkpoint (:mod:`archai_aml.training.checkpoint`; the training script must save checkpoints).
    """

    #: ``send``'s budget changes what this evaluator returns (successive halving passes budgets to it only).
    budget_aware = True

    def __init__(
        self,
        config: ArchaiAmlConfig,
        local_output: str | Path,
        tr_epochs: float = 1,
        timeout_seconds: float = 3600,
        job_runner: JobRunner | None = None,
        store: Store | None = None,
        *,
        store_config: StoreConfig | None = None,
        search_space: Any = None,
        progress: bool = True,
        continue_training: bool = True,
    ) -> None:
        self.config = config
        self.continue_training = continue_training
        self.local_output = Path(local_output)
        self.tr_epochs = float(tr_epochs)
        self.timeout_seconds = float(timeout_seconds)
        self.store = store if store is not None else open_store(config.store)
        self.store_config = store_config or store_config_of(store, config)
        self.search_space = search_space
        self.progress = progress
        self.metric_key = config.training.metric_key
        self.experiment = config.experiment_name
        if job_runner is None:  # the one ``job_runner:`` names (azureml with an ``aml:`` section, else local)
            job_runner = get_job_runner(config, self.store_config)
        self.job_runner: JobRunner = job_runner
        self.models: list[ArchaiModel] = []
        self.epochs: list[float] = []
        self.reused: dict[str, Entity] = {}
        #: Pipeline ids submitted by this evaluator, oldest first.
        self.pipelines: list[str] = []
        self.last_result: BatchResult | None = None

    def metric_from_row(self, row: Entity) -> float | None:
        """The value this evaluator returns for a complete row: its ``metric_key`` column as a float.

        The hook to override to return something else (another column, a combination of columns); None
        means "no result" (the search sees None for the model)."""
        return as_float(row.get(self.metric_key))

    def _reusable(self, row: Entity | None, epochs: float) -> bool:
        if row is None or row.get("status") != "complete":
            return False
        return self.metric_from_row(row) is not None and (as_float(row.get("epochs")) or 0.0) >= epochs

    @overrides
    def send(self, arch: ArchaiModel, budget: float | None = None) -> None:
        epochs = self.tr_epochs * budget if budget is not None else self.tr_epochs
        model_id = model_id_for(arch)
        self.models.append(arch)
        self.epochs.append(epochs)
        if model_id not in self.reused:
            row = self.store.get(self.experiment, model_id)
            if self._reusable(row, epochs):
                assert row is not None
                self.reused[model_id] = row

    def _mark_canceled(self, model_ids: list[str], batch_id: str, reason: str) -> None:
        """Mark the batch's unfinished rows ``canceled`` (CAS on what one query read; rows that a newer batch
        took over are left alone)."""
        rows = {r["name"]: r for r in self.store.query(self.experiment, where={"batch": batch_id})}
        for model_id in model_ids:
            row: Entity | None = rows.get(model_id)
            for _ in range(3):
                if row is None or row.get("batch") != batch_id or row.get("status") in DONE_STATUSES:
                    break
                try:
                    self.store.merge(
                        self.experiment,
                        model_id,
                        {"status": "canceled", "error": reason},
                        expected_version=row["_version"],
                    )
                    break
                except ConcurrencyError:
                    row = self.store.get(self.experiment, model_id)

    def _train(
        self, pending: list[ArchaiModel], epochs: float, resume: dict[str, Resume] | None = None
    ) -> dict[str, Entity]:
        description = f"AmlPartialTrainingEvaluator: {len(pending)} models, {epochs:g} epochs"
        if resume:
            description += f" ({len(resume)} continued from checkpoints)"
        pipeline_job, model_ids = start_training_pipeline(
            description,
            self.job_runner,
            self.store,
            pending,
            self.config,
            epochs,
            self.local_output,
            store_config=self.store_config,
            search_space=self.search_space,
            resume=resume,
        )
        pipeline_id = str(pipeline_job.name)
        batch_id = pipeline_id
        self.pipelines.append(pipeline_id)
        training = self.config.training
        monitor = CompletionMonitor(
            self.store,
            self.job_runner,
            self.experiment,
            timeout_seconds=self.timeout_seconds,
            max_failure_rate=training.max_failure_rate,
            poll_interval_min_s=training.poll_interval_min_s,
            poll_interval_max_s=training.poll_interval_max_s,
            metric_key=self.metric_key,
            progress=self.progress,
        )
        try:
            result = monitor.wait(model_ids, batch_id, pipeline_id)
        except KeyboardInterrupt:
            log.warning("interrupted: canceling pipeline %s", pipeline_id)
            self._cancel(pipeline_id, model_ids, batch_id, "canceled by the user (KeyboardInterrupt)")
            raise
        except EvaluationTimeoutError:
            self._cancel(pipeline_id, model_ids, batch_id, f"timed out after {self.timeout_seconds:g} s")
            raise
        except TrainingFailedError as exc:
            self.last_result = exc.result
            raise
        self.last_result = result
        return result.rows

    def _cancel(self, pipeline_id: str, model_ids: list[str], batch_id: str, reason: str) -> None:
        # Rows first: a job that receives SIGTERM reports itself failed unless its row already says canceled.
        try:
            self._mark_canceled(model_ids, batch_id, reason)
        finally:
            self.job_runner.cancel(pipeline_id)

    @overrides
    def fetch_all(self) -> list[float | None]:
        models, epochs_list = self.models, self.epochs
        reused = dict(self.reused)
        self.models, self.epochs, self.reused = [], [], {}
        ids = [model_id_for(m) for m in models]
        pending: dict[str, ArchaiModel] = {}
        for model_id, arch in zip(ids, models, strict=True):
            if model_id not in reused and model_id not in pending:
                pending[model_id] = arch
        if reused:
            log.info("AmlPartialTrainingEvaluator: %d models already trained, reused", len(reused))
        rows: dict[str, Entity] = dict(reused)
        if pending:
            wanted = {e for i, e in zip(ids, epochs_list, strict=True) if i in pending}
            if len(wanted) > 1:
                raise ValueError(
                    f"one fetch_all trains every model for the same epochs; got budgets giving {sorted(wanted)}"
                )
            total = wanted.pop()
            resume: dict[str, Resume] = {}
            if self.continue_training:
                for model_id in pending:
                    point = resume_point(
                        self.store.get(self.experiment, model_id), total, self.store, self.experiment
                    )
                    if point is not None:
                        resume[model_id] = point
            if resume:
                log.info(
                    "AmlPartialTrainingEvaluator: %d models continue from their checkpoints", len(resume)
                )
            trained = self._train(list(pending.values()), total, resume)
            rows.update(trained)
        out: list[float | None] = []
        summary = []
        for model_id, arch in zip(ids, models, strict=True):
            row = rows.get(model_id) or {}
            metric = self.metric_from_row(row) if row.get("status") == "complete" else None
            out.append(metric)
            summary.append(
                {
                    "model_id": model_id,
                    "archid": str(arch.archid),
                    "metric": metric,
                    "status": row.get("status"),
                    "epochs": as_float(row.get("epochs")),
                    "error": row.get("error"),
                    "reused": model_id in reused,
                }
            )
        self.local_output.mkdir(parents=True, exist_ok=True)
        (self.local_output / "models.json").write_text(
            json.dumps({"metric_key": self.metric_key, "models": summary}, indent=2), encoding="utf-8"
        )
        return out
