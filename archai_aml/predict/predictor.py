"""A latency predictor for one target and one device, trained on the rows that device measured.

:class:`LatencyPredictor` regresses latency on :func:`~archai_aml.predict.features.graph_features` with a
scikit-learn ensemble:

- ``kind="linear"`` (default): bootstrap members of scikit-learn's non-negative ``Ridge`` regression on the
  counts (scaled by their largest training value), weighted by ``1 / latency**2`` so that the fit minimizes
  the *relative* error. Latency as a non-negative sum of per-operator-kind work (MACs, activation bytes,
  operator counts) is the additive kernel model of nn-Meter in linear form; it extrapolates to larger models
  instead of flattening out as trees do.
- ``kind="trees"``: ``ExtraTreesRegressor`` on ``log1p`` of the counts, predicting ``log(latency)``.

The members' predictions give the 10 % and 90 % quantiles; :attr:`Prediction.relative_uncertainty` is the
band's half-width relative to the median.

It never mixes measurements: :meth:`LatencyPredictor.add` refuses a row of another target or device, rows
whose latency was simulated (``latency_simulated``) and predicted rows; :meth:`predict` raises
:class:`~archai_aml.errors.PredictorError` below ``min_rows`` measured rows, and for another target or
device. :meth:`LatencyPredictor.from_store` collects the measured rows of a target and device from one or
more partitions of the store (the ONNX of each row is read once for its features).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from archai_aml.errors import PredictorError
from archai_aml.predict.columns import LATENCY_DEVICE, LATENCY_SOURCE, LATENCY_TARGET, PREDICTED
from archai_aml.predict.features import FEATURE_NAMES, graph_features
from archai_aml.store.base import Entity, Store, as_float

__all__ = ["LatencyPredictor", "Prediction"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """A predicted latency (ms) with its 10 % and 90 % quantiles."""

    median: float
    low: float
    high: float

    @property
    def relative_uncertainty(self) -> float:
        """Half the 10 %-90 % band, relative to the median (0.05: about ±5 %)."""
        return (self.high - self.low) / (2.0 * self.median) if self.median > 0 else math.inf


class LatencyPredictor:
    """Latency of ONNX models on ``target``/``device`` predicted from measured rows (module docstring).

    Args:
        target: the target name (``cpu``, ``qnn``, ...); rows of another target are refused.
        device: the runner's device id (the ``device`` column; ``cpu@host`` for a CPU runner).
        min_rows: below this many measured rows nothing is predicted.
        kind: ``"linear"`` (bagged ridge regressions) or ``"trees"`` (extra trees).
        n_members: ensemble members.
        seed: random seed of the ensemble.
        metric_key: the row column it learns (``mean``, or the runner's ``median`` / ``min``, which a few
            preempted runs on a shared host do not move); the fleet evaluator must return the same column.
    """

    def __init__(
        self,
        target: str,
        device: str,
        *,
        min_rows: int = 12,
        kind: str = "linear",
        n_members: int = 50,
        seed: int = 0,
        metric_key: str = "mean",
    ) -> None:
        if kind not in ("linear", "trees"):
            raise ValueError(f"kind {kind!r}: use 'linear' or 'trees'")
        if min_rows < 2:
            raise ValueError(f"min_rows {min_rows} must be at least 2")
        self.target = target
        self.device = device
        self.min_rows = int(min_rows)
        self.kind = kind
        self.n_members = int(n_members)
        self.seed = int(seed)
        self.metric_key = metric_key
        self._x: dict[str, list[float]] = {}
        self._y: dict[str, float] = {}
        self._model: Any = None
        self._scale: Any = None
        self._fitted_rows = 0

    # ------------------------------------------------------------------------------------------ data
    @property
    def rows(self) -> int:
        """Measured rows the predictor holds."""
        return len(self._y)

    @property
    def ready(self) -> bool:
        return self.rows >= self.min_rows

    def describe(self) -> str:
        return f"{self.kind} predictor of {self.target}/{self.device} ({self.metric_key}) on {self.rows} measured rows"

    def check_scope(self, target: str, device: str) -> None:
        """:class:`PredictorError` unless ``target``/``device`` are the predictor's own."""
        if target != self.target or device != self.device:
            raise PredictorError(
                f"this predictor was trained on {self.target}/{self.device} measurements, not {target}/{device}: "
                "build one per target and device (LatencyPredictor.from_store)"
            )

    def add(self, name: str, features: Mapping[str, float], latency_ms: float) -> None:
        """Add (or replace) the measurement of one model."""
        if not (latency_ms > 0 and math.isfinite(latency_ms)):
            raise ValueError(f"latency of {name} is {latency_ms}: give a positive measured latency")
        self._x[name] = [float(features[f]) for f in FEATURE_NAMES]
        self._y[name] = float(latency_ms)

    def add_row(self, row: Entity, features: Mapping[str, float]) -> bool:
        """Add a measured store row (its ``metric_key`` column); False (and nothing added) for a row that is not a
        measurement of this target and device."""
        if not self.measured_here(row):
            return False
        mean = as_float(row.get(self.metric_key))
        assert mean is not None
        self.add(str(row["name"]), features, mean)
        return True

    def measured_here(self, row: Entity) -> bool:
        """Whether ``row`` holds a real (not simulated, not predicted) latency of this target and device."""
        mean = as_float(row.get(self.metric_key))
        return (
            row.get("status") == "complete"
            and mean is not None
            and mean > 0
            and row.get("latency_simulated") is not True
            and row.get(LATENCY_SOURCE) != PREDICTED
            and row.get(LATENCY_TARGET) == self.target
            and row.get(LATENCY_DEVICE) == self.device
        )

    # ------------------------------------------------------------------------------------------ model
    def fit(self) -> None:
        """Fit the ensemble on the rows held (needs ``min_rows``)."""
        from sklearn.ensemble import ExtraTreesRegressor
        from sklearn.linear_model import Ridge

        if not self.ready:
            raise PredictorError(self._too_few())
        names = sorted(self._y)
        x = np.array([self._x[n] for n in names])
        y = np.array([self._y[n] for n in names])
        if self.kind == "trees":
            model: Any = ExtraTreesRegressor(
                n_estimators=self.n_members, min_samples_leaf=2, random_state=self.seed
            )
            model.fit(np.log1p(np.maximum(x, 0)), np.log(y))
        else:
            peak = np.abs(x).max(axis=0)
            self._scale = np.where(peak > 0, peak, 1.0)
            # bootstrap members of scikit-learn's non-negative ridge (BaggingRegressor's own sample-weight
            # bootstrap spread its members' coefficients over collinear counts: 13 % off on a noiseless
            # linear latency where one ridge is within 1.3 %)
            rng = np.random.default_rng(self.seed)
            members = []
            for _ in range(self.n_members):
                idx = rng.integers(0, len(y), len(y))
                members.append(
                    Ridge(alpha=1e-3, positive=True).fit(
                        x[idx] / self._scale, y[idx], sample_weight=1.0 / y[idx] ** 2
                    )
                )
            model = members
        self._model = model
        self._fitted_rows = len(names)
        log.debug("fitted %s", self.describe())

    def _member_predictions(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "trees":
            logs = np.array([t.predict(np.log1p(np.maximum(x, 0)))[0] for t in self._model.estimators_])
            return np.exp(logs)
        xs = x / self._scale
        return np.array([m.predict(xs)[0] for m in self._model])

    def _too_few(self) -> str:
        return (
            f"{self.rows} measured row(s) of {self.target}/{self.device}, the predictor needs {self.min_rows} "
            "(min_rows): measure more models on the fleet first"
        )

    def _members(self) -> list[Any]:
        return list(self._model.estimators_)

    def predict(
        self, features: Mapping[str, float], *, target: str | None = None, device: str | None = None
    ) -> Prediction:
        """The latency of a model with these features; :class:`PredictorError` with too few rows or for
        another ``target``/``device``."""
        self.check_scope(target or self.target, device or self.device)
        if not self.ready:
            raise PredictorError(self._too_few())
        if self._model is None or self._fitted_rows != self.rows:
            self.fit()
        x = np.array([[float(features[f]) for f in FEATURE_NAMES]])
        values = self._member_predictions(x)
        low, median, high = (float(v) for v in np.quantile(values, [0.1, 0.5, 0.9]))
        floor = 1e-6  # a non-negative fit can give 0 for a member: latency is positive
        return Prediction(median=max(median, floor), low=max(low, floor), high=max(high, floor))

    # ------------------------------------------------------------------------------------------ store
    @classmethod
    def from_store(
        cls,
        store: Store,
        experiments: str | Sequence[str],
        target: str,
        device: str,
        *,
        features: dict[str, dict[str, float]] | None = None,
        **kwargs: Any,
    ) -> LatencyPredictor:
        """A predictor holding every measured row of ``target``/``device`` in ``experiments``.

        ``features`` caches features by ``<experiment>/<name>`` (filled in as ONNX files are read)."""
        predictor = cls(target, device, **kwargs)
        predictor.load(
            store, [experiments] if isinstance(experiments, str) else experiments, features=features
        )
        return predictor

    def load(
        self, store: Store, experiments: Iterable[str], *, features: dict[str, dict[str, float]] | None = None
    ) -> int:
        """Add the measured rows of this target/device of ``experiments``; returns how many were added."""
        cache = features if features is not None else {}
        added = 0
        for experiment in experiments:
            for row in store.query(experiment, where={"status": "complete"}):
                if not self.measured_here(row):
                    continue
                key = f"{experiment}/{row['name']}"
                if key not in cache:
                    try:
                        data = store.download_bytes(experiment, str(row["name"]), "model.onnx")
                        cache[key] = graph_features(data)
                    except Exception as exc:  # a row whose model is gone or unreadable is skipped
                        log.warning("no features for %s: %s", key, exc)
                        continue
                if self.add_row(row, cache[key]):
                    added += 1
        log.info("%s (%d added from %s)", self.describe(), added, ", ".join(experiments))
        return added
