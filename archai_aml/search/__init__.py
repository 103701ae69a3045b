"""Cost-aware search strategies on Archai's API: successive halving that continues training, and the
measurement of a front's predicted latencies before it is reported. Names are imported on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "ContinuingSuccessiveHalving": "archai_aml.search.halving",
    "crowding_order": "archai_aml.search.halving",
    "measure_front": "archai_aml.search.front",
    "label_sources": "archai_aml.search.front",
}

__all__ = ["ContinuingSuccessiveHalving", "crowding_order", "label_sources", "measure_front"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archai_aml.search' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from archai_aml.search.front import label_sources, measure_front
    from archai_aml.search.halving import ContinuingSuccessiveHalving, crowding_order
