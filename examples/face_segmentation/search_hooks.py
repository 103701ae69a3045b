"""What the search example adds around Archai's search: an evaluator wrapper that ranks failed models last,
and an after-iteration hook (the summary line, the iteration's plots)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from archai.discrete_search.algos import EvolutionParetoSearch
from archai.discrete_search.api import ArchaiModel
from archai.discrete_search.api.model_evaluator import AsyncModelEvaluator
from overrides import overrides

from archai_aml.pipelines.training import model_id_for
from archai_aml.plots import from_records, numeric, plot_search
from archai_aml.store import Store

log = logging.getLogger("search")


class WorstIfMissing(AsyncModelEvaluator):
    """Pass-through to an async evaluator; a model it could not evaluate (``None``) gets the worst value
    (``-inf`` when higher is better, else ``+inf``) so the search ranks it last instead of crashing.
    ``results.csv`` shows such values as empty cells: they were not measured."""

    def __init__(self, inner: AsyncModelEvaluator, name: str, higher_is_better: bool) -> None:
        self.inner = inner
        self.name = name
        self.worst = -math.inf if higher_is_better else math.inf
        self.archids: list[str] = []

    @overrides
    def send(self, arch: ArchaiModel, budget: float | None = None) -> None:
        self.archids.append(arch.archid)
        self.inner.send(arch, budget)

    @overrides
    def fetch_all(self) -> list[float | None]:
        archids, self.archids = self.archids, []
        values = self.inner.fetch_all()
        out: list[float | None] = []
        for archid, value in zip(archids, values, strict=True):
            if value is None:
                log.warning("%s: model %s has no result (see the store row); ranked last", self.name, archid)
                out.append(self.worst)
            else:
                out.append(float(value))
        return out


class LoggingEvolutionParetoSearch(EvolutionParetoSearch):
    """Archai's search, plus a hook after each iteration: ``after_iteration(iteration, search_state)``
    callbacks (the summary log line, the iteration's plots).

    Archai 1.0.0's ``EvolutionParetoSearch`` has callbacks before an iteration (``on_start_iteration``,
    ``on_search_iteration_start``) but none after one; an iteration ends when the next one starts (after
    Archai saved ``search_state_<i>.csv`` and ``pareto_models_iter_<i>/``) or when :meth:`search` returns.
    """

    def __init__(
        self, *args: Any, after_iteration: Sequence[Callable[[int, Any], None]] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.after_iteration = [self._log_iteration, *after_iteration]
        self._iter_started = time.monotonic()

    @overrides
    def on_search_iteration_start(self, current_pop: list[ArchaiModel]) -> None:
        super().on_search_iteration_start(current_pop)
        self._iter_started = time.monotonic()
        log.info("iteration %d/%d: evaluating %d models", self.iter_num, self.num_iters, len(current_pop))

    def _log_iteration(self, iteration: int, state: Any) -> None:
        results = state.results[-1]
        ious = [v for v in (numeric(x) for x in results["val_iou"]) if v is not None]
        lats = [v for v in (numeric(x) for x in results["latency_ms"]) if v is not None]
        front = state.get_pareto_frontier()["models"]
        log.info(
            "iteration %d/%d done in %.1f s: best val_iou %s, fastest %s ms, Pareto front %d models",
            iteration, self.num_iters, time.monotonic() - self._iter_started,
            f"{max(ious):.3f}" if ious else "-", f"{min(lats):.3f}" if lats else "-", len(front),
        )  # fmt: skip

    def _end_iteration(self, iteration: int) -> None:
        for callback in self.after_iteration:
            callback(iteration, self.search_state)

    @overrides
    def on_start_iteration(self, iteration_num: int) -> None:
        if iteration_num > 1:
            self._end_iteration(iteration_num - 1)
        super().on_start_iteration(iteration_num)

    @overrides
    def search(self) -> Any:
        state = super().search()
        self._end_iteration(self.iter_num)
        return state


class IterationPlots:
    """After each iteration: record the iteration in the models' training rows (so ``archai-aml plot``
    can draw the search from the store), then draw ``plots/iteration_<i>.png``, ``plots/search.gif`` and
    ``plots/pareto.gif`` from the search state. A failed drawing is logged, the search goes on."""

    def __init__(self, folder: Path, store: Store, experiment: str, enabled: bool = True) -> None:
        self.folder = folder
        self.store = store
        self.experiment = experiment
        self.enabled = enabled

    def __call__(self, iteration: int, state: Any) -> None:
        records = state.get_search_state_df().to_dict("records")
        new = sorted({model_id_for(r["archid"]) for r in records if int(r["iteration_num"]) + 1 == iteration})
        for i in range(0, len(new), 15):  # the table service allows 15 comparisons per filter
            for row in self.store.query(self.experiment, names=new[i : i + 15]):
                if row.get("iteration") != iteration:  # only rows that exist: no stray row is created
                    self.store.merge(self.experiment, row["name"], {"iteration": iteration})
        if not self.enabled:
            return
        started = time.monotonic()
        try:
            data = from_records(records, zero_based=True, title=f"{self.experiment} search")
            written = plot_search(data, self.folder, iterations=[iteration])
        except Exception as exc:  # a plot must never end a search of many hours
            log.warning("iteration %d: plots not drawn: %s", iteration, exc, exc_info=True)
            return
        log.info(
            "iteration %d: %d plots in %s (%.1f s)", iteration, len(written), self.folder,
            time.monotonic() - started,
        )  # fmt: skip
