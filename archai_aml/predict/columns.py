"""The status-row columns that issue 23 (predicted latency, continued training) adds, in one place.

Latency rows (the benchmark partition):

- ``latency_source``: ``"predicted"`` or ``"measured"``: where the latency the search got came from.
- ``predicted_mean`` / ``predicted_low`` / ``predicted_high``: the predictor's latency (ms) and its 10 % /
  90 % band; predicted rows never write ``mean`` (that column holds measurements only).
- ``predicted_by``: a description of the predictor (target, device, rows it was trained on).
- ``target`` / ``device``: the target name and device id of the runner that measured ``mean``.

Training rows:

- ``epochs_spent``: epochs actually trained for this model, over every job (continuations add theirs).
- ``checkpoint`` / ``checkpoint_epochs``: the store blob of the latest checkpoint and the epochs it holds.
- ``<metric>_at_<epochs>`` (e.g. ``val_iou_at_1``, ``val_iou_at_0_5``): the metric after that many epochs
  (``@`` cannot be in a column name of the table service, hence ``_at_``).
"""

from __future__ import annotations

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_EPOCHS",
    "EPOCHS_SPENT",
    "LATENCY_COLUMNS",
    "LATENCY_DEVICE",
    "LATENCY_SOURCE",
    "LATENCY_TARGET",
    "MEASURED",
    "PREDICTED",
    "PREDICTED_BY",
    "PREDICTED_HIGH",
    "PREDICTED_LOW",
    "PREDICTED_MEAN",
    "TRAINING_COLUMNS",
    "metric_at",
]

LATENCY_SOURCE = "latency_source"
PREDICTED = "predicted"
MEASURED = "measured"
PREDICTED_MEAN = "predicted_mean"
PREDICTED_LOW = "predicted_low"
PREDICTED_HIGH = "predicted_high"
PREDICTED_BY = "predicted_by"
LATENCY_TARGET = "target"
LATENCY_DEVICE = "device"
EPOCHS_SPENT = "epochs_spent"
CHECKPOINT = "checkpoint"
CHECKPOINT_EPOCHS = "checkpoint_epochs"

#: Every fixed column added to latency rows / training rows (for a typed row model).
LATENCY_COLUMNS = (
    LATENCY_SOURCE, PREDICTED_MEAN, PREDICTED_LOW, PREDICTED_HIGH, PREDICTED_BY, LATENCY_TARGET, LATENCY_DEVICE,
)  # fmt: skip
TRAINING_COLUMNS = (EPOCHS_SPENT, CHECKPOINT, CHECKPOINT_EPOCHS)


def metric_at(metric_key: str, epochs: float) -> str:
    """The column of ``metric_key`` after ``epochs`` epochs: ``val_iou_at_1``, ``val_iou_at_0_5``."""
    value = float(epochs)
    text = str(int(value)) if value.is_integer() else f"{value:g}".replace(".", "_").replace("-", "m")
    return f"{metric_key}_at_{text}"
