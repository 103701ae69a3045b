"""Settings of the ``cpu`` target (onnxruntime's CPU provider), the registry's entry point for it."""

from __future__ import annotations

from typing import Any, Literal

from archai_aml.config import TargetConfig

__all__ = ["CpuTargetConfig"]


class CpuTargetConfig(TargetConfig):
    """``cpu``: onnxruntime on this machine's CPU (:class:`archai_aml.ort.OrtCpuTarget`), the default."""

    factory = "archai_aml.ort.target:OrtCpuTarget"

    name: Literal["cpu"] = "cpu"

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        return {}  # a runner's CPU target keeps OrtCpuTarget's own defaults
