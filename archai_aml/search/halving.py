"""Successive halving that works with archai-aml's evaluators, and continues training.

:class:`ContinuingSuccessiveHalving` is a fixed subclass of Archai 1.0.0's ``SuccessiveHalvingSearch``:

- budgets are given as one list per model (Archai's ``SearchObjectives`` expects that; the shipped search
  passes a float and crashes with ``TypeError: 'float' object is not iterable``), and only to the
  *budgeted* objectives (those whose evaluator has ``budget_aware = True``, such as
  :class:`~archai_aml.evaluators.AmlPartialTrainingEvaluator`, or the names given): a latency does not
  depend on the training budget, so the objectives' cache (keyed by budget) measures it once per model;
- it keeps ``ceil(n / budget_multiplier)`` models per round, never fewer than one (the shipped search keeps
  whole non-dominated fronts and keeps ``int(1/2) = 0`` fronts when every model is on one, then fails on
  ``selected_models[0]``): models are taken front by front, best front first, and within the front that
  does not fit whole, most isolated first (:func:`crowding_order`: its ends, the fastest and the most
  accurate model, always go on);
- the training evaluator continues each promoted model from its stored checkpoint for the missing epochs
  (:mod:`archai_aml.training.checkpoint`);
- after the last round the front's predicted latencies are measured (:func:`~archai_aml.search.measure_front`)
  and :attr:`rank_agreements` holds Kendall's tau / Spearman's rho of the budgeted metric between
  consecutive budgets (:func:`~archai_aml.pareto.rank.rank_agreement`), logged with a warning below
  ``min_rank_tau`` naming the budget that would help.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from archai.discrete_search.algos.successive_halving import SuccessiveHalvingSearch
from archai.discrete_search.api.search_results import SearchResults
from archai.discrete_search.utils.multi_objective import get_non_dominated_sorting
from overrides import overrides

from archai_aml.pareto.rank import RankAgreement, rank_agreement
from archai_aml.search.front import find_predicted_latency, label_sources, measure_front, unwrap

__all__ = ["ContinuingSuccessiveHalving", "crowding_order"]

log = logging.getLogger(__name__)


def crowding_order(values: dict[str, Any], objectives: Any) -> list[int]:
    """Indices of one non-dominated front, most isolated first (NSGA-II's crowding distance: the two ends
    of every objective first, then the models with the widest gap around them).

    When a front holds more models than a round keeps, taking them in this order keeps its extremes (the
    fastest and the most accurate model) and its spread; taking the first ones Archai lists drops
    whichever happen to come last, often an end of the front."""
    names = [n for n in values if n in objectives.objectives]
    size = len(next(iter(values.values()))) if values else 0
    distance = np.zeros(size)
    for name in names:
        column = np.asarray(values[name], dtype=np.float64)
        order = np.argsort(column, kind="stable")
        span = float(column[order[-1]] - column[order[0]])
        distance[order[0]] = distance[order[-1]] = np.inf
        if span <= 0 or size < 3:
            continue
        distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / span
    return sorted(range(size), key=lambda i: -distance[i])


class ContinuingSuccessiveHalving(SuccessiveHalvingSearch):
    """Archai's successive halving, fixed (module docstring). Takes Archai's arguments plus:

    Args:
        budget_objectives: the objectives that receive the budget (default: those whose evaluator, or the
            evaluator it wraps as ``inner``, has ``budget_aware = True``).
        min_rank_tau: warn when the tau between consecutive budgets is below this.
        measure_front_latency: measure the front's predicted latencies before returning.
    """

    def __init__(
        self,
        *args: Any,
        budget_objectives: Sequence[str] | None = None,
        min_rank_tau: float = 0.6,
        measure_front_latency: bool = True,
        **kwargs: Any,
    ) -> None:
        output_dir = kwargs.get("output_dir", args[3] if len(args) > 3 else None)
        if output_dir is not None:  # Archai makes only the last level of it
            Path(output_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(*args, **kwargs)
        if budget_objectives is None:
            budget_objectives = [
                name
                for name, obj in self.objectives.objectives.items()
                if getattr(unwrap(obj.evaluator), "budget_aware", False)
            ]
        unknown = set(budget_objectives) - set(self.objectives.objectives)
        if unknown:
            raise ValueError(f"budget_objectives {sorted(unknown)} are not objectives of this search")
        self.budget_objectives = list(budget_objectives)
        self.min_rank_tau = float(min_rank_tau)
        self.measure_front_latency = measure_front_latency
        #: budget -> archid -> value of the first budgeted objective
        self.by_budget: dict[float, dict[str, float]] = {}
        self.rank_agreements: list[tuple[float, float, RankAgreement]] = []

    def _keep(self, models: list[Any], results: dict[str, Any]) -> list[Any]:
        count = max(1, math.ceil(len(models) / float(self.budget_multiplier or 2.0)))
        kept: list[Any] = []
        for front in get_non_dominated_sorting(models, results, self.objectives):
            room = count - len(kept)
            order = crowding_order(front["evaluation_results"], self.objectives)
            kept.extend(front["models"][i] for i in order[:room])
            if len(kept) >= count:
                break
        return kept

    @overrides
    def search(self) -> SearchResults:
        budget = float(self.init_budget or 1.0)
        selected = [self.search_space.random_sample() for _ in range(int(self.init_num_models or 1))]
        for i in range(int(self.num_iters or 1)):
            self.on_start_iteration(i + 1)
            log.info("round %d: %d model(s) at budget %g", i + 1, len(selected), budget)
            budgets = {name: [budget] * len(selected) for name in self.budget_objectives}
            results = self.objectives.eval_all_objs(selected, budgets=budgets)
            self.search_state.add_iteration_results(
                selected, results, extra_model_data={"budget": [budget] * len(selected)}
            )
            if self.budget_objectives:
                values = results[self.budget_objectives[0]]
                self.by_budget[budget] = {
                    str(m.archid): float(v) for m, v in zip(selected, values, strict=True) if math.isfinite(v)
                }
            self.search_state.save_search_state(str(self.output_dir / f"search_state_{self.iter_num}.csv"))
            self.iter_num += 1
            if len(selected) <= 1:
                break
            selected = self._keep(selected, results)
            budget *= float(self.budget_multiplier or 2.0)
        self._rank_budgets()
        if self.measure_front_latency:
            measure_front(self.search_state)
        else:
            found = find_predicted_latency(self.search_state)
            if found is not None:
                label_sources(self.search_state, found[1])
        return self.search_state

    def _rank_budgets(self) -> None:
        budgets = sorted(self.by_budget)
        metric = self.budget_objectives[0] if self.budget_objectives else "metric"
        for low, high in zip(budgets, budgets[1:], strict=False):
            agreement = rank_agreement(
                self.by_budget[low],
                self.by_budget[high],
                partial_name=f"{metric}@{low:g}",
                full_name=f"{metric}@{high:g}",
            )
            self.rank_agreements.append((low, high, agreement))
            log.info("successive halving: %s", agreement.summary())
            warning = agreement.warning(self.min_rank_tau, helps=f"starting at budget {high:g} (init_budget)")
            if warning:
                log.warning(warning)
