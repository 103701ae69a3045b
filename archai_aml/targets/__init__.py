"""Target backends and a small registry: ``get_target("cpu", intra_op_num_threads=1)``.

Backends register a factory under a short name; the factory is imported lazily so that a machine without
a device SDK can still use the others. ``cpu`` (onnxruntime, :class:`archai_aml.ort.OrtCpuTarget`) is the
embedded default; ``snpe`` (:mod:`archai_aml.snpe`) and ``aihub`` (:mod:`archai_aml.aihub`, the ``aihub``
extra) are registered here too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from archai_aml.errors import TargetError
from archai_aml.targets.base import BenchmarkResult, ModelInfo, Target

__all__ = ["BenchmarkResult", "ModelInfo", "Target", "available_targets", "get_target", "register_target"]

# name -> "module:attribute" (imported on first use) or a factory callable
_REGISTRY: dict[str, str | Callable[..., Target]] = {
    "cpu": "archai_aml.ort.target:OrtCpuTarget",
    "snpe": "archai_aml.snpe.target:SnpeTarget",
    "aihub": "archai_aml.aihub.target:AiHubTarget",
}
#: The pyproject extra that installs what a target imports.
_EXTRAS = {"aihub": "aihub", "qnn": "qnn"}


def register_target(name: str, factory: str | Callable[..., Target]) -> None:
    """Register a backend under ``name``: a ``"module:attribute"`` path or a callable returning a Target."""
    _REGISTRY[name] = factory


def available_targets() -> list[str]:
    return sorted(_REGISTRY)


def get_target(name: str, **kwargs: Any) -> Target:
    """Build the target registered as ``name`` with ``kwargs`` (e.g. ``intra_op_num_threads=1``)."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise TargetError(f"unknown target {name!r}: choose one of {available_targets()}")
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            extra = _EXTRAS.get(name)
            hint = f"pip install 'archai-aml[{extra}]'" if extra else "install its extra"
            raise TargetError(
                f"target {name!r} needs {module_name}, which cannot be imported ({exc}): {hint}"
            ) from exc
    target = factory(**kwargs)
    if not isinstance(target, Target):
        raise TargetError(f"the factory registered for {name!r} did not return a Target")
    return target
