"""Full training of a search's Pareto models in ONE training pipeline (``train_pareto.py``).

The models are trained by the search's own training command (``training.command``, or ``command``) for
``epochs`` epochs in a separate partition of the status table, ``<experiment>-final`` by default, through
:class:`~archai_aml.evaluators.AmlPartialTrainingEvaluator` (so the pipeline is started with
:func:`~archai_aml.pipelines.training.start_training_pipeline`, run by the ``LocalJobRunner`` or, with an
``aml:`` section, the ``AzureMLJobRunner``, waited for by the completion monitor, and cancelled on Ctrl-C).
The search's own rows are never put back to ``preparing``/``training``: a search resumed later still reuses
them. When a model's full training is complete its metric is copied to the search's row of that model as
``final_val_iou``, with ``final_epochs`` (and ``final_experiment``, ``final_training_time``).

Resumable: a model whose search row already has ``final_val_iou`` for at least ``epochs`` epochs is skipped;
one whose full-training row is complete for those epochs (a run interrupted after training) is copied without
training again; the others are trained.

The fully trained weights and ONNX (``model.pt``, ``model.onnx``, ``arch.json``, ``metrics.json``) are the
job outputs ``azureml://datastores/<models>/paths/<experiment>-final/<model_id>``: on Azure ML the store's
own blob container; with the local runner they are uploaded to the store from the runner's folder for that
path, so ``snp_test.py`` and ``export.py`` find them in the store either way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archai.discrete_search.api.archai_model import ArchaiModel

from archai_aml.config import ArchaiAmlConfig, DatastoresConfig
from archai_aml.errors import ConfigError, TrainingFailedError
from archai_aml.evaluators.aml_training import AmlPartialTrainingEvaluator
from archai_aml.pareto.front import ParetoModel
from archai_aml.pareto.rank import RankAgreement, rank_agreement
from archai_aml.pipelines.base import JobRunner
from archai_aml.store.base import Entity, Store
from archai_aml.store.rules import as_float

__all__ = ["ARTIFACTS", "FINAL_METRIC", "FullTrainingResult", "final_experiment_of", "train_pareto"]

log = logging.getLogger(__name__)

FINAL_METRIC = "final_val_iou"
#: The job outputs of a training that are kept in the store, per model.
ARTIFACTS = ("model.pt", "model.onnx", "arch.json", "metrics.json")


@dataclass
class FullTrainingResult:
    """What :func:`train_pareto` did: model ids trained now, copied from an earlier run, already done, failed."""

    final_experiment: str
    trained: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pipelines: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    #: Kendall's tau / Spearman's rho of the partial against the full metric over the front's models.
    rank: RankAgreement | None = None
    #: the warning given when tau was below ``search.min_rank_tau`` (None otherwise).
    rank_warning: str | None = None


def final_experiment_of(experiment: str) -> str:
    return f"{experiment}-final"


def _done(row: Entity | None, epochs: float, column: str) -> bool:
    return (
        row is not None
        and as_float(row.get(column)) is not None
        and (as_float(row.get("final_epochs")) or 0.0) >= epochs
    )


def _trained(row: Entity | None, epochs: float, metric_key: str) -> bool:
    return (
        row is not None
        and row.get("status") == "complete"
        and as_float(row.get(metric_key)) is not None
        and (as_float(row.get("epochs")) or 0.0) >= epochs
    )


def publish_outputs(
    store: Store, job_runner: JobRunner, config: ArchaiAmlConfig, experiment: str, model_id: str
) -> list[str]:
    """Upload a local job's outputs (``ARTIFACTS``) to ``<experiment>/<model_id>/`` of the store.

    Azure ML writes them there itself (the models datastore is the store's container); a runner with
    ``local_path`` (the local one) keeps them in its folder for that datastore path. Blobs already in the
    store are left as they are. Returns the names uploaded.
    """
    local_path = getattr(job_runner, "local_path", None)
    if local_path is None:
        return []
    datastores = config.aml.datastores if config.aml is not None else DatastoresConfig()
    folder = Path(local_path(f"azureml://datastores/{datastores.models}/paths/{experiment}/{model_id}"))
    present = set(store.list_blobs(experiment, model_id))
    uploaded = []
    for name in ARTIFACTS:
        if name not in present and (folder / name).is_file():
            store.upload(experiment, model_id, folder / name, blob_name=name)
            uploaded.append(name)
    return uploaded


def train_pareto(
    models: Sequence[ParetoModel],
    config: ArchaiAmlConfig,
    store: Store,
    *,
    epochs: float,
    output: str | Path,
    job_runner: JobRunner | None = None,
    final_experiment: str | None = None,
    command: str | None = None,
    timeout_seconds: float | None = None,
    column: str = FINAL_METRIC,
    progress: bool = True,
) -> FullTrainingResult:
    """Fully train ``models`` (see the module docstring); returns what was done.

    Args:
        models: the front (:func:`archai_aml.pareto.front.load_front`); each needs its ``arch_config``.
        config: the search's configuration (its ``experiment_name`` names the rows written to).
        epochs: epochs of full training.
        output: folder for the pipeline's ``pending.json`` / ``models.json``.
        job_runner: default: Azure ML with an ``aml:`` section, else a ``LocalJobRunner``.
        final_experiment: partition of the full-training rows (default ``<experiment>-final``).
        command: training command instead of ``training.command`` (same placeholders).
        timeout_seconds: how long to wait for the pipeline (default ``training.timeout_seconds``).
        column: the column of the search rows that receives the metric.
    """
    experiment = config.experiment_name
    final = final_experiment or final_experiment_of(experiment)
    cfg = config.model_copy(deep=True)
    cfg.experiment_name = final
    if command is not None:
        cfg.training.command = command
    metric_key = cfg.training.metric_key
    result = FullTrainingResult(final)
    todo: list[ParetoModel] = []
    for m in models:
        if _done(store.get(experiment, m.model_id), epochs, column):
            result.skipped.append(m.model_id)
        else:
            todo.append(m)
    if result.skipped:
        log.info("%d model(s) already fully trained for %g epochs: skipped", len(result.skipped), epochs)
    if not todo:
        _rank(result, models, config, store, column)
        return result
    missing = [m.archid for m in todo if m.arch_config is None]
    if missing:
        raise ConfigError(f"no ArchConfig for {missing}: give the search's output folder or its store")
    evaluator = AmlPartialTrainingEvaluator(
        cfg,
        output,
        tr_epochs=epochs,
        timeout_seconds=timeout_seconds or cfg.training.timeout_seconds,
        job_runner=job_runner,
        store=store,
        progress=progress,
    )
    reused: set[str] = set()
    for m in todo:
        if _trained(store.get(final, m.model_id), epochs, metric_key):
            reused.add(m.model_id)
        evaluator.send(ArchaiModel(arch=None, archid=m.archid, metadata=m.metadata), None)
    try:
        evaluator.fetch_all()
    except TrainingFailedError as exc:  # too many failed: record the ones that did complete
        log.error("full training: %s", exc)
    result.pipelines = list(evaluator.pipelines)
    for m in todo:
        row = store.get(final, m.model_id)
        if not _trained(row, epochs, metric_key):
            error = (row or {}).get("error") or f"status {(row or {}).get('status')!r}"
            result.failed[m.model_id] = str(error)
            log.error("full training of %s did not complete: %s", m.model_id, error)
            continue
        assert row is not None
        publish_outputs(store, evaluator.job_runner, cfg, final, m.model_id)
        value = as_float(row.get(metric_key))
        assert value is not None
        values: dict[str, Any] = {
            column: value,
            "final_epochs": as_float(row.get("epochs")),
            "final_experiment": final,
            "final_training_time": as_float(row.get("training_time")),
        }
        store.merge(experiment, m.model_id, values)
        result.metrics[m.model_id] = value
        (result.copied if m.model_id in reused else result.trained).append(m.model_id)
    _rank(result, models, config, store, column)
    return result


def _rank(
    result: FullTrainingResult,
    models: Sequence[ParetoModel],
    config: ArchaiAmlConfig,
    store: Store,
    column: str,
) -> None:
    """Does partial training rank the front's models as full training does? (logged; a warning below
    ``search.min_rank_tau`` names the budget that would help)."""
    metric_key = config.training.metric_key
    rows = {m.model_id: store.get(config.experiment_name, m.model_id) or {} for m in models}
    partial = {k: r.get(metric_key) for k, r in rows.items()}
    full = {k: r.get(column) for k, r in rows.items()}
    result.rank = rank_agreement(partial, full, partial_name=metric_key, full_name=column)
    log.info("full training: %s", result.rank.summary())
    result.rank_warning = result.rank.warning(
        config.search.min_rank_tau, partial_epochs=config.training.epochs
    )
    if result.rank_warning:
        log.warning(result.rank_warning)
