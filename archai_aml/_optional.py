"""Optional dependencies: a missing one fails with what to install, not a bare ModuleNotFoundError."""

from __future__ import annotations

import importlib
from types import ModuleType

from archai_aml.errors import ArchaiAmlError


class MissingDependencyError(ArchaiAmlError, ImportError):
    """An optional dependency of the feature in use is not installed."""


def require(module: str, *, feature: str, extra: str = "azure") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``feature`` and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the Python module {module} ({exc.name} is not installed): "
            f"pip install 'archai-aml[{extra}]'"
        ) from exc
