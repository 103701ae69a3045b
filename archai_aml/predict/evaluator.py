"""``PredictedLatencyEvaluator``: predicted latency where the predictor is confident, the fleet elsewhere.

An Archai ``AsyncModelEvaluator`` composed around a
:class:`~archai_aml.evaluators.RemoteAzureBenchmarkEvaluator` (the *fleet*) and a
:class:`~archai_aml.predict.LatencyPredictor` of the fleet's target and device:

- ``send`` exports the model to ONNX (the fleet's export settings) and computes its graph features;
- ``fetch_all`` returns a measured latency for a model whose row is already measured; otherwise, while the
  predictor is trusted, ready (``min_rows``) and its 10 %-90 % band is within ``confidence`` of the median,
  the predicted latency at once. The others go to the fleet in rounds of ``round_size`` models; each round's
  measurements are added to the predictor and it is refitted before the rest are decided again.
- A ``spot_check_fraction`` of the confident models (default 10 %, drawn with ``seed``) is measured anyway;
  their error is compared with the prediction. When the mean absolute relative error of the last
  ``drift_window`` checks exceeds ``tolerance`` the evaluator stops trusting the predictor, logs a warning
  saying so, and sends every later model to the fleet (:attr:`trusted`, :attr:`drift_events`).
- Every model's row in the fleet's partition says where its latency came from: ``latency_source`` is
  ``predicted`` (with ``predicted_mean``/``predicted_low``/``predicted_high``/``predicted_by``, status
  ``complete`` so no runner picks it up, and no ``mean``: that column holds measurements only) or
  ``measured``; ``sources`` names the predictor for ``predicted_mean`` and the source for ``latency_source``.
- :meth:`measure` sends predicted models to the fleet (a search's Pareto front, before it is reported: see
  :func:`archai_aml.search.measure_front`).
"""

from __future__ import annotations

import json
import logging
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from archai.discrete_search.api.archai_model import ArchaiModel
from archai.discrete_search.api.model_evaluator import AsyncModelEvaluator
from overrides import overrides

from archai_aml.errors import ConcurrencyError
from archai_aml.evaluators.remote_benchmark import RemoteAzureBenchmarkEvaluator
from archai_aml.predict.columns import (
    LATENCY_SOURCE,
    MEASURED,
    PREDICTED,
    PREDICTED_BY,
    PREDICTED_HIGH,
    PREDICTED_LOW,
    PREDICTED_MEAN,
)
from archai_aml.predict.features import graph_features
from archai_aml.predict.predictor import LatencyPredictor, Prediction
from archai_aml.store.base import Entity, as_float

__all__ = ["PredictedLatencyEvaluator", "SpotCheck"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpotCheck:
    """A confident prediction that was measured anyway."""

    archid: str
    predicted: float
    measured: float

    @property
    def relative_error(self) -> float:
        return abs(self.predicted - self.measured) / self.measured


@dataclass
class _Pending:
    arch: ArchaiModel
    data: bytes | None
    features: dict[str, float] | None = None
    prediction: Prediction | None = None
    result: float | None = None
    source: str | None = None
    spot_check: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class PredictedLatencyEvaluator(AsyncModelEvaluator):
    """Predicted or measured latency per model (see the module docstring).

    Args:
        fleet: the fleet evaluator (its store, partition, target shapes and ``metric_key``).
        predictor: the predictor of the fleet's target and device (may start empty: it learns from the
            fleet's measurements).
        confidence: the largest relative half-width of the 10 %-90 % band a prediction may have to be used.
        spot_check_fraction: share of confident models measured anyway.
        tolerance: the mean absolute relative error of the spot checks above which trust is lost.
        drift_window: how many recent spot checks that mean is taken over.
        round_size: models sent to the fleet per round before the rest are decided again (None: all at once).
        seed: random seed of the spot-check draw.
    """

    def __init__(
        self,
        fleet: RemoteAzureBenchmarkEvaluator,
        predictor: LatencyPredictor,
        *,
        confidence: float = 0.10,
        spot_check_fraction: float = 0.10,
        tolerance: float = 0.10,
        drift_window: int = 5,
        round_size: int | None = None,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= spot_check_fraction <= 1.0:
            raise ValueError(f"spot_check_fraction {spot_check_fraction} must be within [0, 1]")
        if predictor.metric_key != fleet.metric_key:
            raise ValueError(
                f"the predictor learns {predictor.metric_key!r} but the fleet returns {fleet.metric_key!r}: "
                "build both on the same latency column"
            )
        self.fleet = fleet
        self.predictor = predictor
        self.confidence = float(confidence)
        self.spot_check_fraction = float(spot_check_fraction)
        self.tolerance = float(tolerance)
        self.drift_window = int(drift_window)
        self.round_size = round_size
        self.trusted = True
        self.spot_checks: list[SpotCheck] = []
        self.drift_events: list[str] = []
        #: archid -> "predicted" / "measured" for every model this evaluator returned a latency for.
        self.sources: dict[str, str] = {}
        #: archid -> the prediction made for it (also of models measured afterwards).
        self.predictions: dict[str, Prediction] = {}
        #: models sent to the fleet (device work items), in order.
        self.fleet_models: list[str] = []
        self._recent: deque[float] = deque(maxlen=self.drift_window)
        self._rng = random.Random(seed)
        self._queue: list[_Pending] = []

    # ------------------------------------------------------------------------------------------- helpers
    @property
    def store(self) -> Any:
        return self.fleet.store

    @property
    def experiment(self) -> str:
        return self.fleet.experiment_name

    @staticmethod
    def row_name(arch: ArchaiModel) -> str:
        return f"id_{arch.archid}"

    def _features(self, item: _Pending) -> dict[str, float] | None:
        if item.features is None and item.data is not None:
            try:
                item.features = graph_features(item.data)
            except Exception as exc:  # a graph the feature count cannot read goes to the fleet
                log.warning("no graph features for %s (%s): it goes to the fleet", item.arch.archid, exc)
        return item.features

    def _confident(self, item: _Pending) -> bool:
        if not (self.trusted and self.predictor.ready):
            return False
        features = self._features(item)
        if features is None:
            return False
        item.prediction = self.predictor.predict(features)
        return item.prediction.relative_uncertainty <= self.confidence

    def _measured_row(self, arch: ArchaiModel) -> Entity | None:
        row = self.store.get(self.experiment, self.row_name(arch))
        if row is None or row.get("status") != "complete" or row.get("error"):
            return None
        return row if self.fleet.metric_from_row(row) is not None else None

    # ----------------------------------------------------------------------------------------------- API
    @overrides
    def send(self, arch: ArchaiModel, budget: float | None = None) -> None:
        data = None
        if arch.arch is not None:
            try:
                data = self.fleet._export(arch)
            except Exception as exc:  # the fleet records the export error in the row
                log.warning("ONNX export of %s failed (%s): it goes to the fleet", arch.archid, exc)
        self._queue.append(_Pending(arch, data))

    @overrides
    def fetch_all(self) -> list[float | None]:
        queue, self._queue = self._queue, []
        undecided: list[_Pending] = []
        for item in queue:
            row = self._measured_row(item.arch)
            if row is not None:  # measured earlier: no device work, and a row for the predictor
                item.result, item.source = self.fleet.metric_from_row(row), MEASURED
                self._learn(item, row)
            else:
                undecided.append(item)
        while undecided:
            to_fleet: list[_Pending] = []
            for item in undecided:
                if self._confident(item):
                    assert item.prediction is not None
                    if self._rng.random() < self.spot_check_fraction:
                        item.spot_check = True
                        to_fleet.append(item)
                    else:
                        self._record_prediction(item)
                else:
                    to_fleet.append(item)
            if not to_fleet:
                break
            batch = to_fleet if self.round_size is None else to_fleet[: self.round_size]
            self._measure(batch)
            undecided = [i for i in to_fleet if i.source is None]
        for item in queue:
            assert item.source is not None or item.result is None
            self.sources[str(item.arch.archid)] = item.source or MEASURED
        return [item.result for item in queue]

    def measure(self, models: Sequence[ArchaiModel]) -> dict[str, float | None]:
        """Measure ``models`` on the fleet unless already measured (a front before it is reported); returns
        archid -> measured latency."""
        out: dict[str, float | None] = {}
        todo: list[_Pending] = []
        for arch in models:
            row = self._measured_row(arch)
            if row is not None and row.get(LATENCY_SOURCE) != PREDICTED:
                out[str(arch.archid)] = self.fleet.metric_from_row(row)
                self.sources[str(arch.archid)] = MEASURED
            else:
                data = self.fleet._export(arch) if arch.arch is not None else None
                todo.append(_Pending(arch, data))
        if todo:
            self._measure(todo, check=True)
            for item in todo:
                out[str(item.arch.archid)] = item.result
                self.sources[str(item.arch.archid)] = MEASURED
        return out

    # --------------------------------------------------------------------------------------------- fleet
    def _measure(self, items: list[_Pending], *, check: bool | None = None) -> None:
        for item in items:
            self.fleet.send(item.arch)
            self.fleet_models.append(str(item.arch.archid))
        values = self.fleet.fetch_all()
        for item, value in zip(items, values, strict=True):
            item.result, item.source = value, MEASURED
            row = self.store.get(self.experiment, self.row_name(item.arch))
            if value is not None and row is not None:
                self._learn(item, row)
                self._label(item, row)
            prediction = item.prediction or self.predictions.get(str(item.arch.archid))
            if value is not None and prediction is not None and (item.spot_check or check):
                self._check(SpotCheck(str(item.arch.archid), prediction.median, float(value)))
        if self.predictor.ready:
            self.predictor.fit()

    def _learn(self, item: _Pending, row: Entity) -> None:
        if not self.predictor.measured_here(row):
            return
        features = self._features(item)
        if features is None:
            try:
                data = self.store.download_bytes(self.experiment, str(row["name"]), "model.onnx")
                features = item.features = graph_features(data)
            except Exception as exc:
                log.debug("no features for %s: %s", row.get("name"), exc)
                return
        self.predictor.add_row(row, features)

    def _check(self, check: SpotCheck) -> None:
        self.spot_checks.append(check)
        self._recent.append(check.relative_error)
        error = sum(self._recent) / len(self._recent)
        log.info(
            "spot check %s: predicted %.3f ms, measured %.3f ms (%+.1f %%)",
            check.archid, check.predicted, check.measured, 100 * (check.predicted / check.measured - 1),
        )  # fmt: skip
        if self.trusted and len(self._recent) >= min(self.drift_window, 2) and error > self.tolerance:
            self.trusted = False
            message = (
                f"the latency predictor of {self.predictor.target}/{self.predictor.device} is off by "
                f"{100 * error:.1f} % on average over its last {len(self._recent)} spot checks (tolerance "
                f"{100 * self.tolerance:.0f} %): it is no longer trusted, every further model is measured"
            )
            self.drift_events.append(message)
            log.warning(message)

    # ------------------------------------------------------------------------------------------- rows
    def _record_prediction(self, item: _Pending) -> None:
        prediction = item.prediction
        assert prediction is not None
        archid = str(item.arch.archid)
        item.result, item.source = prediction.median, PREDICTED
        self.predictions[archid] = prediction
        described = self.predictor.describe()
        values: dict[str, Any] = {
            "status": "complete",
            "shape": self.fleet.shape_json,
            "benchmark_only": bool(self.fleet.benchmark_only),
            "model_name": "model.onnx",
            LATENCY_SOURCE: PREDICTED,
            PREDICTED_MEAN: prediction.median,
            PREDICTED_LOW: prediction.low,
            PREDICTED_HIGH: prediction.high,
            PREDICTED_BY: described,
            "sources": json.dumps({PREDICTED_MEAN: described, LATENCY_SOURCE: described}, sort_keys=True),
            "message": "latency predicted by the search (not measured)",
        }
        name = self.row_name(item.arch)
        if item.data is not None:
            self.store.upload_bytes(self.experiment, name, "model.onnx", item.data)
        for _ in range(3):
            row = self.store.get(self.experiment, name)
            try:
                if row is None:
                    self.store.create(self.experiment, name, values)
                else:
                    self.store.merge(self.experiment, name, values, expected_version=row["_version"])
                return
            except Exception as exc:  # lost a race: decide on the row as it is now
                if not isinstance(exc, ConcurrencyError) and row is not None:
                    raise
        log.warning("could not label %s as predicted: the row kept changing", name)

    def _label(self, item: _Pending, row: Entity) -> None:
        try:
            sources = json.loads(row.get("sources") or "{}")
        except (TypeError, ValueError):
            sources = {}
        sources = sources if isinstance(sources, dict) else {}
        sources[LATENCY_SOURCE] = f"measured on the fleet ({sources.get('mean', 'runner')})"
        self.store.merge(
            self.experiment,
            str(row["name"]),
            {LATENCY_SOURCE: MEASURED, "sources": json.dumps(sources, sort_keys=True)},
        )
        if as_float(row.get(PREDICTED_MEAN)) is not None:
            log.debug("%s: predicted %s, measured %s", row["name"], row.get(PREDICTED_MEAN), row.get("mean"))
