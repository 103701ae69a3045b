"""YAML text to raw configuration values: PyYAML's safe loader refusing duplicate keys, and ``${VAR}``
substitution (whose results are marked, so number and flag fields may read them as such)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from archai_aml.errors import ConfigError

__all__ = ["EnvStr", "load_yaml", "substitute_env"]


class EnvStr(str):
    """A string that ``${VAR}`` substitution produced: a number or flag field may read it as one."""

    __slots__ = ()


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(value: Any, env: Mapping[str, str] | None = None, _where: str = "") -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string of ``value`` (recursively).

    Azure ML bindings (``${{inputs.x}}``) are left alone. A variable that is unset and has no default raises
    :class:`ConfigError` naming the variable and the field where it is used.
    """
    env = os.environ if env is None else env
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{_where or 'config'}: environment variable {name} is not set "
                f"(set it, or write ${{{name}:-default}} for a default)"
            )

        if not _VAR.search(value):
            return value
        return EnvStr(_VAR.sub(repl, value))
    if isinstance(value, Mapping):
        return {k: substitute_env(v, env, f"{_where}.{k}" if _where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env, f"{_where}[{i}]") for i, v in enumerate(value)]
    return value


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping (naming both lines) instead of
    silently keeping the second value. Keys merged in with ``<<`` may still be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping: lines {first} and {line}",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """YAML with PyYAML's safe loader, a duplicate key refused (:class:`yaml.YAMLError` naming both lines)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
