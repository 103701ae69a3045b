"""What the plots draw: a search's models as rows, read from a search's output folder, from a live status
table (either store backend) or from Archai's in-memory search state.

Every row of a :class:`SearchRows` is a dict with ``name`` (the model id, ``id_<archid>`` in the store,
the archid in an output folder), ``iteration`` (an int from 1: the search iteration that evaluated it)
and whatever columns its source has; :attr:`SearchRows.x` and :attr:`SearchRows.y` name the two columns
that are plotted against each other (latency and the partial-training metric).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from archai_aml.plots.pareto import numeric, pareto_front
from archai_aml.plots.rows import join_rows
from archai_aml.status_row import F1_PREFERENCE
from archai_aml.store.base import Store

__all__ = [
    "F1_COLUMNS",
    "SearchRows",
    "from_output",
    "from_records",
    "from_store",
    "join_rows",
    "number_iterations",
]

log = logging.getLogger(__name__)

#: F1 columns the runners write (on the ONNX model, on the target with 1k/10k images, float on target).
F1_COLUMNS = F1_PREFERENCE  # the status row's F1 columns, the preferred first


@dataclass
class SearchRows:
    """A search's models and how to plot them.

    Attributes:
        rows: one dict per model, each with ``name`` and ``iteration`` (int >= 1).
        x, y: the plotted columns (x: latency, lower is better; y: the metric, higher is better).
        maximize_x, maximize_y: the objectives' directions.
        x_label, y_label: axis labels.
        target_rows: rows that carry F1 on the target (default: those of ``rows`` with an F1 column).
        full_key: the column with the metric after full training.
        latency_key, stdev_key: latency and its relative standard deviation (percent of the mean) of the
            target rows.
    """

    rows: list[dict[str, Any]]
    x: str = "latency_ms"
    y: str = "val_iou"
    maximize_x: bool = False
    maximize_y: bool = True
    x_label: str = "latency (ms, lower is better)"
    y_label: str = "validation IoU (higher is better)"
    target_rows: list[dict[str, Any]] | None = None
    full_key: str = "final_val_iou"
    latency_key: str = "mean"
    stdev_key: str = "stdev"
    title: str = "search"

    @property
    def iterations(self) -> list[int]:
        """The iterations present, ascending."""
        return sorted({int(r["iteration"]) for r in self.rows})

    def plottable(self, up_to: int | None = None) -> list[dict[str, Any]]:
        """Rows with both plotted values, of iterations ``<= up_to`` (all when None)."""
        return [
            r
            for r in self.rows
            if numeric(r.get(self.x)) is not None
            and numeric(r.get(self.y)) is not None
            and (up_to is None or int(r["iteration"]) <= up_to)
        ]

    def front(self, up_to: int | None = None) -> list[dict[str, Any]]:
        """The 2-D Pareto front (of ``x`` and ``y``) of the models evaluated up to iteration ``up_to``,
        sorted by ``x``."""
        rows = self.plottable(up_to)
        points = [(numeric(r[self.x]) or 0.0, numeric(r[self.y]) or 0.0) for r in rows]
        idx = pareto_front(points, maximize=[self.maximize_x, self.maximize_y])
        return sorted((rows[i] for i in idx), key=lambda r: numeric(r[self.x]) or 0.0)

    def with_target(self) -> list[dict[str, Any]]:
        """Rows that carry an F1 column (``target_rows`` when given)."""
        source = self.rows if self.target_rows is None else self.target_rows
        return [r for r in source if any(numeric(r.get(c)) is not None for c in F1_COLUMNS)]

    def with_full_training(self) -> list[dict[str, Any]]:
        """Rows that carry both the partial-training metric and ``full_key``."""
        return [
            r
            for r in self.rows
            if numeric(r.get(self.y)) is not None and numeric(r.get(self.full_key)) is not None
        ]


def _iteration(value: Any) -> int | None:
    v = numeric(value)
    return int(v) if v is not None and v >= 1 and v == int(v) else None


def from_records(
    records: Iterable[Mapping[str, Any]], *, zero_based: bool = False, **options: Any
) -> SearchRows:
    """Rows from records with ``archid`` (or ``name``) and ``iteration`` (or Archai's 0-based
    ``iteration_num``, with ``zero_based``): ``results.csv`` rows, ``search_state_<i>.csv`` rows or
    ``SearchResults.get_search_state_df().to_dict("records")``. ``options`` are :class:`SearchRows` fields."""
    rows: list[dict[str, Any]] = []
    for rec in records:
        row = dict(rec)
        row["name"] = str(rec.get("name") or rec.get("archid"))
        raw = numeric(rec.get("iteration_num") if zero_based else rec.get("iteration"))
        it = _iteration(raw + 1 if zero_based and raw is not None else raw)
        if it is None:
            raise ValueError(f"model {row['name']}: no iteration in {sorted(rec)}")
        row["iteration"] = it
        rows.append(row)
    return SearchRows(rows, **options)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def from_output(folder: str | Path, **options: Any) -> SearchRows:
    """Rows of a search's output folder (``search.py --output``): Archai's newest
    ``search/search_state_<i>.csv`` (written after every iteration, so this works while the search runs),
    else ``results.csv`` (written at the end)."""
    folder = Path(folder)
    states = sorted(
        (
            p
            for p in (folder / "search").glob("search_state_*.csv")
            if re.fullmatch(r"search_state_\d+\.csv", p.name)
        ),
        key=lambda p: int(p.stem.rsplit("_", 1)[1]),
    )
    if states:
        return from_records(_read_csv(states[-1]), zero_based=True, **options)
    results = folder / "results.csv"
    if results.is_file():
        return from_records(_read_csv(results), **options)
    raise FileNotFoundError(
        f"{folder} holds neither search/search_state_<i>.csv nor results.csv: is it a search output?"
    )


def _started(row: Mapping[str, Any]) -> datetime | None:
    for key in ("training_start", "_timestamp"):
        value = row.get(key)
        if isinstance(value, datetime):
            return value
    return None


def _number_by_batch(rows: list[dict[str, Any]]) -> None:
    """Iterations from the training batches (one pipeline per iteration), ordered by when they started."""
    first: dict[str, datetime] = {}
    for r in rows:
        batch, when = str(r.get("batch", "")), _started(r)
        if when is not None and (batch not in first or when < first[batch]):
            first[batch] = when
    batches = {str(r.get("batch", "")) for r in rows}
    order = sorted(batches, key=lambda b: (b not in first, first[b].timestamp() if b in first else 0.0, b))
    number = {b: i + 1 for i, b in enumerate(order)}
    for r in rows:
        r["iteration"] = number[str(r.get("batch", ""))]


def number_iterations(rows: list[dict[str, Any]]) -> None:
    """Set every row's ``iteration``: its ``iteration`` column when every row has one (``search.py`` writes
    it after each iteration), else numbered by training batch (see :func:`from_store`)."""
    if rows and all(_iteration(r.get("iteration")) is not None for r in rows):
        for r in rows:
            r["iteration"] = _iteration(r["iteration"])
    else:
        _number_by_batch(rows)


def from_store(
    store: Store,
    experiment: str,
    *,
    latency_experiment: str | None = None,
    target_experiment: str | None = None,
    metric_key: str = "val_iou",
    latency_key: str = "mean",
    **options: Any,
) -> SearchRows:
    """Rows of a live experiment: the training rows of ``experiment`` joined by name with the latency rows
    of ``latency_experiment`` (default ``<experiment>-latency``; the training row's columns win). One
    store query per partition.

    Only rows with ``metric_key`` are kept (a model still training is not drawn yet). The iteration is the
    rows' ``iteration`` column (``search.py`` writes it after each iteration); when a
    row lacks it, every row is numbered by its training batch instead (one pipeline per iteration, batches
    ordered by their first ``training_start``). F1 rows come from ``target_experiment`` when given, else
    from the joined rows that carry an F1 column. A row whose latency was predicted (``latency_source``
    ``predicted``, see :mod:`archai_aml.predict.columns`) is drawn at its ``predicted_mean``, marked.
    """
    joined = join_rows(store.query(p) for p in (experiment, latency_experiment or f"{experiment}-latency"))
    rows = [
        r
        for r in joined.values()
        if r.get("partition") == experiment and numeric(r.get(metric_key)) is not None
    ]
    for r in rows:  # a predicted latency is drawn (marked) where the row has no measurement
        if r.get("latency_source") == "predicted" and numeric(r.get(latency_key)) is None:
            r[latency_key] = r.get("predicted_mean")
    if len(rows) < len(joined):
        log.info(
            "from_store: %d rows without a training row or %s left out", len(joined) - len(rows), metric_key
        )
    number_iterations(rows)
    target_rows = list(store.query(target_experiment)) if target_experiment else None
    options.setdefault("x", latency_key)
    options.setdefault("y", metric_key)
    options.setdefault("latency_key", latency_key)
    options.setdefault("title", experiment)
    if metric_key != "val_iou":
        options.setdefault("y_label", f"{metric_key} (higher is better)")
        options.setdefault("full_key", f"final_{metric_key}")
    return SearchRows(rows, target_rows=target_rows, **options)
