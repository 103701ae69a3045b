"""Target backends and their registry: ``get_target("cpu", intra_op_num_threads=1)``.

Backends register under a short name (:mod:`archai_aml.plugins`: the ``archai_aml.targets`` entry-point
group, or :func:`register_target`); the backend's module is imported when it is built, so that a machine
without a device SDK can still use the others. archai-aml's own: ``cpu`` (onnxruntime, the default),
``qnn`` (QNN HTP through onnxruntime-qnn, the ``qnn`` extra), ``snpe`` (the SNPE SDK over adb), ``aihub``
(the ``aihub`` extra) and ``fixed`` (a test instrument). Each has a settings model, the fields of its
``target:`` section; :func:`target_settings` validates a section for a backend (with command-line options)
and :func:`target_from_config` builds the target it describes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from archai_aml.config_yaml import EnvStr
from archai_aml.errors import ConfigError, TargetError
from archai_aml.plugins import TARGETS
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
    "target_from_config",
    "target_kwargs",
    "target_settings",
]


def register_target(
    name: str,
    factory: str | Callable[..., Target] | None = None,
    *,
    settings: type[TargetConfig] | None = None,
) -> None:
    """Register a backend under ``name``: a ``"module:attribute"`` path or a callable returning a Target,
    and/or its ``settings`` model (a :class:`~archai_aml.config.TargetConfig` subclass whose fields are the
    backend's ``target:`` section). Installed packages use the ``archai_aml.targets`` entry points."""
    TARGETS.register(name, factory, settings=settings)


def available_targets() -> list[str]:
    return TARGETS.names()


def get_target(name: str, **kwargs: Any) -> Target:
    """Build the target registered as ``name`` with ``kwargs`` (e.g. ``intra_op_num_threads=1``)."""
    target = TARGETS.create(name, **kwargs)
    if not isinstance(target, Target):
        raise TargetError(f"the factory registered for {name!r} did not return a Target")
    return target


def target_from_config(settings: TargetConfig, **context: Any) -> Target:
    """The target a validated ``target:`` section describes; ``context`` goes to its
    :meth:`~archai_aml.plugins.BackendSettings.factory_kwargs` (a runner passes its ``device``)."""
    return get_target(settings.name, **settings.factory_kwargs(**context))


def target_settings(
    config: TargetConfig,
    name: str | None = None,
    options: Mapping[str, str] | None = None,
    *,
    flag: str = "--target-option",
) -> TargetConfig:
    """The ``target:`` section ``config`` as the settings of backend ``name`` (default ``config.name``),
    with command-line ``options`` over it: ``KEY=VALUE`` pairs (``qnn.workers=2`` reaches into a block),
    each value read as the field's type. Fields common to every target carry over when ``name`` differs
    from the section's; a field the backend has not fails naming the field and the backend."""
    name = name or config.name
    if not TARGETS.known(name):
        raise TargetError(TARGETS.unknown_message(name))
    data: dict[str, Any] = config.model_dump(exclude_unset=True)
    if name != config.name:  # the section was written for another backend: keep what every target has
        common = TARGETS.section.model_fields
        data = {k: v for k, v in data.items() if k in common}
    data["name"] = name
    for key, value in (options or {}).items():
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            child = node.get(part)
            node[part] = child = dict(child) if isinstance(child, Mapping) else {}
            node = child
        node[leaf] = EnvStr(value)  # text, read as a number or flag where the field wants one
    try:
        settings: TargetConfig = TARGETS.validate(data)  # type: ignore[assignment]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        where = (
            f"{flag} {field}" if field.split(".")[0] in {k.split(".")[0] for k in options or {}} else field
        )
        raise ConfigError(f"{where} (target {name!r}): {err['msg']}") from None
    return settings


def target_kwargs(
    config: TargetConfig, name: str | None = None, overrides: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Keyword arguments for :func:`get_target` from a ``target:`` section (the target ``name``, default
    ``config.name``), with command-line ``overrides`` of the qnn target's ``qnn:`` options (``KEY=VALUE``,
    ``--qnn-option``)."""
    name = name or config.name
    if overrides and name != "qnn":
        raise ConfigError(f"target options {sorted(overrides)} are for the qnn target, not {name!r}")
    options = {f"qnn.{k}": v for k, v in (overrides or {}).items()}
    return target_settings(config, name, options, flag="--qnn-option").factory_kwargs()
