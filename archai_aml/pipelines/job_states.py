"""Which Azure ML job statuses are final: the one definition the executor, the job runners and the completion
monitor use.

The service's meanings (``JobStatus`` of the Azure ML REST API, e.g.
https://learn.microsoft.com/javascript/api/@azure/arm-machinelearning/knownjobstatus):

- ``Completed``, ``Failed``, ``Canceled``: the job has ended and never changes again (:data:`FINAL_STATUSES`);
- ``NotResponding``: "When heartbeat is enabled, if the run isn't updating any information to RunHistory then
  the run goes to NotResponding state. NotResponding is the only state that is exempt from strict transition
  orders. A run can go from NotResponding to any of the previous states." Not final: keep waiting;
- ``Paused``: "The job is paused by users." Not final: it waits for someone to resume (or cancel) it;
- ``NotStarted``, ``Starting``, ``Provisioning``, ``Preparing``, ``Queued``, ``Running``, ``Finalizing``,
  ``CancelRequested``, ``Unknown``: on their way.

azure-ai-ml's own ``RunHistoryConstants.TERMINAL_STATUSES`` also lists ``NotResponding`` and ``Paused``: those
are the states in which its ``stream`` stops and ``download`` is allowed, not states that cannot change.

Job objects of azure-ai-ml carry ``status`` as the REST enum ``JobStatus`` (a ``str`` enum whose ``str()`` is
``"JobStatus.COMPLETED"`` on Python 3.11+): :func:`status_name` gives the service's word.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FINAL_STATUSES", "WAITING_FOR_SOMEONE", "is_final", "status_name", "waiting_note"]

#: Statuses after which a job or a pipeline node never changes again.
FINAL_STATUSES = frozenset({"Completed", "Failed", "Canceled"})

#: Not final, but nothing happens until the service or a person acts: what to tell the user.
WAITING_FOR_SOMEONE = {
    "NotResponding": (
        "Azure ML has no heartbeat from the job; it may come back to any earlier state, so this keeps waiting"
    ),
    "Paused": "the job was paused by a user and waits to be resumed in the studio (or canceled)",
}


def status_name(status: Any) -> str:
    """The service's word for ``status`` (``JobStatus.COMPLETED`` -> ``"Completed"``); ``""`` for None."""
    if status is None:
        return ""
    value = getattr(status, "value", status)
    return str(value)


def is_final(status: Any) -> bool:
    """Whether ``status`` (a word or the SDK's ``JobStatus``) is one after which the job never changes."""
    return status_name(status) in FINAL_STATUSES


def waiting_note(status: Any) -> str | None:
    """For ``NotResponding`` and ``Paused``, what that means for the wait; None for any other status."""
    return WAITING_FOR_SOMEONE.get(status_name(status))
