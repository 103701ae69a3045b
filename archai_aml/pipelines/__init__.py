"""Training pipelines: building them, running them (locally or on Azure ML) and waiting for them. Names
are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archai_aml._lazy import lazy_attributes

__all__ = [
    "CANCELED",
    "COMPLETED",
    "FAILED",
    "NOT_STARTED",
    "PREPARING",
    "RUNNING",
    "TERMINAL_STATUSES",
    "available_job_runners",
    "build_training_pipeline",
    "get_job_runner",
    "is_terminal",
    "model_id_for",
    "register_job_runner",
    "start_training_pipeline",
    "BatchResult",
    "CompletionMonitor",
    "JobRunner",
    "LocalJobRunner",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "CANCELED": "archai_aml.pipelines.base",
        "COMPLETED": "archai_aml.pipelines.base",
        "FAILED": "archai_aml.pipelines.base",
        "NOT_STARTED": "archai_aml.pipelines.base",
        "PREPARING": "archai_aml.pipelines.base",
        "RUNNING": "archai_aml.pipelines.base",
        "TERMINAL_STATUSES": "archai_aml.pipelines.base",
        "JobRunner": "archai_aml.pipelines.base",
        "is_terminal": "archai_aml.pipelines.base",
        "LocalJobRunner": "archai_aml.pipelines.local",
        "BatchResult": "archai_aml.pipelines.monitor",
        "CompletionMonitor": "archai_aml.pipelines.monitor",
        "available_job_runners": "archai_aml.pipelines.registry",
        "get_job_runner": "archai_aml.pipelines.registry",
        "register_job_runner": "archai_aml.pipelines.registry",
        "build_training_pipeline": "archai_aml.pipelines.training",
        "model_id_for": "archai_aml.pipelines.training",
        "start_training_pipeline": "archai_aml.pipelines.training",
    },
)

if TYPE_CHECKING:
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
    from archai_aml.pipelines.registry import available_job_runners, get_job_runner, register_job_runner
    from archai_aml.pipelines.training import build_training_pipeline, model_id_for, start_training_pipeline
