"""Target backends and a small registry: ``get_target("cpu", intra_op_num_threads=1)``.

Backends register a factory under a short name; the factory is imported lazily so that a machine without
a device SDK can still use the others. ``cpu`` (onnxruntime, :class:`archai_aml.ort.OrtCpuTarget`) is the
embedded default; ``qnn`` (QNN HTP through onnxruntime-qnn, :class:`archai_aml.qnn.QnnTarget`, the ``qnn``
extra), ``snpe`` (:mod:`archai_aml.snpe`, the SNPE SDK over adb) and ``aihub`` (:mod:`archai_aml.aihub`, the
``aihub`` extra) sit beside it. :func:`target_kwargs` turns a configuration's ``target:`` section into the
keyword arguments of the chosen backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from archai_aml._optional import MissingDependencyError
from archai_aml.errors import ConfigError, TargetError
from archai_aml.targets.base import BenchmarkResult, ModelInfo, Target

if TYPE_CHECKING:
    from archai_aml.config import TargetConfig

__all__ = [
    "BenchmarkResult",
    "ModelInfo",
    "Target",
    "available_targets",
    "get_target",
    "register_target",
    "target_kwargs",
]

# name -> "module:attribute" (imported on first use) or a factory callable
_REGISTRY: dict[str, str | Callable[..., Target]] = {
    "cpu": "archai_aml.ort.target:OrtCpuTarget",
    "qnn": "archai_aml.qnn.target:QnnTarget",
    "snpe": "archai_aml.snpe.target:SnpeTarget",
    "aihub": "archai_aml.aihub.target:AiHubTarget",
}
#: The pyproject extra that installs what a backend needs.
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
    try:
        if isinstance(factory, str):
            module_name, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module_name), attr)
        target = factory(**kwargs)
    except ImportError as exc:  # also MissingDependencyError, raised by a backend's constructor
        extra = _EXTRAS.get(name)
        what = f"pip install 'archai-aml[{extra}]'" if extra else "install its extra"
        if isinstance(exc, MissingDependencyError):  # it already says what to install
            raise TargetError(f"target {name!r}: {exc}") from exc
        raise TargetError(
            f"target {name!r} needs {exc.name or 'a module'}, which cannot be imported ({exc}): {what}"
        ) from exc
    if not isinstance(target, Target):
        raise TargetError(f"the factory registered for {name!r} did not return a Target")
    return target


def target_kwargs(
    config: TargetConfig, name: str | None = None, overrides: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Keyword arguments for :func:`get_target` from a ``target:`` section (the target ``name``, default
    ``config.name``), with command-line ``overrides`` of the backend's options (``KEY=VALUE`` pairs,
    validated like the YAML). ``cpu`` takes none here (its runner defaults stay as they are)."""
    from pydantic import ValidationError

    from archai_aml.config import QnnTargetConfig

    name = name or config.name
    if name != "qnn":
        if overrides:
            raise ConfigError(f"target options {sorted(overrides)} are for the qnn target, not {name!r}")
        if name == "snpe":
            return {"sdk_root": config.sdk_root, "device": config.device, "htp_socs": config.htp_socs}
        if name == "aihub":
            return {"device": config.hub_device}
        return {}
    options = config.qnn
    if overrides:
        try:
            options = QnnTargetConfig.model_validate({**options.model_dump(), **overrides})
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"--qnn-option {field}: {err['msg']}") from None
    return {"input_shape": list(config.input_shape), **options.model_dump()}
