"""Work items of a status row and the priority queue a runner picks from.

A row moves through these work items (lower priority runs first; a row's own ``priority`` column
overrides the computed one, like the anchor's runner):

========================  ======================  =============================================
item                      priority                needs
========================  ======================  =============================================
``convert``               20                      convert + quantize + model info; not on runners
                                                  started with ``--no-quantization``
``benchmark`` run ``k``   ``30 + k``              a device (``k`` = runs already done)
``f1_onnx``               60                      nothing (onnxruntime on the float model)
``f1_1k``                 ``100 + mean``          a device (quantized model, 1k images)
``f1_1k_f``               ``100 + 10 * mean``     a device (float model on the target)
``f1_10k``                ``100 + 100 * mean``    a device (quantized model, 10k images)
========================  ======================  =============================================

:func:`build_queue` is a pure function of the rows (one query's answer) and the runner's capabilities,
so the scheduling rules are unit-tested without a store. Lists and shapes in rows are JSON, parsed with
:func:`json.loads` only, never evaluated.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from archai_aml.errors import InvalidRowError
from archai_aml.status_row import F1_COLUMNS as ROW_F1_COLUMNS
from archai_aml.store.base import Entity
from archai_aml.store.leases import lease_state, utcnow
from archai_aml.store.rules import as_float

__all__ = [
    "DEVICE_KINDS",
    "F1_COLUMNS",
    "KINDS",
    "Capabilities",
    "WorkItem",
    "benchmark_runs",
    "build_queue",
    "check_json_columns",
    "dead_lease_wait",
    "is_benchmark_only",
    "items_for_row",
    "mean_latency",
    "parse_json_list",
    "parse_shape",
]

PRIORITY_CONVERT = 20
PRIORITY_BENCHMARK = 30
PRIORITY_F1_ONNX = 60

#: Work-item kinds, in the order a row needs them.
KINDS = ("convert", "benchmark", "f1_onnx", "f1_1k", "f1_1k_f", "f1_10k")
#: Kinds that run on the target device (benchmarks and on-target F1 runs).
DEVICE_KINDS = frozenset({"benchmark", "f1_1k", "f1_1k_f", "f1_10k"})
#: The four F1 columns: a (non benchmark-only) row is complete when all are set.
F1_COLUMNS = ROW_F1_COLUMNS  # the status row's F1 columns, in the order runners measure them
#: Statuses a runner never picks up.
DONE_STATUSES = ("complete", "error")


@dataclass(frozen=True)
class Capabilities:
    """What one runner can do.

    ``use_device``: it may run device work (benchmarks, on-target F1). ``can_quantize``: it may convert and
    quantize (False with ``--no-quantization``, or while another process on this host holds the host's
    quantization lock). ``benchmark_only``: treat every row as benchmark-only. ``subset``: only these row
    names. ``max_benchmark_runs``: latency runs per row.
    """

    use_device: bool = True
    can_quantize: bool = True
    benchmark_only: bool = False
    max_benchmark_runs: int = 5
    subset: frozenset[str] | None = None


@dataclass(frozen=True, order=True)
class WorkItem:
    """One unit of work on one row. Sorts by (priority, name, kind order, run)."""

    priority: float
    name: str
    order: int
    run: int = 0
    kind: str = field(default="convert", compare=False)
    entity: Entity = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.run + 1}" if self.kind == "benchmark" else self.kind


def parse_json_list(entity: Entity, column: str) -> list[Any]:
    """A JSON list stored in ``column`` ([] when absent); :class:`InvalidRowError` when it is not one."""
    raw = entity.get(column)
    if raw is None or raw == "":
        return []
    if not isinstance(raw, str):
        raise InvalidRowError(f"row {entity.get('name')!r}: column {column!r} must be a JSON list string")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidRowError(
            f"row {entity.get('name')!r}: column {column!r} is not valid JSON ({exc}); "
            "store lists as JSON, e.g. [1.5, 1.6]"
        ) from None
    if not isinstance(value, list):
        raise InvalidRowError(f"row {entity.get('name')!r}: column {column!r} must hold a JSON list")
    return value


def parse_shape(entity: Entity) -> list[list[int]] | None:
    """The row's input shapes as a list of shapes (``[1,3,H,W]`` becomes ``[[1,3,H,W]]``), None if unset.

    Only JSON is accepted: a shape holding anything else (Python code included) raises
    :class:`InvalidRowError` and is never evaluated.
    """
    raw = entity.get("shape")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise InvalidRowError(f"row {entity.get('name')!r}: shape must be a JSON string, got {raw!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidRowError(
            f"row {entity.get('name')!r}: shape {raw[:80]!r} is not valid JSON; "
            "write it as a JSON list such as [1, 3, 256, 256]"
        ) from None
    shapes = value if value and isinstance(value, list) and isinstance(value[0], list) else [value]
    for shape in shapes:
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise InvalidRowError(
                f"row {entity.get('name')!r}: shape {raw[:80]!r} must be a list of positive integers "
                "or a list of such lists"
            )
    return shapes


def benchmark_runs(entity: Entity) -> int:
    """How many latency runs the row holds (length of ``total_inference_avg``; 0 when unreadable)."""
    try:
        return len(parse_json_list(entity, "total_inference_avg"))
    except InvalidRowError:
        return 0


def mean_latency(entity: Entity) -> float:
    """The row's mean latency in ms (its ``mean`` column, else the mean of its runs, else 0)."""
    mean = entity.get("mean")
    if isinstance(mean, (int, float)) and not isinstance(mean, bool) and math.isfinite(mean):
        return float(mean)
    try:
        runs = [float(x) for x in parse_json_list(entity, "total_inference_avg")]
    except (InvalidRowError, TypeError, ValueError):
        return 0.0
    return statistics.mean(runs) if runs else 0.0


def is_benchmark_only(entity: Entity, default: bool = False) -> bool:
    value = entity.get("benchmark_only")
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _converted(entity: Entity) -> bool:
    return entity.get("macs") is not None and bool(entity.get("quantized"))


def _priority_override(entity: Entity) -> float | None:
    return as_float(entity.get("priority"))


def items_for_row(entity: Entity, caps: Capabilities) -> list[WorkItem]:
    """Every work item this runner could do on the row now, best first (regardless of leases).

    The row's steps are ordered: nothing but ``convert`` before it is converted; on-target F1 runs after
    the benchmarks (their priority is the measured mean); ``f1_onnx`` as soon as the row is converted; a
    benchmark-only row stops after its benchmarks.
    """
    name = str(entity.get("name"))
    if entity.get("status") in DONE_STATUSES or entity.get("error"):
        return []
    override = _priority_override(entity)
    items: list[WorkItem] = []

    def add(priority: float, kind: str, run: int = 0) -> None:
        items.append(
            WorkItem(
                override if override is not None else priority,
                name,
                KINDS.index(kind),
                run,
                kind,
                entity,
            )
        )

    if not _converted(entity):
        if caps.can_quantize:
            add(PRIORITY_CONVERT, "convert")
        return items
    runs = benchmark_runs(entity)
    benchmarked = runs >= caps.max_benchmark_runs
    if not benchmarked and caps.use_device:
        add(PRIORITY_BENCHMARK + runs, "benchmark", runs)
    if is_benchmark_only(entity, caps.benchmark_only):
        return sorted(items)
    if entity.get("f1_onnx") is None:
        add(PRIORITY_F1_ONNX, "f1_onnx")
    if caps.use_device and benchmarked:  # their priority is the measured mean latency
        mean = mean_latency(entity)
        if entity.get("f1_1k") is None:
            add(100 + mean, "f1_1k")
        if entity.get("f1_1k_f") is None:
            add(100 + 10 * mean, "f1_1k_f")
        if entity.get("f1_10k") is None:
            add(100 + 100 * mean, "f1_10k")
    return sorted(items)


def build_queue(rows: Iterable[Entity], caps: Capabilities, now: datetime | None = None) -> list[WorkItem]:
    """The prioritized work of this runner: the best item of every row it may take now, best first.

    Rows that are complete, in error, outside ``caps.subset`` or leased by a live owner are left out. One
    item per row, since a row is leased as a whole (one work item of a row at a time).
    """
    now = now or utcnow()
    queue: list[WorkItem] = []
    for entity in rows:
        if caps.subset is not None and entity.get("name") not in caps.subset:
            continue
        _, live = lease_state(entity, now)
        if live:
            continue
        items = items_for_row(entity, caps)
        if items:
            queue.append(items[0])
    queue.sort()
    return queue


def subset_from_arg(value: str | Collection[str] | None) -> frozenset[str] | None:
    """``"a,b"`` or a collection of names as a frozenset (None when empty)."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else list(value)
    names = [n for n in names if n]
    return frozenset(names) or None


def dead_lease_wait(
    rows: Iterable[Entity],
    caps: Capabilities,
    seen: dict[str, tuple[str, datetime]],
    *,
    owner: str,
    now: datetime | None = None,
) -> float | None:
    """Seconds until the first lease that may belong to a dead runner expires, or None when there is none.

    Such a lease is held by another owner on a row with work for this runner, and was not renewed since
    this runner first saw it (``seen``: row name -> (lease token, expiry first seen), updated here). A lease
    that was renewed meanwhile has a live owner, who will do the work: it is not waited for. So a runner
    that exits when nothing is left waits at most one lease period for each lease.
    """
    now = now or utcnow()
    waits: list[float] = []
    for entity in rows:
        holder, live = lease_state(entity, now)
        name = str(entity.get("name"))
        if not live or holder == owner or (caps.subset is not None and name not in caps.subset):
            continue
        if not items_for_row(entity, caps):
            continue
        token, expires = str(entity.get("lease_token")), entity["lease_expires"]
        first = seen.setdefault(name, (token, expires))
        if first[0] == token and expires > first[1]:
            continue  # renewed since first seen: its owner is alive
        if first[0] != token:
            seen[name] = (token, expires)
        waits.append((expires - now).total_seconds())
    return max(0.0, min(waits)) if waits else None


def check_json_columns(entity: Entity) -> None:
    """Refuse a row whose JSON columns do not parse (:class:`InvalidRowError`), before any work on it:
    ``shape`` (see :func:`parse_shape`) and ``total_inference_avg`` (a list of finite numbers)."""
    parse_shape(entity)
    for value in parse_json_list(entity, "total_inference_avg"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidRowError(
                f"row {entity.get('name')!r}: column 'total_inference_avg' must be a JSON list of latencies "
                f"in ms, got the element {value!r}; fix or clear the column"
            )
