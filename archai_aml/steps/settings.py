"""One pydantic settings model per pipeline step, filled from command-line arguments, then the environment.

A field names its environment variable with :func:`env_field` (``env="TRAINING_MAX_TRIALS"``). A value given on
the command line wins over the variable, the variable over the default. A value that does not parse fails with
a :class:`~archai_aml.errors.ConfigError` naming where it came from (``TRAINING_MAX_TRIALS: Input should be a
valid integer (got 'eight')``). Secret fields (``SecretStr``) never appear in messages.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from archai_aml.errors import ArchaiAmlError, ConfigError

__all__ = ["StepSettings", "env_field", "run_cli", "split_names"]

S = TypeVar("S", bound="StepSettings")


def env_field(default: Any = ..., *, env: str | None = None, description: str = "", **kwargs: Any) -> Any:
    """A settings field read from ``--<name>`` or, when that is not given, the variable ``env``."""
    extra: dict[str, Any] = {"env": env} if env else {}
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


def split_names(value: Any) -> Any:
    """A file list given as ``a.jpg,b.jpg`` (commas or whitespace), a JSON list, or a list; '' is empty."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list: {exc}") from None
        return [part for part in text.replace(",", " ").split() if part]
    return value


class StepSettings(BaseModel):
    """Base of the step settings: ``load`` reads arguments then the environment."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def env_name(cls, field: str) -> str | None:
        extra = cls.model_fields[field].json_schema_extra
        return str(extra["env"]) if isinstance(extra, dict) and extra.get("env") else None

    @classmethod
    def load(
        cls: type[S], values: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> S:
        """The settings from ``values`` (None entries ignored), else the environment, else the defaults."""
        env = os.environ if env is None else env
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown settings {unknown}")
        raw: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in cls.model_fields:
            var = cls.env_name(name)
            if values.get(name) is not None:
                raw[name], sources[name] = values[name], "--" + name.replace("_", "-")
            elif var and env.get(var, "") != "":
                raw[name], sources[name] = env[var], var
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else ""
                where = sources.get(field) or cls.env_name(field) or field or "(settings)"
                secret = field in cls.model_fields and "SecretStr" in str(cls.model_fields[field].annotation)
                got = "" if secret or field not in raw else f" (got {str(raw[field])[:80]!r})"
                lines.append(f"{where}: {err['msg']}{got}")
            raise ConfigError(f"invalid {cls.__name__}: " + "; ".join(lines)) from None

    @classmethod
    def argument_parser(cls, prog: str, description: str) -> argparse.ArgumentParser:
        """``--<field-name>`` for every field (strings: pydantic parses them)."""
        parser = argparse.ArgumentParser(prog=prog, description=description)
        for name, info in cls.model_fields.items():
            var = cls.env_name(name)
            default = "" if info.is_required() else f"; default {info.default!r}"
            env_text = f" (env {var}{default})" if var else (f" ({default[2:]})" if default else "")
            parser.add_argument(
                "--" + name.replace("_", "-"),
                dest=name,
                default=None,
                help=(info.description or "") + env_text,
            )
        return parser


def mandatory_list_validator(*fields: str) -> Any:
    """A ``field_validator`` turning ``a.jpg,b.jpg`` into a list for ``fields``."""
    return field_validator(*fields, mode="before")(lambda cls, v: split_names(v))


def run_cli(
    settings_cls: type[S],
    run: Callable[[S], Any],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
) -> int:
    """Parse ``argv``, load the settings, run the step; a library error exits 2 with its message."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = settings_cls.argument_parser(prog, description)
    args = parser.parse_args(argv)
    try:
        settings = settings_cls.load(vars(args))
        result = run(settings)
    except ArchaiAmlError as exc:
        logging.getLogger(prog).error("%s", exc)
        return 2
    if result is not None:
        logging.getLogger(prog).info("done: %s", result)
    return 0
