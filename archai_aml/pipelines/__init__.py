"""Training pipelines: building them, running them (locally or on Azure ML) and waiting for them."""

from archai_aml.pipelines.base import (
    CANCELED,
    COMPLETED,
    FAILED,
    NOT_STARTED,
    PREPARING,
    RUNNING,
    TERMINAL_STATUSES,
    JobRunner,
    is_terminal,
)
from archai_aml.pipelines.local import LocalJobRunner
from archai_aml.pipelines.monitor import BatchResult, CompletionMonitor
from archai_aml.pipelines.training import build_training_pipeline, model_id_for, start_training_pipeline

__all__ = [
    "CANCELED",
    "COMPLETED",
    "FAILED",
    "NOT_STARTED",
    "PREPARING",
    "RUNNING",
    "TERMINAL_STATUSES",
    "BatchResult",
    "CompletionMonitor",
    "JobRunner",
    "LocalJobRunner",
    "build_training_pipeline",
    "is_terminal",
    "model_id_for",
    "start_training_pipeline",
]
