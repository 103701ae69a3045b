"""Latency prediction from ONNX graphs, trained on the store's own measurements (per target and device).

:func:`graph_features` (per operator kind MACs, parameters, activation bytes, kernel sizes and strides),
:class:`LatencyPredictor` (a scikit-learn ensemble with an uncertainty band; needs the ``predict`` extra),
:class:`PredictedLatencyEvaluator` (an Archai evaluator around the runner fleet). The row columns these add
are listed in :mod:`archai_aml.predict.columns`. Names are imported on first use (scikit-learn only when a
predictor is fitted).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "FEATURE_NAMES": "archai_aml.predict.features",
    "graph_features": "archai_aml.predict.features",
    "LatencyPredictor": "archai_aml.predict.predictor",
    "Prediction": "archai_aml.predict.predictor",
    "PredictedLatencyEvaluator": "archai_aml.predict.evaluator",
    "SpotCheck": "archai_aml.predict.evaluator",
}

__all__ = [
    "FEATURE_NAMES",
    "LatencyPredictor",
    "PredictedLatencyEvaluator",
    "Prediction",
    "SpotCheck",
    "graph_features",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archai_aml.predict' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from archai_aml.predict.evaluator import PredictedLatencyEvaluator, SpotCheck
    from archai_aml.predict.features import FEATURE_NAMES, graph_features
    from archai_aml.predict.predictor import LatencyPredictor, Prediction
