"""The :class:`JobRunner` protocol: submit a pipeline job, follow its status, cancel it, read its logs.

Statuses are named as Azure ML names them, so that code written against the local runner behaves the same
on Azure ML (:data:`NOT_STARTED`, :data:`PREPARING`, :data:`RUNNING`, :data:`COMPLETED`, :data:`FAILED`,
:data:`CANCELED`; Azure ML also reports intermediate ones such as ``Queued``, ``Starting``,
``Provisioning``, ``Finalizing``, ``CancelRequested``, ``NotResponding``, ``Paused`` which callers treat as
"not ended"). Which ones are final is defined once, in :mod:`archai_aml.pipelines.job_states`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from archai_aml.pipelines.job_states import FINAL_STATUSES, is_final

__all__ = [
    "CANCELED",
    "COMPLETED",
    "FAILED",
    "NOT_STARTED",
    "PREPARING",
    "RUNNING",
    "TERMINAL_STATUSES",
    "JobRunner",
    "is_terminal",
]

NOT_STARTED = "NotStarted"
PREPARING = "Preparing"
RUNNING = "Running"
COMPLETED = "Completed"
FAILED = "Failed"
CANCELED = "Canceled"

#: Statuses after which a job or a node never changes again (:data:`~archai_aml.pipelines.job_states.FINAL_STATUSES`).
TERMINAL_STATUSES = FINAL_STATUSES


def is_terminal(status: Any) -> bool:
    """Whether ``status`` (an Azure ML job status, a word or the SDK's ``JobStatus``) is final."""
    return is_final(status)


@runtime_checkable
class JobRunner(Protocol):
    """Runs ``azure.ai.ml`` pipeline jobs somewhere (local subprocesses, an Azure ML workspace).

    Node names are the keys of ``pipeline_job.jobs``; the training pipeline names each node after its model
    id, so :meth:`node_statuses` maps model ids to statuses.
    """

    def submit(self, pipeline_job: Any, *, experiment_name: str) -> Any:
        """Start ``pipeline_job``; returns the submitted job, whose ``name`` is its id."""
        ...

    def status(self, job_id: str) -> str:
        """The pipeline's status: ``Completed`` once every node completed, ``Failed`` once every node ended and
        at least one failed, ``Canceled`` after :meth:`cancel`; otherwise a not-ended status."""
        ...

    def node_statuses(self, job_id: str) -> dict[str, str]:
        """Status of each node of the pipeline that the runner knows about, by node name."""
        ...

    def cancel(self, job_id: str) -> None:
        """Cancel the pipeline: nodes not started never start, running ones are stopped."""
        ...

    def logs(self, job_id: str, node: str) -> str:
        """The output (stdout and stderr) of one node so far."""
        ...

    def wait_for_change(self, job_id: str, timeout: float) -> bool:
        """Block up to ``timeout`` seconds, returning early (``True``) when a node of the job changed status.

        Runners that cannot be notified just sleep and return ``False``.
        """
        ...

    def studio_url(self, job_id: str) -> str | None:
        """Where a person can look at the job (Azure ML studio), or None."""
        ...
