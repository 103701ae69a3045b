"""Following one Azure ML job through ``MLClient.jobs``: its studio page, its stream and a bounded cancel.

Shared by the ``azureml`` job runner (:mod:`archai_aml.pipelines.azureml`) and the executor
(:mod:`archai_aml.executor.run`): a failed job's stream ends in :class:`~archai_aml.errors.JobFailedError`
(naming the job and its studio page) instead of azure-ai-ml's ``JobException``, and a cancel waits for the
service's confirmation for a bounded time (``wait_s``, default :data:`CANCEL_WAIT_S`), saying when it did
not come.
"""

from __future__ import annotations

import logging
from typing import Any

from archai_aml._optional import require
from archai_aml.errors import JobFailedError

__all__ = ["CANCEL_WAIT_S", "cancel_job", "job_studio_url", "stream_job"]

log = logging.getLogger(__name__)

#: How long a cancel waits for the service to confirm it (seconds); then it returns, saying the job may still
#: be ending. A chosen bound, not a measured one: a cancel usually completes within seconds.
CANCEL_WAIT_S = 60.0


def job_studio_url(ml_client: Any, name: str) -> str | None:
    """The studio page of job ``name`` (None when the workspace cannot be asked)."""
    try:
        return getattr(ml_client.jobs.get(name), "studio_url", None)
    except Exception as exc:  # only informational
        log.debug("no studio URL for %s: %s", name, exc)
        return None


def stream_job(ml_client: Any, name: str, studio_url: str | None = None) -> None:
    """``ml_client.jobs.stream(name)``: the job's output until it ends.

    azure-ai-ml raises ``JobException`` when the job failed (``stream_logs_until_completion``); that becomes a
    :class:`JobFailedError` naming the job, the service's error and the studio page. A Ctrl-C during the
    stream (which azure-ai-ml also turns into a ``JobException``) stays a ``KeyboardInterrupt``.
    """
    require("azure.ai.ml", feature="streaming an Azure ML job")
    from azure.ai.ml.exceptions import JobException

    try:
        ml_client.jobs.stream(name)
    except JobException as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from exc
        url = studio_url or job_studio_url(ml_client, name)
        raise JobFailedError(name, url, str(exc).replace("Exception :", "", 1)) from exc


def cancel_job(ml_client: Any, name: str, *, wait_s: float = CANCEL_WAIT_S) -> bool:
    """Ask Azure ML to cancel job ``name`` and wait up to ``wait_s`` seconds for it to confirm.

    True when the cancel operation completed in time; False when it did not (the job may still be running:
    logged with its studio page). ``begin_cancel`` returns an ``LROPoller``; ``wait(timeout)`` bounds the wait.
    """
    poller = ml_client.jobs.begin_cancel(name)
    wait = getattr(poller, "wait", None)
    if callable(wait):
        wait(max(wait_s, 0.0))
    done = getattr(poller, "done", None)
    if callable(done) and not done():
        log.warning(
            "asked Azure ML to cancel %s; not confirmed after %g s: it may still be running, see %s",
            name, wait_s, job_studio_url(ml_client, name) or "the studio",
        )  # fmt: skip
        return False
    return True
