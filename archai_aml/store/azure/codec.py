"""The Azure store's encoding: OData filters and literals, Table entity values to and from store values."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import unquote

from azure.data.tables import EdmType, EntityProperty

from archai_aml.store.base import Entity, Value
from archai_aml.store.rules import to_utc, user_columns

T = TypeVar("T")

#: The Table service evaluates at most this many comparisons in one ``$filter``.
MAX_FILTER_COMPARISONS = 15
#: Rows per page of a query; the service returns at most 1000 per request.
RESULTS_PER_PAGE = 1000

_INT64 = (-(2**63), 2**63 - 1)


# ------------------------------------------------------------------------------------------- OData
def odata_literal(value: Value) -> str:
    """``value`` as an OData literal of the type this store writes (strings quoted, quotes doubled)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}L"  # every int column is Edm.Int64; an Int32 literal would never match it
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"cannot filter on {value!r}: NaN and infinities are not comparable")
        text = repr(value)
        return text if any(c in text for c in ".eE") else text + ".0"
    if isinstance(value, datetime):
        return "datetime'" + to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot filter on a {type(value).__name__}")


def _column(name: str) -> str:
    if name == "partition":
        return "PartitionKey"
    if name == "name":
        return "RowKey"
    user_columns({name: None})  # validates the identifier
    return name


def odata_filter(
    partition: str,
    *,
    status: frozenset[str] | None = None,
    status_not: frozenset[str] | None = None,
    names: Sequence[str] | None = None,
    where: Mapping[str, Value] | None = None,
) -> tuple[str, int]:
    """(filter, number of comparisons) for one query of :meth:`AzureStore.query`."""
    clauses = [f"PartitionKey eq {odata_literal(partition)}"]
    count = 1
    if status is not None:
        clauses.append("(" + " or ".join(f"status eq {odata_literal(s)}" for s in sorted(status)) + ")")
        count += len(status)
    if status_not:
        # ``not (... eq ...)`` so that rows without a status column match too
        clauses.append(
            "not (" + " or ".join(f"status eq {odata_literal(s)}" for s in sorted(status_not)) + ")"
        )
        count += len(status_not)
    for key, value in (where or {}).items():
        clauses.append(f"{_column(key)} eq {odata_literal(value)}")
        count += 1
    if names is not None:
        clauses.append("(" + " or ".join(f"RowKey eq {odata_literal(n)}" for n in names) + ")")
        count += len(names)
    return " and ".join(clauses), count


# -------------------------------------------------------------------------------------- conversions
def _plain_datetime(value: datetime) -> datetime:
    """A plain ``datetime`` in UTC (the SDK returns a ``TablesEntityDatetime`` subclass)."""
    value = to_utc(value)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=timezone.utc,
    )


def _to_table(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or isinstance(value, str):
            out[key] = value
        elif isinstance(value, int):
            if not _INT64[0] <= value <= _INT64[1]:
                raise ValueError(f"column {key!r}: {value} does not fit in a signed 64-bit integer")
            out[key] = EntityProperty(value, EdmType.INT64)
        elif isinstance(value, float):
            out[key] = EntityProperty(value, EdmType.DOUBLE)
        elif isinstance(value, datetime):
            out[key] = to_utc(value)
        else:  # user_columns() has already rejected other types
            raise TypeError(f"column {key!r}: cannot store a {type(value).__name__}")
    return out


def _from_table_value(value: Any) -> Any:
    if isinstance(value, EntityProperty):
        value = value.value
        return _plain_datetime(value) if isinstance(value, datetime) else value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value  # a bare JSON integer is an Edm.Int32 (see the module doc)
    if isinstance(value, datetime):
        return _plain_datetime(value)
    return value


_ETAG_TIME = re.compile(r"datetime'([^']+)'")


def _timestamp_from_etag(etag: str | None) -> datetime | None:
    """The ``Timestamp`` an ETag encodes (``W/"datetime'2024-01-01T00%3A00%3A00.1234567Z'"``)."""
    match = _ETAG_TIME.search(etag or "")
    if not match:
        return None
    text = unquote(match.group(1)).rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6].ljust(6, '0')}"
        fmt = "%Y-%m-%dT%H:%M:%S.%f"
    else:
        fmt = "%Y-%m-%dT%H:%M:%S"
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _entity_from_table(raw: Mapping[str, Any]) -> Entity:
    metadata = getattr(raw, "metadata", {}) or {}
    entity: Entity = {"partition": raw["PartitionKey"], "name": raw["RowKey"]}
    for key, value in raw.items():
        if key in ("PartitionKey", "RowKey", "Timestamp"):
            continue
        entity[key] = _from_table_value(value)
    etag = metadata.get("etag")
    entity["_version"] = etag
    stamp = metadata.get("timestamp")
    entity["_timestamp"] = (
        _plain_datetime(stamp) if isinstance(stamp, datetime) else _timestamp_from_etag(etag)
    )
    return entity


def _written(partition: str, name: str, values: Mapping[str, Any], response: Mapping[str, Any]) -> Entity:
    etag = response.get("etag")
    entity: Entity = {"partition": partition, "name": name}
    entity.update({k: _plain_datetime(v) if isinstance(v, datetime) else v for k, v in values.items()})
    entity["_version"] = etag
    entity["_timestamp"] = _timestamp_from_etag(etag) or datetime.now(timezone.utc)
    return entity


def _status_of(call: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, int | None]:
    """Run an SDK call and return (result, HTTP status of its last response)."""
    seen: dict[str, int] = {}

    def hook(response: Any) -> None:
        seen["status"] = response.http_response.status_code

    result = call(*args, raw_response_hook=hook, **kwargs)
    return result, seen.get("status")
