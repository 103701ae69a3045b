"""The embedded store's value codec: one tagged JSON value per column, so every type round-trips exactly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from archai_aml.errors import StoreError
from archai_aml.store.base import Value
from archai_aml.store.rules import to_utc


def _format_datetime(value: datetime) -> str:
    return to_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds")


def _parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def encode_value(value: Value) -> dict[str, str]:
    """The tagged form of one column value (``bool`` is checked before ``int``: it is a subclass)."""
    if isinstance(value, bool):
        return {"t": "b", "v": "true" if value else "false"}
    if isinstance(value, int):
        return {"t": "i", "v": str(int(value))}
    if isinstance(value, float):
        return {"t": "f", "v": repr(float(value))}
    if isinstance(value, str):
        return {"t": "s", "v": str(value)}
    if isinstance(value, datetime):
        return {"t": "d", "v": _format_datetime(value)}
    raise TypeError(f"cannot store a {type(value).__name__}; use int, float, bool, str or datetime")


def decode_value(tagged: Mapping[str, str]) -> Value:
    kind, text = tagged["t"], tagged["v"]
    if kind == "s":
        return text
    if kind == "i":
        return int(text)
    if kind == "f":
        return float(text)
    if kind == "b":
        return text == "true"
    if kind == "d":
        return _parse_datetime(text)
    raise StoreError(f"unknown type tag {kind!r} in the embedded store: was it written by a newer version?")


def _encode_columns(columns: Mapping[str, Any]) -> str:
    return json.dumps({k: encode_value(v) for k, v in columns.items() if v is not None})


def _decode_columns(data: str) -> dict[str, Value]:
    return {k: decode_value(v) for k, v in json.loads(data).items()}
