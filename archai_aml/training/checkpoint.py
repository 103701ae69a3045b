"""Continued training: a model trained for fewer epochs than asked continues from its stored checkpoint.

After a training job the script saves the weights with :meth:`TrainingJob.save_checkpoint
<archai_aml.training.job.TrainingJob.save_checkpoint>`: the blob ``checkpoint_e<epochs>.pt`` of the model's
folder in the store; the row's ``checkpoint``/``checkpoint_epochs`` columns name it in the same write that
sets ``complete`` (so a row never names a checkpoint that is not fully uploaded). When the same architecture
comes back with a larger budget, :func:`resume_point` finds that checkpoint and the pipeline node trains the
missing epochs only: its ``{epochs}`` placeholder is the missing epochs and its environment names the
checkpoint (``ARCHAI_AML_RESUME_CHECKPOINT``, a blob the job downloads from the store it reaches anyway, on
the local runner and on Azure ML alike), the epochs already done (``ARCHAI_AML_EPOCHS_DONE``) and the total
(``ARCHAI_AML_TOTAL_EPOCHS``). A job that dies mid-way leaves the row's checkpoint columns as they were: the
rerun continues from the last checkpoint stored.

On completion the job also writes ``epochs_spent`` (the epochs it trained added to the row's earlier
figure) and ``<metric>_at_<total epochs>`` (e.g. ``val_iou_at_2``): the row keeps the metric at each budget.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archai_aml.predict.columns import CHECKPOINT, CHECKPOINT_EPOCHS, EPOCHS_SPENT, metric_at
from archai_aml.store.base import Entity, Store, as_float

__all__ = [
    "ENV_EPOCHS_DONE",
    "ENV_RESUME",
    "ENV_TOTAL_EPOCHS",
    "Continuation",
    "Resume",
    "checkpoint_blob",
    "resume_point",
]

log = logging.getLogger(__name__)

ENV_TOTAL_EPOCHS = "ARCHAI_AML_TOTAL_EPOCHS"
ENV_EPOCHS_DONE = "ARCHAI_AML_EPOCHS_DONE"
ENV_RESUME = "ARCHAI_AML_RESUME_CHECKPOINT"


def checkpoint_blob(epochs: float) -> str:
    """``checkpoint_e1.pt``, ``checkpoint_e0_5.pt``."""
    return metric_at("checkpoint", epochs).replace("checkpoint_at_", "checkpoint_e") + ".pt"


@dataclass(frozen=True)
class Resume:
    """Where a model's training continues from: a checkpoint blob and the epochs it holds."""

    checkpoint: str
    epochs_done: float


def resume_point(row: Entity | None, epochs: float, store: Store, experiment: str) -> Resume | None:
    """The stored checkpoint to continue from for ``epochs`` epochs in all, or None (train from scratch)."""
    if row is None:
        return None
    done = as_float(row.get(CHECKPOINT_EPOCHS))
    blob = row.get(CHECKPOINT)
    if done is None or not blob or not (0 < done < epochs):
        return None
    if not store.list_blobs(experiment, str(row["name"]), pattern=f"^{_escape(str(blob))}$"):
        log.warning(
            "%s names checkpoint %s, which is not in the store: training from scratch", row["name"], blob
        )
        return None
    return Resume(str(blob), done)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


@dataclass
class Continuation:
    """What a training job knows about its place in a model's training (from its environment)."""

    total_epochs: float | None = None
    epochs_done: float = 0.0
    resume: str | None = None
    saved: tuple[str, float] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Continuation:
        env = os.environ if env is None else env
        total = as_float(env.get(ENV_TOTAL_EPOCHS) or None)
        done = as_float(env.get(ENV_EPOCHS_DONE) or None) or 0.0
        return cls(total, done, env.get(ENV_RESUME) or None)

    def download(self, store: Store, experiment: str, model_id: str, folder: str | Path) -> Path | None:
        """The checkpoint to continue from, downloaded into ``folder`` (None: train from scratch)."""
        if self.resume is None:
            return None
        paths = store.download(experiment, model_id, folder, blob_names=[self.resume])
        log.info("continuing %s from %s (%g epochs done)", model_id, self.resume, self.epochs_done)
        return paths[0]

    def upload(self, store: Store, experiment: str, model_id: str, path: str | Path, epochs: float) -> str:
        """Upload the checkpoint after ``epochs`` epochs in all; the row names it on completion."""
        blob = checkpoint_blob(epochs)
        store.upload(experiment, model_id, Path(path), blob_name=blob)
        self.saved = (blob, float(epochs))
        return blob

    def completion_values(
        self, row: Entity | None, metric_key: str, metrics: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The continuation columns written with ``status=complete``."""
        values: dict[str, Any] = {}
        if self.total_epochs is not None:
            trained = self.total_epochs - self.epochs_done
            earlier = as_float((row or {}).get(EPOCHS_SPENT)) or 0.0
            values[EPOCHS_SPENT] = earlier + trained
            if metric_key in metrics:
                values[metric_at(metric_key, self.total_epochs)] = metrics[metric_key]
        if self.saved is not None:
            values[CHECKPOINT], values[CHECKPOINT_EPOCHS] = self.saved
        return values
