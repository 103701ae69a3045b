"""The runner fleet: a prioritized work queue over the status table, runners that lease and do its items,
the device-usage table, and the Azure ML job that runs runners on a CPU cluster."""

from __future__ import annotations

from archai_aml.runner.queue import Capabilities, WorkItem, build_queue, items_for_row, parse_shape
from archai_aml.runner.usage import record_usage, usage_store, utilization
from archai_aml.runner.worker import Runner, RunnerSettings, alive_runners, runners_store

__all__ = [
    "Capabilities",
    "Runner",
    "RunnerSettings",
    "WorkItem",
    "alive_runners",
    "build_queue",
    "items_for_row",
    "parse_shape",
    "record_usage",
    "runners_store",
    "usage_store",
    "utilization",
]
