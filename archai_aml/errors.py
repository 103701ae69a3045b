"""Typed errors of archai-aml.

Every error says what failed and, where there is one, what to do about it. Messages never contain
secrets (account keys, connection strings, SAS tokens).
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "**********"

# Known secret shapes: ``AccountKey=``/``SharedAccessSignature=``/``sig=`` values (connection strings, SAS
# tokens, URLs), JSON web tokens, and long base64 runs such as an account key's tail shown by itself.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|sig|AccessToken|password)(\s*[=:]\s*)[^;&\s\"',]+"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_B64 = r"(?:[A-Za-z0-9+/]|%2[BbFf])"  # base64, as it is or URL-encoded (a SAS signature in a URL)
_BASE64_RUN = re.compile(rf"{_B64}{{32,}}(?:=|%3[Dd]){{0,2}}|{_B64}{{16,}}(?:=|%3[Dd]){{1,2}}")


def _looks_like_key(run: str) -> bool:
    """A base64 run that ends in padding, or holds upper and lower case letters and digits and is not a
    path of short words."""
    text = re.sub(r"%2[Bb]", "+", re.sub(r"%2[Ff]", "/", re.sub(r"%3[Dd]", "=", run)))
    body = text.rstrip("=")
    if text.endswith("=") and len(body) >= 16:
        return True
    return (
        any(c.isupper() for c in body)
        and any(c.islower() for c in body)
        and any(c.isdigit() for c in body)
        and max(len(part) for part in body.split("/")) >= 24
    )


def redact_secrets(text: str) -> str:
    """``text`` with every known secret shape replaced by ``**********``: account keys (also a tail of one),
    SAS signatures, ``AccountKey=``/``SharedAccessSignature=`` values of connection strings, JWTs."""
    text = _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    return _BASE64_RUN.sub(lambda m: REDACTED if _looks_like_key(m.group(0)) else m.group(0), text)


class ArchaiAmlError(Exception):
    """Base class of every error raised by archai-aml."""


class ConfigError(ArchaiAmlError):
    """A configuration file or value is invalid; the message names the field or variable.

    The message is passed through :func:`redact_secrets`: no config error shows a key or a SAS."""

    def __init__(self, message: str = "") -> None:
        super().__init__(redact_secrets(str(message)))


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
    """A blob name would escape its folder ('..', '.', an absolute path, a drive letter)."""


class InvalidNameError(StoreError, ValueError):
    """A partition, entity name or column name breaks the store's naming rule; the message says which rule."""


class BlobConflictError(StoreError):
    """A blob name is also the folder of another blob of the entity (``a`` and ``a/b``): both backends refuse
    it, since the two could not be downloaded into one folder."""


class ReadOnlyStoreError(StoreError):
    """A write to a store that was opened read-only (its folder is not writable)."""


class StoreFullError(StoreError):
    """A write failed because the store's disk is full (or a file size or quota limit was reached): it may
    pass once space is freed."""


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


class JobFailedError(JobError):
    """An Azure ML job ended ``Failed``: the message names the job, what the service said and its studio page."""

    def __init__(self, job_name: str, studio_url: str | None, detail: str = "") -> None:
        self.job_name = job_name
        self.studio_url = studio_url
        where = f"; its logs: {studio_url}" if studio_url else ""
        text = " ".join(detail.split())
        super().__init__(f"Azure ML job {job_name} failed{': ' + text if text else ''}{where}")


class JobTerminatedError(JobError):
    """A training job received SIGTERM (cancelled, preempted or timed out) while it was running."""


class WorkspaceError(ArchaiAmlError):
    """An Azure ML workspace resource (cluster, environment, datastore, data asset) cannot be set up."""


class PredictorError(ArchaiAmlError):
    """A latency predictor cannot answer: too few measured rows of its target and device, or it was asked
    about another target or device than the one it was trained for."""


class DeployError(ArchaiAmlError):
    """A model could not be deployed (or was refused: worse than the serving one, a failed smoke request);
    the message says why and which deployment keeps serving."""
