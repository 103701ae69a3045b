"""Settings of the ``fixed`` test target (:class:`archai_aml.testing.fixed_cost.FixedCostTarget`),
registered by entry point like any other target: ``archai-aml runner --target fixed:cost=0.5,quantize=2``
or ``target: {name: fixed, cost: 0.5}``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from archai_aml.config import TargetConfig
from archai_aml.config_base import Float

__all__ = ["FixedCostTargetConfig"]


class FixedCostTargetConfig(TargetConfig):
    """``fixed``: a test instrument that sleeps a fixed time per operation and journals every call."""

    factory = "archai_aml.testing.fixed_cost:FixedCostTarget"

    name: Literal["fixed"] = "fixed"
    #: seconds of convert, benchmark and batch (each unless given on its own)
    cost: Float = Field(default=0.5, ge=0)
    convert: Float | None = Field(default=None, ge=0)
    quantize: Float = Field(default=0.0, ge=0)
    info: Float = Field(default=0.0, ge=0)
    benchmark: Float | None = Field(default=None, ge=0)
    batch: Float | None = Field(default=None, ge=0)
    #: a JSON-lines file every call is journaled to
    journal: Path | None = None

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        keys = ("cost", "convert", "quantize", "info", "benchmark", "batch", "journal")
        return {key: getattr(self, key) for key in keys}
