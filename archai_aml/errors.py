"""Typed errors of archai-aml.

Every error says what failed and, where there is one, what to do about it. Messages never contain
secrets (account keys, connection strings, SAS tokens).
"""

from __future__ import annotations

from typing import Any


class ArchaiAmlError(Exception):
    """Base class of every error raised by archai-aml."""


class ConfigError(ArchaiAmlError):
    """A configuration file or value is invalid; the message names the field or variable."""


class StoreError(ArchaiAmlError):
    """A status-store operation failed."""


class EntityNotFoundError(StoreError):
    """The entity (partition, name) does not exist."""

    def __init__(self, partition: str, name: str) -> None:
        super().__init__(f"no entity {name!r} in partition {partition!r} of the status store")
        self.partition = partition
        self.name = name


class EntityExistsError(StoreError):
    """`create` was asked for an entity that already exists."""

    def __init__(self, partition: str, name: str) -> None:
        super().__init__(f"entity {name!r} already exists in partition {partition!r}")
        self.partition = partition
        self.name = name


class ConcurrencyError(StoreError):
    """A compare-and-swap write failed: the entity's version moved (or it was deleted) since it was read.

    Re-read the entity and decide again; never retry the same write blindly.
    """

    def __init__(self, partition: str, name: str, expected_version: str | None) -> None:
        super().__init__(
            f"entity {name!r} in partition {partition!r} changed since version {expected_version!r}: "
            "re-read it and retry the decision"
        )
        self.partition = partition
        self.name = name
        self.expected_version = expected_version


class UnsafeBlobNameError(StoreError):
    """A blob name would escape its folder ('..', an absolute path, a drive letter)."""


class BlobExistsError(StoreError, FileExistsError):
    """An upload with ``overwrite=False`` found the blob already there."""


class LeaseError(StoreError):
    """Base class of lease errors."""


class LeaseLostError(LeaseError):
    """The lease expired and was taken by another owner, or was released, before it was renewed."""


class JobError(ArchaiAmlError):
    """A job or pipeline could not be submitted, monitored or cancelled."""


class TrainingFailedError(ArchaiAmlError):
    """Too many models of a batch failed to train; the message names each one with its error."""

    #: The batch's :class:`~archai_aml.pipelines.monitor.BatchResult` (set by the completion monitor).
    result: Any = None


class EvaluationTimeoutError(ArchaiAmlError):
    """Waiting for results took longer than allowed."""

    #: Set by the completion monitor: the batch's ``BatchResult`` so far and the ids still pending.
    result: Any = None
    pending: list[str] | None = None


class TargetError(ArchaiAmlError):
    """A target backend (onnxruntime, QNN, SNPE) failed to convert, quantize or run a model."""


class SimulatedLatencyError(ArchaiAmlError):
    """A latency objective would be a simulator's timing (``latency_simulated`` rows), not the hardware's."""


class InvalidRowError(ArchaiAmlError):
    """A status row holds a value that cannot be parsed (for example a shape that is not JSON)."""


class DatasetError(ArchaiAmlError):
    """A data set folder or spec cannot be used (missing files, unreadable images, unknown spec)."""


class ScoringError(ArchaiAmlError, ValueError):
    """Labels and model outputs cannot be scored together (shapes, class counts or values disagree)."""


class JobTerminatedError(JobError):
    """A training job received SIGTERM (cancelled, preempted or timed out) while it was running."""


class WorkspaceError(ArchaiAmlError):
    """An Azure ML workspace resource (cluster, environment, datastore, data asset) cannot be set up."""
