"""The search's Pareto front is never decided on predicted latency alone.

:func:`measure_front` measures, on the fleet, every front model whose latency was predicted (a
:class:`~archai_aml.predict.PredictedLatencyEvaluator`), writes the measurements into the search results
(and the objectives' cache), and repeats until the front holds measured models only (a measurement may move
a model off the front and let another one on). It also adds a ``latency_source`` column to the results.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from archai.discrete_search.api.search_results import SearchResults

from archai_aml.predict.columns import LATENCY_SOURCE, MEASURED, PREDICTED
from archai_aml.predict.evaluator import PredictedLatencyEvaluator

__all__ = ["find_predicted_latency", "label_sources", "measure_front", "unwrap"]

log = logging.getLogger(__name__)


def unwrap(evaluator: Any) -> Any:
    """The evaluator inside wrappers that keep it as ``inner`` (e.g. the example's ``WorstIfMissing``)."""
    seen = 0
    while hasattr(evaluator, "inner") and seen < 10:
        evaluator = evaluator.inner
        seen += 1
    return evaluator


def find_predicted_latency(results: SearchResults) -> tuple[str, PredictedLatencyEvaluator] | None:
    """The objective (name, evaluator) of ``results`` whose latency may be predicted, if any."""
    for name, objective in results.objectives.objectives.items():
        inner = unwrap(objective.evaluator)
        if isinstance(inner, PredictedLatencyEvaluator):
            return name, inner
    return None


def label_sources(results: SearchResults, evaluator: PredictedLatencyEvaluator) -> None:
    """Add ``latency_source`` (predicted / measured) to every iteration's results."""
    for it in results.results:
        it[LATENCY_SOURCE] = [evaluator.sources.get(str(a), MEASURED) for a in it["archid"]]


def measure_front(
    results: SearchResults, objective: str | None = None, evaluator: PredictedLatencyEvaluator | None = None
) -> list[str]:
    """Measure the front's predicted latencies (module docstring); returns the archids measured."""
    if evaluator is None or objective is None:
        found = find_predicted_latency(results)
        if found is None:
            return []
        objective, evaluator = found
    measured_ids: list[str] = []
    for _ in range(sum(len(it["archid"]) for it in results.results) + 1):
        front = results.get_pareto_frontier()
        todo = [m for m in front["models"] if evaluator.sources.get(str(m.archid)) == PREDICTED]
        if not todo:
            break
        log.info("measuring %d front model(s) whose latency was predicted", len(todo))
        values = evaluator.measure(todo)
        measured_ids += list(values)
        cache = getattr(results.objectives, "_cache", {})
        for it in results.results:
            for i, archid in enumerate(it["archid"]):
                if str(archid) in values:
                    v = values[str(archid)]
                    it[objective][i] = math.nan if v is None else float(v)
        for key in list(cache):
            if key[0] == objective and str(key[1]) in values:
                v = values[str(key[1])]
                cache[key] = None if v is None else float(v)
    label_sources(results, evaluator)
    return measured_ids
