"""What the dashboard shows, read from the store with a fixed number of requests per refresh.

:func:`read_snapshot` is one refresh of one experiment: ``partitions()``, one ``query`` of the experiment,
one of its latency partition (``<experiment>-latency``, when the store holds it), one ``query`` of the
runners' heartbeat table per partition, and the device-usage table as ``archai-aml usage`` reads it (one
``partitions()`` and one ``query`` per device). Whatever the number of rows, no row is read on its own.
:func:`build_snapshot` turns those answers into JSON-ready data (a pure function: the rules are
unit-tested without a store) with the code the terminal commands use: the columns of ``archai-aml status``
(:func:`~archai_aml.store.cli.table_columns`), the rows joined and numbered as
:func:`archai_aml.plots.from_store` does, heartbeats judged by
:func:`~archai_aml.runner.settings.runner_alive`, usage by :func:`~archai_aml.runner.usage.utilization`.

Every value is sent as data (numbers, or strings taken as text by the page), never as markup.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from archai_aml.plots.data import join_rows, number_iterations
from archai_aml.plots.pareto import numeric
from archai_aml.runner.settings import runner_alive, runners_store
from archai_aml.runner.usage import DayUsage, usage_store, utilization
from archai_aml.status_row import LATENCY_COLUMNS as ROW_LATENCY_COLUMNS
from archai_aml.store.base import Entity, Store
from archai_aml.store.cli import format_value, sort_key, table_columns
from archai_aml.store.leases import utcnow

__all__ = [
    "LATENCY_COLUMNS",
    "LOG_COLUMNS",
    "build_snapshot",
    "figure_marks",
    "partner_of",
    "read_model",
    "read_snapshot",
]

#: Columns that hold latency figures (the status row's and the search's ``latency_ms``): the ones
#: ``latency_simulated`` and ``latency_source`` speak of.
LATENCY_COLUMNS = ROW_LATENCY_COLUMNS | {"latency_ms"}
#: Row columns that may name a log (the first present is shown beside a failure).
LOG_COLUMNS = ("log_path", "log", "logs", "log_blob")
#: Numeric columns that are bookkeeping, not objectives (left out of the front's axis choices).
NOT_OBJECTIVES = frozenset({"iteration", "priority", "lease_expires"})


def partner_of(experiment: str, partitions: Sequence[str]) -> str | None:
    """The latency partition read with ``experiment`` (``<experiment>-latency``) when the store holds it."""
    partner = f"{experiment}-latency"
    return partner if partner in partitions and partner != experiment else None


def _iso(value: Any) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if isinstance(value, datetime) else None


def _sortable(value: Any) -> list[Any]:
    """:func:`archai_aml.store.cli.sort_key` as JSON: ``[rank, number or text]``."""
    rank, key = sort_key(value)
    return [rank, key if isinstance(key, (int, float)) else str(key)]


def figure_marks(row: Entity) -> dict[str, str]:
    """Column -> ``"predicted"`` or ``"simulated"`` for the figures of ``row`` that are not measured on the
    hardware: from its ``sources`` column (JSON, column -> where the figure came from, as runners write it),
    ``latency_source == "predicted"`` and ``latency_simulated`` (both about :data:`LATENCY_COLUMNS`)."""
    marks: dict[str, str] = {}
    try:
        sources = json.loads(row.get("sources") or "{}")
    except (TypeError, ValueError):
        sources = {}
    for column, text in sources.items() if isinstance(sources, dict) else ():
        low = str(text).lower()
        if "predict" in low:
            marks[str(column)] = "predicted"
        elif "simulat" in low or "emulat" in low:
            marks[str(column)] = "simulated"
    if row.get("latency_simulated") is True:
        marks.update(dict.fromkeys(LATENCY_COLUMNS & row.keys(), "simulated"))
    if str(row.get("latency_source", "")).lower() == "predicted":
        marks.update(dict.fromkeys(LATENCY_COLUMNS & row.keys(), "predicted"))
    return marks


def _status_table(rows: list[Entity]) -> dict[str, Any]:
    columns = table_columns(rows)
    return {
        "columns": columns,
        "rows": [
            {
                "name": str(r.get("name")),
                "status": str(r.get("status") or ""),
                "cells": [format_value(r.get(c)) for c in columns],
                "keys": [_sortable(r.get(c)) for c in columns],
            }
            for r in rows
        ],
    }


def _models(experiment: str, rows: list[Entity], partner_rows: list[Entity]) -> list[dict[str, Any]]:
    """The experiment's models (its rows joined by name with the latency rows, numbered by iteration) with
    their numeric columns and the marks of their figures."""
    joined = [r for r in join_rows([rows, partner_rows]).values() if r.get("partition") == experiment]
    number_iterations(joined)
    models = []
    for r in joined:
        values = {
            k: v
            for k, v in ((k, numeric(v)) for k, v in r.items() if not k.startswith("_"))
            if v is not None and k not in NOT_OBJECTIVES and not isinstance(r[k], bool)
        }
        models.append(
            {
                "name": str(r["name"]),
                "iteration": int(r["iteration"]),
                "status": str(r.get("status") or ""),
                "values": values,
                "marks": figure_marks(r),
            }
        )
    return models


def _runners(
    heartbeats: list[Entity], rows: list[Entity], now: datetime, dead_after_s: float
) -> list[dict[str, Any]]:
    held: dict[str, list[dict[str, Any]]] = {}
    done: Counter[tuple[str, str]] = Counter()  # by (partition, node): a runner works on one partition
    failed: Counter[tuple[str, str]] = Counter()
    for r in rows:
        expires = r.get("lease_expires")
        if r.get("lease_owner") and isinstance(expires, datetime) and expires > now:
            held.setdefault(str(r["lease_owner"]), []).append(
                {"partition": str(r.get("partition")), "name": str(r["name"]), "expires": _iso(expires)}
            )
        where = (str(r.get("partition")), str(r.get("node") or ""))
        if where[1] and r.get("status") == "complete":
            done[where] += 1
        elif where[1] and (r.get("status") == "error" or r.get("error")):
            failed[where] += 1
    out = []
    for hb in heartbeats:
        owner, node = str(hb["name"]), str(hb.get("node") or "")
        state = str(hb.get("state") or "")
        alive = runner_alive(hb, now, within=dead_after_s)
        out.append(
            {
                "owner": owner,
                "partition": str(hb.get("partition")),
                "node": node,
                "target": str(hb.get("target") or ""),
                "device": str(hb.get("device") or ""),
                "state": state,
                "item": str(hb.get("item") or ""),
                "last_seen": _iso(hb.get("last_seen")),
                "presumed_dead": not alive and state != "stopped",
                "holds": held.get(owner, []),
                "done": done[(str(hb.get("partition")), node)],
                "failed": failed[(str(hb.get("partition")), node)],
            }
        )
    return out


def _failures(rows: list[Entity]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if r.get("status") != "error" and not r.get("error"):
            continue
        log_column = next((c for c in LOG_COLUMNS if r.get(c)), None)
        out.append(
            {
                "partition": str(r.get("partition")),
                "name": str(r["name"]),
                "status": str(r.get("status") or ""),
                "error": str(r.get("error") or ""),
                "log": str(r[log_column]) if log_column else "",
            }
        )
    return out


def _usage(usage: list[DayUsage]) -> list[dict[str, Any]]:
    return [
        {
            "device": u.device,
            "day": u.day.isoformat() if u.day else "window",
            "items": u.items,
            "busy_h": round(u.busy_s / 3600, 4),
            "utilization": round(u.utilization, 4),
        }
        for u in usage
    ]


def build_snapshot(
    experiment: str,
    partitions: Sequence[str],
    rows: list[Entity],
    partner_rows: list[Entity],
    heartbeats: list[Entity],
    usage: list[DayUsage],
    *,
    partner: str | None,
    dead_after_s: float,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The dashboard's data of ``experiment`` from one refresh's answers (see :func:`read_snapshot`)."""
    now = now or utcnow()
    models = _models(experiment, rows, partner_rows)
    return {
        "experiment": experiment,
        "partner": partner,
        "experiments": list(partitions),
        "counts": dict(sorted(Counter(str(r.get("status") or "(none)") for r in rows).items())),
        "iterations": max((m["iteration"] for m in models), default=0),
        "table": _status_table(rows),
        "models": models,
        "runners": _runners(heartbeats, rows + partner_rows, now, dead_after_s),
        "failures": _failures(rows + partner_rows),
        "usage": _usage(usage),
        "dead_after_s": dead_after_s,
    }


def read_snapshot(
    store: Store,
    experiment: str,
    *,
    dead_after_s: float,
    runners: Store | None = None,
    usage: Store | None = None,
) -> dict[str, Any]:
    """One refresh of ``experiment``: a fixed number of store requests, whatever the number of rows.

    ``runners`` and ``usage``: the heartbeat and usage tables (:func:`runners_store`, :func:`usage_store`
    of ``store``), kept by a caller that refreshes often (a new Azure table client asks the service to
    create its table on its first request)."""
    partitions = store.partitions()
    partner = partner_of(experiment, partitions)
    rows = store.query(experiment)
    partner_rows = store.query(partner) if partner else []
    runners = runners or runners_store(store)
    heartbeats = runners.query(experiment) + (runners.query(partner) if partner else [])
    days = utilization(usage or usage_store(store))
    return build_snapshot(
        experiment,
        partitions,
        rows,
        partner_rows,
        heartbeats,
        days,
        partner=partner,
        dead_after_s=dead_after_s,
    )


def _artifact_kind(blob: str) -> str:
    low = blob.lower()
    if low.endswith((".log", ".txt")) or "/logs/" in f"/{low}" or low.startswith("log"):
        return "log"
    if "quant" in low:
        return "quantized"
    if low.endswith(".onnx") or low.endswith(".dlc") or low.endswith(".bin"):
        return "model"
    return "other"


def read_model(store: Store, experiment: str, name: str) -> dict[str, Any] | None:
    """One model's page: its row in ``experiment`` and in ``<experiment>-latency`` (every column, as text),
    where each figure came from (``sources``) and its stored blobs; None when neither row exists. Four store
    requests (two reads, two blob listings)."""
    parts = []
    sources: dict[str, str] = {}
    blobs = []
    for partition in (experiment, f"{experiment}-latency"):
        row = store.get(partition, name)
        if row is None:
            continue
        try:
            found = json.loads(row.get("sources") or "{}")
        except (TypeError, ValueError):
            found = {}
        if isinstance(found, dict):
            for column, text in found.items():
                sources.setdefault(str(column), str(text))
        parts.append(
            {
                "partition": partition,
                "columns": [[k, format_value(v)] for k, v in row.items() if k not in ("lease_token",)],
                "marks": figure_marks(row),
            }
        )
        for blob in store.list_blobs(partition, name):
            blobs.append({"partition": partition, "blob": blob, "kind": _artifact_kind(blob)})
    if not parts:
        return None
    return {"experiment": experiment, "name": name, "rows": parts, "sources": sources, "blobs": blobs}
