"""One way to plug in a backend, the same for the three protocols: targets, stores and job runners.

A backend is a name, a pydantic settings model (the fields of its configuration section, a subclass of the
protocol's section model: :class:`~archai_aml.config.TargetConfig`, :class:`~archai_aml.config.StoreConfig`
or :class:`~archai_aml.config.JobRunnerConfig`) and a factory (a class or function, as ``"module:attribute"``,
imported on first use). It is registered

- by an installed package, with an entry point in the group of its protocol (:data:`GROUPS`) naming the
  settings model, whose ``factory`` class variable names what builds it::

      [project.entry-points."archai_aml.targets"]
      ort-fixed-threads = "my_target.settings:FixedThreadsTargetConfig"

- or by code in the same process: :func:`~archai_aml.targets.register_target`,
  :func:`~archai_aml.store.register_store`, :func:`~archai_aml.pipelines.register_job_runner`.

archai-aml's own backends are registered by the entry points of its ``pyproject.toml``, like any other.
Entry points are read when a name is first looked up, and only the settings module of the chosen backend
is imported (it must stay light: pydantic only); the factory's module is imported when the backend is
built, so a missing SDK fails that backend alone, with the extra to install named.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, create_model

from archai_aml._optional import MissingDependencyError
from archai_aml.config_base import ConfigModel
from archai_aml.errors import ArchaiAmlError, ConfigError, TargetError

__all__ = [
    "GROUPS",
    "JOB_RUNNERS",
    "STORES",
    "TARGETS",
    "BackendSettings",
    "Registry",
    "SectionModel",
    "load_object",
]

log = logging.getLogger(__name__)

#: protocol -> entry-point group
GROUPS = {
    "target": "archai_aml.targets",
    "store": "archai_aml.stores",
    "job_runner": "archai_aml.job_runners",
}

#: archai-aml's own entry points (the same as its pyproject.toml declares, which a test checks), used only
#: when the installed distribution's metadata does not declare them (a checkout on ``PYTHONPATH`` whose
#: metadata predates them).
BUILTIN_ENTRY_POINTS: dict[str, dict[str, str]] = {
    "archai_aml.targets": {
        "cpu": "archai_aml.ort.settings:CpuTargetConfig",
        "qnn": "archai_aml.qnn.settings:QnnTargetSection",
        "snpe": "archai_aml.snpe.settings:SnpeTargetConfig",
        "aihub": "archai_aml.aihub.settings:AiHubTargetConfig",
        "fixed": "archai_aml.testing.fixed_cost_settings:FixedCostTargetConfig",
    },
    "archai_aml.stores": {
        "embedded": "archai_aml.store.embedded.settings:EmbeddedStoreConfig",
        "azure": "archai_aml.store.azure.settings:AzureStoreConfig",
    },
    "archai_aml.job_runners": {
        "local": "archai_aml.pipelines.settings:LocalJobRunnerConfig",
        "azureml": "archai_aml.pipelines.settings:AzureMLJobRunnerConfig",
    },
}


def load_object(path: str) -> Any:
    """The object a ``"module:attribute"`` path names (``attribute`` may be dotted)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{path!r} is not a 'module:attribute' path")
    value: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    return value


class BackendSettings(ConfigModel):
    """What every backend's settings model has: where its factory is and which extra installs what it needs.

    Subclass the protocol's section model, give the discriminator field (``name`` or ``backend``) a
    ``Literal`` of the backend's name, add the backend's own fields and override :meth:`factory_kwargs`.
    """

    #: ``"module:attribute"`` (or a callable) that builds the backend from :meth:`factory_kwargs`.
    factory: ClassVar[str | Callable[..., Any] | None] = None
    #: The ``pip install 'archai-aml[<extra>]'`` extra of what the factory's module imports (None: none).
    extra: ClassVar[str | None] = None

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        """Keyword arguments of the factory from these settings (``context``: what the caller adds, e.g. a
        runner's ``device``). None by default."""
        return {}


@dataclass
class _Entry:
    settings: type[BackendSettings] | str  # str: an entry point's "module:attribute", not loaded yet
    factory: str | Callable[..., Any] | None  # None: the settings model's own ``factory``
    origin: str


class Registry:
    """The backends of one protocol: ``kind`` (``target``, ``store``, ``job_runner``) and its entry-point
    group; ``key`` is the discriminator field of its configuration section (``name`` or ``backend``)."""

    def __init__(
        self,
        kind: str,
        *,
        key: str,
        section: str,
        label: str,
        error: type[ArchaiAmlError] | None = None,
    ) -> None:
        self.kind = kind
        self.group = GROUPS[kind]
        self.key = key
        self._section_path = section  # "module:attribute" of the section base model (config imports us)
        self.label = label  # how messages name one backend: "target {name!r}", "the {name} store backend"
        self.error = error  # what a failing factory raises (None: MissingDependencyError / as raised)
        self._entries: dict[str, _Entry] = {}
        self._scanned = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------------- registering
    def register(
        self,
        name: str,
        factory: str | Callable[..., Any] | None = None,
        *,
        settings: type[BackendSettings] | None = None,
    ) -> None:
        """Register a backend under ``name``: its ``factory`` (``"module:attribute"`` or a callable) and/or
        its ``settings`` model (default: the section model with no field of its own)."""
        if factory is None and settings is None:
            raise TypeError(f"register a {self.kind} with a factory, a settings model or both")
        if settings is not None and not (isinstance(settings, type) and issubclass(settings, self.section)):
            raise TypeError(f"the settings of {self.kind} {name!r} must subclass {self.section.__name__}")
        with self._lock:
            self._scan()
            self._entries[name] = _Entry(settings or self._plain_settings(name), factory, "register")

    def _plain_settings(self, name: str) -> type[BackendSettings]:
        """A settings model for a backend registered without one: the section's common fields only."""
        model: type[BackendSettings] = create_model(  # type: ignore[call-overload]
            f"{name.title().replace('-', '').replace('_', '')}{self.section.__name__}",
            __base__=self.section,
            __module__=__name__,
        )
        return model

    def _scan(self) -> None:
        """Read the entry points of the group once (names and paths only: nothing is imported)."""
        if self._scanned:
            return
        found: dict[str, tuple[str, str]] = {}
        for ep in entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            found.setdefault(ep.name, (ep.value, f"entry point of {dist.name if dist else 'a package'}"))
        for name, value in BUILTIN_ENTRY_POINTS[self.group].items():
            if name not in found:
                log.debug(
                    "%s %r: archai-aml's metadata has no entry point; using the built-in one", self.kind, name
                )
                found[name] = (value, "archai-aml (built in)")
        for name, (value, origin) in found.items():
            self._entries.setdefault(name, _Entry(value, None, origin))
        self._scanned = True

    # ----------------------------------------------------------------------------------------- looking up
    @property
    def section(self) -> type[BackendSettings]:
        model: type[BackendSettings] = load_object(self._section_path)
        return model

    def names(self) -> list[str]:
        with self._lock:
            self._scan()
            return sorted(self._entries)

    def known(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def unknown_message(self, name: object) -> str:
        return f"unknown {self.kind} {name!r}: choose one of {self.names()} (or register it: docs/architecture.md)"

    def check_name(self, name: str) -> str:
        """A pydantic field validator of the section's discriminator: the name must be registered."""
        if not self.known(name):
            raise ValueError(self.unknown_message(name))
        return name

    def _entry(self, name: str) -> _Entry:
        with self._lock:
            self._scan()
            entry = self._entries.get(name)
        if entry is None:
            raise (self.error or ConfigError)(self.unknown_message(name))
        return entry

    def settings_model(self, name: str) -> type[BackendSettings]:
        """The settings model of ``name`` (its module imported on first use)."""
        entry = self._entry(name)
        if isinstance(entry.settings, str):
            path = entry.settings
            try:
                model = load_object(path)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(
                    f"{self.kind} {name!r} ({entry.origin}): its settings model {path} cannot be loaded: {exc}"
                ) from exc
            if not (isinstance(model, type) and issubclass(model, self.section)):
                raise ConfigError(
                    f"{self.kind} {name!r} ({entry.origin}): {path} is not a {self.section.__name__} subclass"
                )
            entry.settings = model
        return entry.settings

    def default_name(self) -> str:
        default: str = self.section.model_fields[self.key].get_default(call_default_factory=True)
        return default

    def validate(self, data: Mapping[str, Any] | BaseModel) -> BackendSettings:
        """``data`` (a section of a configuration) validated by the model of the backend it names; an
        unknown name fails as a :class:`pydantic.ValidationError` of the discriminator field."""
        if isinstance(data, BaseModel):
            data = data.model_dump(exclude_unset=True)
        name = data.get(self.key, self.default_name())
        model = self.settings_model(name) if self.known(name) else self.section
        # the section base itself validates an unknown name (and fails on its discriminator field)
        validated: BackendSettings = BaseModel.model_validate.__func__(model, {**data, self.key: name})  # type: ignore[attr-defined]
        return validated

    def section_value(self, value: Any) -> Any:
        """For a ``mode="before"`` field validator of a configuration section: a mapping (or a section-base
        instance) becomes the chosen backend's model; a backend's model is kept."""
        section = self.section
        if isinstance(value, Mapping) or type(value) is section:
            try:
                return self.validate(value)
            except ConfigError as exc:  # the backend's settings model cannot be loaded
                raise ValueError(str(exc)) from None
        return value

    # ------------------------------------------------------------------------------------------- building
    def factory(self, name: str) -> Callable[..., Any]:
        entry = self._entry(name)
        factory = entry.factory if entry.factory is not None else self.settings_model(name).factory
        if factory is None:
            raise ConfigError(f"{self.kind} {name!r} ({entry.origin}) has no factory")
        if isinstance(factory, str):
            try:
                factory = load_object(factory)
            except ImportError as exc:
                raise self._missing(name, exc) from exc
        return factory

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build backend ``name`` with ``kwargs``; an import failure names the extra that installs it."""
        try:
            return self.factory(name)(**kwargs)
        except ImportError as exc:  # also MissingDependencyError, raised by a backend's constructor
            raise self._missing(name, exc) from exc

    def _missing(self, name: str, exc: ImportError) -> Exception:
        extra = self.settings_model(name).extra
        what = f"pip install 'archai-aml[{extra}]'" if extra else "install what its package needs"
        if isinstance(exc, MissingDependencyError):  # it already says what to install
            return self.error(f"{self.label.format(name=name)}: {exc}") if self.error else exc
        message = f"{self.label.format(name=name)} needs {exc.name or 'a module'}, which cannot be imported ({exc}): {what}"
        return self.error(message) if self.error else MissingDependencyError(message)


class SectionModel(BackendSettings):
    """The base of a protocol's configuration section (``TargetConfig``, ``StoreConfig``,
    ``JobRunnerConfig``): building it, or validating a mapping with it, gives the model of the backend it
    names: ``StoreConfig(backend="azure", connection_string=...)`` is an ``AzureStoreConfig``."""

    registry: ClassVar[Registry]

    def __init__(self, /, **data: Any) -> None:
        registry = type(self).registry
        if type(self) is registry.section:
            name = data.get(registry.key, registry.default_name())
            if registry.known(name):
                model = registry.settings_model(name)
                if model is not type(self):
                    object.__setattr__(self, "__class__", model)  # same layout: a subclass of this model
        super().__init__(**data)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
        if cls is cls.registry.section and isinstance(obj, Mapping) and not args and not kwargs:
            return cls.registry.validate(obj)
        return super().model_validate(obj, *args, **kwargs)

    def create(self, **context: Any) -> Any:
        """Build the backend these settings name (its factory with :meth:`factory_kwargs`)."""
        name = getattr(self, self.registry.key)
        return self.registry.create(name, **self.factory_kwargs(**context))


#: The three registries: ``name`` picks a target and a job runner, ``backend`` a store.
TARGETS = Registry(
    "target", key="name", section="archai_aml.config:TargetConfig", label="target {name!r}",
    error=TargetError,
)  # fmt: skip
STORES = Registry(
    "store", key="backend", section="archai_aml.config:StoreConfig", label="the {name} store backend"
)
JOB_RUNNERS = Registry(
    "job_runner",
    key="name",
    section="archai_aml.config:JobRunnerConfig",
    label="the {name} job runner",
)
