"""F1 of fully trained models on the target (``snp_test.py``): queue them for the runners, collect the scores.

Each fully trained model (its ``model.onnx`` in the full-training partition, see
:mod:`archai_aml.pareto.full_training`) is copied to a test partition of the status table
(``<experiment>-target`` by default) and queued there as a regular (not benchmark-only) row by
:class:`~archai_aml.evaluators.RemoteAzureBenchmarkEvaluator`, whose send/poll code waits for the runner
fleet to convert, quantize, benchmark and score it: ``f1_onnx`` (float model on onnxruntime), ``f1_1k``
(quantized, on the target), ``f1_1k_f`` (float/converted, on the target) and ``f1_10k`` (quantized, on
more images). The scores, with the latency ``mean`` and ``stdev`` of the same rows, are then written to the
search's row of each model as ``f1_onnx``, ``f1_1k``, ``f1_1k_f``, ``f1_10k``, ``target_mean_ms``,
``target_stdev``.

Resumable: a search row that already holds the three on-target F1 columns is skipped; a test row that is
complete is collected without being queued again; one in progress is waited for; one in error is queued again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from archai.discrete_search.api.archai_model import ArchaiModel

from archai_aml.errors import ConfigError
from archai_aml.evaluators.remote_benchmark import RemoteAzureBenchmarkEvaluator
from archai_aml.status_row import TARGET_F1_COLUMNS
from archai_aml.store.base import Store
from archai_aml.store.rules import as_float

__all__ = ["TARGET_F1", "TargetScores", "target_experiment_of", "score_on_target"]

log = logging.getLogger(__name__)

#: The on-target F1 columns the issue asks for (``f1_onnx`` comes along).
TARGET_F1 = TARGET_F1_COLUMNS  # the status row's on-target F1 columns
COPIED = {"f1_onnx": "f1_onnx", "f1_1k": "f1_1k", "f1_1k_f": "f1_1k_f", "f1_10k": "f1_10k",
          "mean": "target_mean_ms", "stdev": "target_stdev"}  # fmt: skip


@dataclass
class TargetScores:
    test_experiment: str
    queued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)


def target_experiment_of(experiment: str) -> str:
    return f"{experiment}-target"


def _has_f1(row: dict[str, Any] | None) -> bool:
    return row is not None and all(as_float(row.get(c)) is not None for c in TARGET_F1)


def score_on_target(
    store: Store,
    experiment: str,
    model_ids: Sequence[str],
    input_shape: Sequence[int],
    *,
    final_experiment: str | None = None,
    test_experiment: str | None = None,
    retry_interval: float = 30.0,
    max_retries: int = 120,
    progress: bool = True,
) -> TargetScores:
    """Queue ``model_ids`` (fully trained, rows of ``experiment``) for the runners and collect their F1.

    ``final_experiment``: where their ``model.onnx`` is (default: the row's ``final_experiment`` column, else
    ``<experiment>-final``). ``test_experiment``: the partition the runners work on (default
    ``<experiment>-target``; start runners with ``archai-aml runner --experiment`` that name).
    ``retry_interval``/``max_retries``: the evaluator's polling (it gives up after ``max_retries`` polls
    without progress, naming the models and whether any runner is alive).
    """
    test_exp = test_experiment or target_experiment_of(experiment)
    result = TargetScores(test_exp)
    evaluator = RemoteAzureBenchmarkEvaluator(
        list(input_shape),
        store,
        test_exp,
        "f1_1k",
        overwrite=False,
        max_retries=max_retries,
        retry_interval=retry_interval,
        benchmark_only=False,
        progress=progress,
    )
    sent: list[str] = []
    for model_id in dict.fromkeys(model_ids):
        row = store.get(experiment, model_id)
        if _has_f1(row):
            result.skipped.append(model_id)
            continue
        final = str((row or {}).get("final_experiment") or f"{experiment}-final")
        source = final_experiment or final
        test_row = store.get(test_exp, model_id)
        if test_row is None or test_row.get("status") == "error" or test_row.get("error"):
            try:
                onnx = store.download_bytes(source, model_id, "model.onnx")
            except FileNotFoundError:
                raise ConfigError(
                    f"{source}/{model_id}/model.onnx is not in the store: train the model fully first "
                    "(train_pareto.py)"
                ) from None
            store.upload_bytes(test_exp, model_id, "model.onnx", onnx)
        # the evaluator names rows id_<archid>; our model ids already are
        evaluator.send(ArchaiModel(arch=None, archid=model_id.removeprefix("id_")), None)
        sent.append(model_id)
        result.queued.append(model_id)
    if not sent:
        return result
    log.info("waiting for the runners of %s: %d model(s)", test_exp, len(sent))
    evaluator.fetch_all()
    rows = [r for i in range(0, len(sent), 15) for r in store.query(test_exp, names=sent[i : i + 15])]
    for row in rows:
        name = str(row["name"])
        if row.get("status") != "complete" or row.get("error"):
            result.failed[name] = str(row.get("error") or row.get("status"))
            continue
        values = {dst: row.get(src) for src, dst in COPIED.items() if row.get(src) is not None}
        values["target_experiment"] = test_exp
        store.merge(experiment, name, values)
        result.scores[name] = {c: as_float(row.get(c)) for c in (*TARGET_F1, "f1_onnx")}
    return result
