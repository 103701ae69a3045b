"""The status row: one definition of its columns, their types and meanings (like Optuna's ``FrozenTrial``).

A row of the status table is what every part reads and writes: the evaluators create it, training jobs and
runners fill it, ``plots/`` and ``pareto/`` read it. :class:`StatusRow` declares each column archai-aml
knows, with its type, its meaning, who writes it and whether measuring a model again clears it; the derived
sets (:data:`RESET_COLUMNS`, :data:`F1_COLUMNS`, :data:`TARGET_F1_COLUMNS`, :data:`LATENCY_COLUMNS`,
:func:`status_columns`) and docs/store.md's column table (:func:`columns_table`) come from it. A column
archai-aml does not know (a user's target or training script may add any) is allowed and round-trips:
:meth:`StatusRow.from_entity` keeps it and :meth:`StatusRow.values` writes it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "F1_COLUMNS",
    "F1_PREFERENCE",
    "HIDDEN_COLUMNS",
    "LATENCY_COLUMNS",
    "RESET_COLUMNS",
    "TARGET_F1_COLUMNS",
    "StatusRow",
    "columns_table",
    "status_columns",
]

Group = Literal["key", "state", "training", "benchmark", "lease"]


def _col(
    meaning: str, group: Group, by: str, *, reset: bool = False, f1: int = 0, alias: str | None = None
) -> Any:
    """A column: ``reset`` when measuring a model again clears it, ``f1`` its rank among the F1 columns
    (1: the figure plots and the Pareto front prefer; 0: not an F1 column)."""
    extra: dict[str, Any] = {"group": group, "written_by": by, "reset": reset, "f1": f1}
    return Field(default=None, description=meaning, alias=alias, json_schema_extra=extra)


class StatusRow(BaseModel):
    """One row of the status table, keyed by (partition = experiment, name = model id)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    # the key and what the store fills
    partition: str | None = _col("the experiment (partition of the table)", "key", "the store")
    name: str | None = _col("the model id (`id_<archid>`)", "key", "the store")
    version: str | None = _col(
        "the row's version for compare-and-swap (an ETag)", "key", "the store", alias="_version"
    )
    timestamp: datetime | None = _col("when the row was last written", "key", "the store", alias="_timestamp")
    # where the row is
    status: str | None = _col(
        "`new`, `preparing`, `training`, `complete`, `failed`, `error`, or a runner's step (`converting`, ...)",
        "state", "evaluators, training jobs, runners",
    )  # fmt: skip
    message: str | None = _col(
        "what last happened to the row, and where", "state", "runners, the benchmark evaluator"
    )
    error: str | None = _col(
        "why the row failed (cleared when it is measured again)", "state", "everyone", reset=True
    )
    priority: float | int | None = _col(
        "queue priority (lower first)", "state", "`archai-aml upload`, users", reset=True
    )
    batch: str | None = _col("the evaluator batch that last asked for the row", "state", "evaluators")
    # training
    archid: str | None = _col("Archai's architecture id", "training", "the training pipeline")
    epochs: float | int | None = _col(
        "epochs of partial training asked for", "training", "the training pipeline"
    )
    pipeline_id: str | None = _col("the Azure ML (or local) pipeline job", "training", "the training job")
    job_id: str | None = _col("the training job of this row", "training", "the training job")
    node: str | None = _col(
        "the host that trained or measured the row last", "training", "training jobs, runners"
    )
    training_start: datetime | None = _col("when training started", "training", "the training job")
    training_end: datetime | None = _col("when training ended", "training", "the training job")
    training_time: float | int | None = _col("seconds of training", "training", "the training job")
    # benchmarking
    shape: str | None = _col(
        "input shape(s) as JSON (`[1, 3, 256, 256]`)", "benchmark", "the benchmark evaluator"
    )
    model_name: str | None = _col("the model's blob (`model.onnx`)", "benchmark", "the benchmark evaluator")
    model_date: datetime | None = _col("when the model was uploaded", "benchmark", "the benchmark evaluator")
    benchmark_only: bool | None = _col(
        "convert and benchmark only (no F1 runs)", "benchmark", "the benchmark evaluator"
    )
    mean: float | int | None = _col(
        "latency, ms per inference (mean of the benchmark runs)", "benchmark", "runners", reset=True
    )
    stdev: float | int | None = _col(
        "spread of the benchmark runs, % of `mean`", "benchmark", "runners", reset=True
    )
    total_inference_avg: float | int | None = _col(
        "mean latency of all runs, ms", "benchmark", "runners", reset=True
    )
    median: float | int | None = _col(
        "latency, ms per inference (median of the benchmark runs' medians)",
        "benchmark",
        "runners",
        reset=True,
    )
    min: float | int | None = _col(
        "latency, ms: the fastest single inference over all benchmark runs (steadiest on a shared host)",
        "benchmark", "runners", reset=True,
    )  # fmt: skip
    total_inference_median: float | int | None = _col(
        "median latency of all runs, ms", "benchmark", "runners", reset=True
    )
    latency_simulated: bool | None = _col(
        "the latency comes from a simulator (the x86-64 QNN HTP emulator)", "benchmark", "runners", reset=True
    )
    macs: int | None = _col("multiply-accumulates of the model", "benchmark", "runners", reset=True)
    params: int | None = _col("parameters of the model", "benchmark", "runners", reset=True)
    quantized: bool | None = _col("the target's model is quantized", "benchmark", "runners", reset=True)
    converted_model: str | None = _col("blob of the converted model", "benchmark", "runners", reset=True)
    quantized_model: str | None = _col("blob of the quantized model", "benchmark", "runners", reset=True)
    f1_onnx: float | None = _col(
        "F1 of the float ONNX model on onnxruntime's CPU provider", "benchmark", "runners", reset=True, f1=4
    )
    f1_1k: float | None = _col(
        "F1 of the target's model on 1k images", "benchmark", "runners", reset=True, f1=1
    )
    f1_1k_f: float | None = _col(
        "F1 of the converted (float) model on the target's CPU path, 1k images", "benchmark", "runners",
        reset=True, f1=3,
    )  # fmt: skip
    f1_10k: float | None = _col(
        "F1 of the target's model on 10k images", "benchmark", "runners", reset=True, f1=2
    )
    sources: str | None = _col(
        "where each figure came from (JSON: column -> tool, device)", "benchmark", "runners"
    )
    completed: datetime | None = _col("when the runner finished the row", "benchmark", "runners", reset=True)
    # leases
    lease_owner: str | None = _col("the runner holding the row", "lease", "runners")
    lease_token: str | None = _col(
        "the lease's secret token (hidden by `archai-aml status`)", "lease", "runners"
    )
    lease_expires: datetime | None = _col("when the lease expires unless renewed", "lease", "runners")

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> StatusRow:
        """A row read from the store (known columns typed, unknown ones kept as they are)."""
        return cls.model_validate(dict(entity))

    def values(self) -> dict[str, Any]:
        """The row's columns by their stored names (``_version``...), None left out, unknown ones included."""
        return self.model_dump(by_alias=True, exclude_none=True)


def _extra(name: str) -> dict[str, Any]:
    extra = StatusRow.model_fields[name].json_schema_extra
    assert isinstance(extra, dict)
    return extra


def _stored(name: str) -> str:
    return StatusRow.model_fields[name].alias or name


#: Result columns cleared when a model is measured again (the benchmark evaluator).
RESET_COLUMNS = tuple(_stored(n) for n in StatusRow.model_fields if _extra(n)["reset"])
#: Every F1 column, in the order a runner measures them.
F1_COLUMNS = tuple(n for n in StatusRow.model_fields if _extra(n)["f1"])
#: The F1 columns, the one plots and the Pareto front prefer first.
F1_PREFERENCE = tuple(sorted(F1_COLUMNS, key=lambda n: int(_extra(n)["f1"])))
#: The F1 columns measured on the target (all but the float ONNX run on the CPU), preferred first.
TARGET_F1_COLUMNS = tuple(c for c in F1_PREFERENCE if c != "f1_onnx")
#: Columns that hold latency figures (what ``latency_simulated`` is about).
LATENCY_COLUMNS = frozenset(
    {"mean", "stdev", "total_inference_avg", "median", "min", "total_inference_median"}
)
#: Columns ``archai-aml status`` hides unless named.
HIDDEN_COLUMNS = ("lease_token", "_version", "_timestamp", "partition")


def status_columns(rows: Any, wanted: Any = None) -> list[str]:
    """The columns of ``archai-aml status``: ``wanted`` as given, else name and status, then the known
    columns the rows hold in :class:`StatusRow`'s order, then unknown ones in the order they appear."""
    if wanted:
        return list(wanted)
    rows = list(rows)
    present = {key for row in rows for key in row}
    known = [_stored(n) for n in StatusRow.model_fields]
    columns = ["name", "status"] + [c for c in known if c in present and c not in ("name", "status")]
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return [c for c in columns if c not in HIDDEN_COLUMNS or c in ("name", "status")]


def columns_table() -> str:
    """The Markdown table of the columns (docs/store.md, between its ``status-row`` markers)."""
    lines = ["| column | type | group | written by | measured again | meaning |", "|---|---|---|---|---|---|"]
    for name, info in StatusRow.model_fields.items():
        extra = _extra(name)
        kind = str(info.annotation).replace("datetime.datetime", "datetime").replace(" | None", "")
        cleared = "cleared" if extra["reset"] else ""
        lines.append(
            f"| `{_stored(name)}` | {kind} | {extra['group']} | {extra['written_by']} | {cleared} | {info.description} |"
        )
    return "\n".join(lines) + "\n"
