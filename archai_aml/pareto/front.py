"""The Pareto models of a finished search, from its output folder or from the status table.

A search run by ``examples/face_segmentation/search.py`` leaves ``pareto.json`` in its output folder (the
front of its objectives, each model with its metrics and ``arch_config``). The status table alone holds the
same facts: the training partition (``<experiment>``, a ``val_iou`` per complete row, the ArchConfig JSON
as the blob ``<model_id>/<model_id>.json``) and the latency partition (``<experiment>-latency``, a ``mean``
per complete row); :func:`front_from_store` joins them and keeps the non-dominated rows.

Stored files are read as JSON only, never evaluated.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archai_aml.errors import ConfigError, InvalidRowError
from archai_aml.pipelines.training import model_id_for
from archai_aml.plots.pareto import pareto_front
from archai_aml.store.base import Entity, Store
from archai_aml.store.rules import as_float

__all__ = [
    "ParetoModel",
    "front_from_output",
    "front_from_store",
    "load_front",
    "front_of_rows",
]

log = logging.getLogger(__name__)

#: The objectives of the face-segmentation search as columns: name -> higher is better.
DEFAULT_OBJECTIVES: Mapping[str, bool] = {"val_iou": True, "latency_ms": False}


@dataclass
class ParetoModel:
    """One model of the front: its archid, the status-row name (``id_<archid>``), ArchConfig and metrics."""

    archid: str
    arch_config: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return model_id_for(self.archid)

    @property
    def metadata(self) -> dict[str, Any]:
        """What :func:`archai_aml.pipelines.training.arch_config_json` reads (``metadata['config']``)."""
        return {"config": self.arch_config} if self.arch_config is not None else {}


def front_of_rows(rows: Sequence[Mapping[str, Any]], objectives: Mapping[str, bool]) -> list[int]:
    """Indices of the rows no other row dominates on ``objectives`` (column -> higher is better), by the one
    :func:`~archai_aml.plots.pareto.pareto_front`.

    A row missing an objective (or holding a non-finite value) is never on the front.
    """
    kept: list[int] = []
    points: list[list[float]] = []
    for i, row in enumerate(rows):
        values = [as_float(row.get(k)) for k in objectives]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if len(finite) == len(values):
            kept.append(i)
            points.append(finite)
    return [kept[j] for j in pareto_front(points, maximize=list(objectives.values()))]


def front_from_output(output: str | Path) -> list[ParetoModel]:
    """The models of ``<output>/pareto.json`` (written by the search example), in its order."""
    path = Path(output) / "pareto.json"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: give the output folder of a finished search (--output)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}): run the search again to rewrite it") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise ConfigError(f"{path} has no 'models' list")
    out = []
    for entry in models:
        if not isinstance(entry, dict) or not isinstance(entry.get("archid"), str):
            raise ConfigError(f"{path}: every model needs an 'archid' string, got {entry!r:.80}")
        config = entry.get("arch_config")
        metrics = {k: v for k, v in entry.items() if k not in ("archid", "arch_config")}
        out.append(ParetoModel(entry["archid"], config if isinstance(config, dict) else None, metrics))
    return out


def _arch_config(store: Store, experiment: str, model_id: str) -> dict[str, Any] | None:
    blob = f"{model_id}.json"
    try:
        value = json.loads(store.download_bytes(experiment, model_id, blob))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise InvalidRowError(f"{experiment}/{model_id}/{blob} is not valid JSON: {exc}") from None
    return value if isinstance(value, dict) else None


def front_from_store(
    store: Store,
    experiment: str,
    *,
    latency_experiment: str | None = None,
    metric_key: str = "val_iou",
    latency_key: str = "mean",
) -> list[ParetoModel]:
    """The front of ``metric_key`` (higher is better) against latency (lower is better) from the status table.

    Rows of ``experiment`` that are ``complete`` with ``metric_key`` are joined by name with the complete
    rows of ``latency_experiment`` (default ``<experiment>-latency``); the front is sorted by latency.
    """
    latency_experiment = latency_experiment or f"{experiment}-latency"
    trained = {
        str(r["name"]): r
        for r in store.query(experiment, status="complete")
        if as_float(r.get(metric_key)) is not None
    }
    measured: dict[str, Entity] = {
        str(r["name"]): r for r in store.query(latency_experiment, status="complete")
    }
    joined: list[dict[str, Any]] = []
    for name, row in trained.items():
        lat = measured.get(name)
        if lat is None or as_float(lat.get(latency_key)) is None:
            continue
        joined.append(
            {
                "name": name,
                "archid": str(row.get("archid") or name.removeprefix("id_")),
                metric_key: as_float(row.get(metric_key)),
                "latency_ms": as_float(lat.get(latency_key)),
                "params": lat.get("params"),
            }
        )
    if not joined:
        raise ConfigError(
            f"no model of experiment {experiment!r} has both {metric_key!r} and a latency in "
            f"{latency_experiment!r}: is this the experiment of a finished search?"
        )
    picked = [joined[i] for i in front_of_rows(joined, {metric_key: True, "latency_ms": False})]
    picked.sort(key=lambda r: r["latency_ms"])
    models = []
    for r in picked:
        config = _arch_config(store, experiment, r["name"])
        metrics = {k: v for k, v in r.items() if k not in ("name", "archid")}
        models.append(ParetoModel(r["archid"], config, metrics))
    log.info(
        "Pareto front of %s from the status table: %d of %d models", experiment, len(models), len(joined)
    )
    return models


def load_front(
    store: Store,
    experiment: str,
    output: str | Path | None = None,
    *,
    latency_experiment: str | None = None,
) -> list[ParetoModel]:
    """The search's front: ``<output>/pareto.json`` when ``output`` is given, else from the status table.

    Models whose ArchConfig is not in ``pareto.json`` get it from the store blob the training pipeline wrote.
    """
    if output is None:
        return front_from_store(store, experiment, latency_experiment=latency_experiment)
    models = front_from_output(output)
    for m in models:
        if m.arch_config is None:
            m.arch_config = _arch_config(store, experiment, m.model_id)
    return models
