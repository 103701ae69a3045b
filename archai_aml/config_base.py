"""The building blocks of every configuration model: the strict number and flag types that also read
``${VAR}`` text, and :class:`ConfigModel` (unknown fields are an error). A backend's own settings model
(:class:`archai_aml.plugins.BackendSettings`) is built from these too."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict

from archai_aml.config_yaml import EnvStr

__all__ = ["Bool", "ConfigModel", "Float", "Int"]


def _env_int(value: Any) -> Any:
    if isinstance(value, EnvStr) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    return value


def _env_float(value: Any) -> Any:
    if isinstance(value, EnvStr):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _env_bool(value: Any) -> Any:
    if isinstance(value, EnvStr) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


# Strict numbers and flags: YAML ``true`` is not 1 and ``'60'`` is not 60.0 (a quoted number is a mistake);
# a value from ``${VAR}`` is text by nature and is read as a number or flag where the field wants one.
Int = Annotated[int, BeforeValidator(_env_int), Strict()]
Float = Annotated[float, BeforeValidator(_env_float), Strict()]
Bool = Annotated[bool, BeforeValidator(_env_bool), Strict()]


class ConfigModel(BaseModel):
    """A configuration section: unknown fields fail, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
