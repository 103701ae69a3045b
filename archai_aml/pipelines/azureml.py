"""Run pipeline jobs in an Azure ML workspace through ``azure.ai.ml.MLClient``.

Credentials (:func:`archai_aml.azure_auth.azure_credential`, re-exported here): inside an Azure ML job that runs with the user's identity
(``OBO_ENDPOINT`` is set, or the Spark OBO token provider), :class:`azure.ai.ml.identity.AzureMLOnBehalfOfCredential`;
everywhere else :class:`azure.identity.DefaultAzureCredential` (environment, managed identity, Azure CLI...),
with ``identity_client_id`` naming a user-assigned managed identity.

:func:`stream_job` and :func:`cancel_job` (:mod:`archai_aml.azureml_jobs`, re-exported here) are shared with
the executor: a failed job's stream ends in :class:`~archai_aml.errors.JobFailedError`, and a cancel waits for
the service's confirmation for a bounded time (``cancel_wait_s``, default :data:`CANCEL_WAIT_S`).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from archai_aml.azure_auth import azure_credential, inside_azureml_job, ml_client
from archai_aml.azureml_jobs import CANCEL_WAIT_S, cancel_job, job_studio_url, stream_job
from archai_aml.config import AzureMLConfig
from archai_aml.errors import JobError
from archai_aml.pipelines.job_states import status_name

__all__ = [
    "CANCEL_WAIT_S",
    "AzureMLJobRunner",
    "azure_credential",
    "cancel_job",
    "inside_azureml_job",
    "job_studio_url",
    "stream_job",
]

log = logging.getLogger(__name__)


class AzureMLJobRunner:
    """A :class:`~archai_aml.pipelines.base.JobRunner` on an Azure ML workspace.

    Child jobs of the training pipeline are matched to nodes by their display name (the model id).
    """

    #: Ask Azure ML for the pipeline status every N polls of the completion monitor (each ask is a request
    #: to the workspace; the monitor's interval already backs off to ``poll_interval_max_s``).
    status_every = 1

    def __init__(
        self, ml_client: Any, *, status_every: int = 1, cancel_wait_s: float = CANCEL_WAIT_S
    ) -> None:
        self.ml_client = ml_client
        self.status_every = max(1, status_every)
        #: How long :meth:`cancel` waits for Azure ML to confirm (seconds).
        self.cancel_wait_s = cancel_wait_s

    @classmethod
    def from_config(cls, aml: AzureMLConfig, credential: Any = None) -> AzureMLJobRunner:
        return cls(ml_client(aml, credential, feature="AzureMLJobRunner (training on an Azure ML workspace)"))

    def submit(self, pipeline_job: Any, *, experiment_name: str) -> Any:
        try:
            job = self.ml_client.jobs.create_or_update(pipeline_job, experiment_name=experiment_name)
        except Exception as exc:
            raise JobError(
                f"Azure ML refused pipeline {getattr(pipeline_job, 'name', None)!r}: {exc}; check the "
                "workspace, compute cluster, environment and datastore names in the aml configuration"
            ) from exc
        log.info("submitted Azure ML pipeline %s (%s)", job.name, getattr(job, "studio_url", None))
        return job

    def status(self, job_id: str) -> str:
        return status_name(self.ml_client.jobs.get(job_id).status)

    def node_statuses(self, job_id: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for child in self.ml_client.jobs.list(parent_job_name=job_id):
            key = getattr(child, "display_name", None) or child.name
            out[str(key)] = status_name(child.status)
        return out

    def cancel(self, job_id: str) -> None:
        """Cancel the pipeline, waiting up to :attr:`cancel_wait_s` for Azure ML to confirm (:func:`cancel_job`)."""
        if cancel_job(self.ml_client, job_id, wait_s=self.cancel_wait_s):
            log.info("canceled Azure ML pipeline %s", job_id)

    def logs(self, job_id: str, node: str) -> str:
        """The user logs of a child job (downloaded from the workspace)."""
        name = None
        for child in self.ml_client.jobs.list(parent_job_name=job_id):
            if (getattr(child, "display_name", None) or child.name) == node:
                name = child.name
                break
        if name is None:
            raise JobError(f"pipeline {job_id!r} has no child job named {node!r}")
        with tempfile.TemporaryDirectory() as tmp:
            self.ml_client.jobs.download(name, download_path=tmp, all=True)
            parts = []
            for path in sorted(Path(tmp).rglob("*.txt")):
                if "user_logs" in path.parts or path.name.startswith("std_log"):
                    parts.append(path.read_text(encoding="utf-8", errors="replace"))
            return "\n".join(parts)

    def stream(self, job_id: str) -> None:
        """Follow the job's output until it ends (:func:`stream_job`: a failed job raises
        :class:`~archai_aml.errors.JobFailedError` naming it and its studio page)."""
        stream_job(self.ml_client, job_id)

    def wait_for_change(self, job_id: str, timeout: float) -> bool:
        time.sleep(max(timeout, 0.0))
        return False

    def studio_url(self, job_id: str) -> str | None:
        return job_studio_url(self.ml_client, job_id)
