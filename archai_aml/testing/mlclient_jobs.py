"""The ``jobs`` side of the fake workspace of :mod:`archai_aml.testing.mlclient`: what Azure ML does with a
submitted job, as azure-ai-ml 1.35.2 shows it (``azure/ai/ml/operations/_job_operations.py`` and
``_job_ops_helper.py`` in site-packages; quoted behaviour cited at each method).

A job's life is a **timeline** of statuses the test writes (:meth:`FakeJobs.script`, or
:attr:`FakeJobs.next_statuses` for the next submission). Each ``get`` moves one step along it (the last status
stays); ``stream`` walks its own cursor along the same timeline, so a thread streaming while another polls
sees the same story without taking steps from it. An exception in the timeline is raised by the ``get`` that
reaches it (a dropped connection, or ``KeyboardInterrupt`` to play a Ctrl-C).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: ``RunHistoryConstants.TERMINAL_STATUSES`` of azure-ai-ml (``operations/_run_history_constants.py``): the
#: states in which ``download`` is allowed and ``stream`` stops (not the same as "will never change":
#: :mod:`archai_aml.pipelines.job_states`).
SDK_TERMINAL = ("Completed", "Failed", "Canceled", "NotResponding", "Paused")
#: ``RunHistoryConstants.IN_PROGRESS_STATUSES`` + ``Finalizing``: ``stream`` keeps polling in these.
SDK_IN_PROGRESS = ("NotStarted", "Queued", "Preparing", "Provisioning", "Starting", "Running", "Finalizing")


def studio_url(scope: Mapping[str, str], name: str) -> str:
    """The ``services["Studio"].endpoint`` the service returns for a job (``Job.studio_url`` reads it)."""
    return (
        f"https://ml.azure.com/runs/{name}?wsid=/subscriptions/{scope['subscription']}/resourcegroups/"
        f"{scope['resource_group']}/workspaces/{scope['workspace']}"
    )


def _rest_round_trip(job: Any, name: str, status: str, url: str, **fields: Any) -> Any:
    """What ``create_or_update`` / ``get`` return: the job as REST JSON, filled in by the service, read back
    with ``Job._from_rest_object`` (so ``status`` is the SDK's ``JobStatus`` enum, ``studio_url`` is set and
    the object is a new one)."""
    from azure.ai.ml.entities import Job
    from azure.ai.ml.entities._job.to_rest_functions import to_rest_job_object

    rest = to_rest_job_object(job)
    wire = rest.as_dict()
    wire["name"] = name
    wire["properties"]["status"] = status
    wire["properties"]["services"] = {"Studio": {"endpoint": url, "jobServiceType": "Studio"}}
    wire["properties"].update(fields)
    return Job._from_rest_object(type(rest)(wire))


@dataclass
class JobRecord:
    """One job the fake service holds."""

    name: str
    entity: Any
    url: str
    timeline: list[Any]
    parent: str | None = None
    #: Node name -> child job name (pipelines only).
    children: dict[str, str] = field(default_factory=dict)
    get_cursor: int = 0
    #: Files ``download`` writes, relative to ``download_path``.
    files: dict[str, bytes] = field(default_factory=dict)

    def now(self) -> Any:
        return self.timeline[min(self.get_cursor, len(self.timeline) - 1)]


class FakeJobs:
    """The service behind ``MLClient.jobs``: submissions, timelines, streams, cancels, downloads."""

    def __init__(
        self, scope: Mapping[str, str], *, default_statuses: Sequence[Any] = ("Running", "Completed")
    ):
        self.scope = dict(scope)
        self.default_statuses = list(default_statuses)
        #: The timeline of the next submitted job (consumed by it), else :attr:`default_statuses`.
        self.next_statuses: list[Any] | None = None
        self.records: dict[str, JobRecord] = {}
        #: ``(job passed in, keyword arguments)`` of every ``create_or_update``.
        self.submitted: list[tuple[Any, dict[str, Any]]] = []
        #: ``(method, job name)`` of every call.
        self.calls: list[tuple[str, str]] = []
        #: Raised by ``create_or_update`` when set (the service refusing the job).
        self.refuse: BaseException | None = None
        #: Seconds a ``begin_cancel`` poller takes to finish; None: it never finishes (until :meth:`release`).
        self.cancel_seconds: float | None = 0.0
        #: Files every downloaded job writes (``download`` writes the record's own files too).
        self.default_files: dict[str, bytes] = {"artifacts/user_logs/std_log.txt": b"fake job log\n"}
        self._scripts: dict[str, list[Any]] = {}
        self._changed = threading.Condition()
        self._released = threading.Event()

    # ----------------------------------------------------------------------------------- test controls
    def script(self, name: str, statuses: Sequence[Any]) -> None:
        """Set the timeline of job ``name`` (submitted or not yet: it applies when it is submitted)."""
        with self._changed:
            if name in self.records:
                record = self.records[name]
                record.timeline = list(statuses)
                record.get_cursor = 0
            else:
                self._scripts[name] = list(statuses)
            self._changed.notify_all()

    def release(self) -> None:
        """Let every pending cancel poller finish (end of a test that made cancels hang)."""
        self._released.set()

    def child(self, parent: str, node: str) -> JobRecord:
        return self.records[self.records[parent].children[node]]

    def status(self, name: str) -> str:
        """The status ``get`` would return now, without moving the timeline."""
        now = self.records[name].now()
        return now if isinstance(now, str) else "Running"

    # ----------------------------------------------------------------------------------- operations
    def _record(self, name: str) -> JobRecord:
        from azure.core.exceptions import ResourceNotFoundError

        if name not in self.records:
            # JobOperations.get / stream / begin_cancel: the service answers 404 -> ResourceNotFoundError
            raise ResourceNotFoundError(
                f"(UserError) Job {name} not found in workspace {self.scope['workspace']}"
            )
        return self.records[name]

    def create_or_update(
        self, job: Any, *, description: str | None = None, compute: str | None = None,
        tags: dict[str, Any] | None = None, experiment_name: str | None = None, skip_validation: bool = False,
        **kwargs: Any,
    ) -> Any:  # fmt: skip
        """``JobOperations.create_or_update``: a node other than Command is turned into its job, the keyword
        fields are set on it, it is validated (``raise_on_failure=True``), turned into REST
        (``to_rest_job_object``, which names an unnamed job) and PUT; the return value is
        ``Job._from_rest_object`` of the service's answer, a new object with ``studio_url``."""
        from azure.ai.ml.entities import Command
        from azure.ai.ml.entities._builders import BaseNode

        given = {
            "description": description,
            "compute": compute,
            "tags": tags,
            "experiment_name": experiment_name,
        }
        passed = {k: v for k, v in given.items() if v is not None}
        self.submitted.append(
            (job, {**passed, **({"skip_validation": True} if skip_validation else {}), **kwargs})
        )
        if isinstance(job, BaseNode) and not isinstance(job, Command):
            job = job._to_job()
        for key, value in (("description", description), ("compute", compute), ("tags", tags)):
            if value is not None:
                setattr(job, key, value)
        if experiment_name is not None:
            job.experiment_name = experiment_name
        from azure.ai.ml.entities._validation import PathAwareSchemaValidatableMixin

        if not skip_validation and isinstance(
            job, PathAwareSchemaValidatableMixin
        ):  # JobOperations._validate
            job._validate(raise_error=True)
        if self.refuse is not None:
            raise self.refuse
        from azure.ai.ml.entities._job.to_rest_functions import to_rest_job_object

        name = str(to_rest_job_object(job).name)
        self.calls.append(("create_or_update", name))
        url = studio_url(self.scope, name)
        with self._changed:
            timeline = self._scripts.pop(name, None) or self.next_statuses or list(self.default_statuses)
            self.next_statuses = None
            record = JobRecord(name, job, url, list(timeline))
            self.records[name] = record
            for node_name, node in (getattr(job, "jobs", None) or {}).items():
                child_name = f"{name}_{node_name}"
                child = JobRecord(
                    child_name, node, studio_url(self.scope, child_name), ["Completed"], parent=name
                )
                child.timeline = self._scripts.pop(child_name, child.timeline)
                self.records[child_name] = child
                record.children[node_name] = child_name
        return _rest_round_trip(job, name, "Starting", url)

    def get(self, name: str) -> Any:
        """``JobOperations.get``: the job as the service knows it now (one step along its timeline)."""
        self.calls.append(("get", name))
        with self._changed:
            record = self._record(name)
            now = record.now()
            record.get_cursor += 1
            self._changed.notify_all()
        if isinstance(now, BaseException):
            raise now
        return self._entity(record, str(now))

    def _entity(self, record: JobRecord, status: str) -> Any:
        node = record.entity
        if record.parent is None:
            return _rest_round_trip(node, record.name, status, record.url)
        display = getattr(node, "display_name", None) or getattr(node, "name", None)
        try:
            return _rest_round_trip(node, record.name, status, record.url, displayName=display)
        except Exception:  # a node kind to_rest_job_object does not take alone: the child as a bare command
            from azure.ai.ml import command

            bare = command(
                command="echo child", environment="azureml:child:1", compute="child", display_name=display
            )
            return _rest_round_trip(bare, record.name, status, record.url)

    def list(
        self, *, parent_job_name: str | None = None, list_view_type: Any = None, **kwargs: Any
    ) -> list[Any]:
        """``JobOperations.list``: with ``parent_job_name``, the child jobs of a pipeline (display name = node)."""
        self.calls.append(("list", parent_job_name or ""))
        if parent_job_name is None:
            return [self._entity(r, self.status(r.name)) for r in self.records.values() if r.parent is None]
        record = self._record(parent_job_name)
        return [self._entity(self.records[c], self.status(c)) for c in record.children.values()]

    def stream(self, name: str) -> None:
        """``JobOperations.stream`` -> ``stream_logs_until_completion``: writes ``RunId:`` and ``Web View:`` to
        stdout, polls while the run is in progress (its own reads, not ``get``'s), then raises
        ``JobException("Exception : \\n {error json} ")`` when the run ``Failed``."""
        from azure.ai.ml.exceptions import ErrorCategory, ErrorTarget, JobException

        self.calls.append(("stream", name))
        record = self._record(name)
        sys.stdout.write(f"RunId: {name}\nWeb View: {record.url}\n")
        cursor = 0
        with self._changed:
            while True:
                statuses = [s for s in record.timeline if isinstance(s, str)]
                status = statuses[min(cursor, len(statuses) - 1)] if statuses else "Running"
                if status not in SDK_IN_PROGRESS and status != "CancelRequested":
                    break
                if cursor < len(statuses) - 1:
                    cursor += 1
                    continue
                # the run has not ended in the script: wait for a cancel (or a new script) to end it
                if not self._changed.wait(timeout=30):
                    raise AssertionError(
                        f"fake workspace: the stream of {name} waited 30 s for a job that never ends"
                    )
        sys.stdout.write(f"\nExecution Summary\n=================\nRunId: {name}\nWeb View: {record.url}\n")
        if status == "Failed":
            error = {
                "code": "UserError",
                "message": f"Execution failed. User process exited with status code 1 ({name})",
            }
            raise JobException(
                message=f"Exception : \n {json.dumps(error, indent=4)} ",
                target=ErrorTarget.JOB,  # type: ignore[arg-type]  # the SDK's own str constants
                no_personal_data_message="Exception raised on failed job.",
                error_category=ErrorCategory.SYSTEM_ERROR,  # type: ignore[arg-type]
            )

    def begin_cancel(self, name: str, **kwargs: Any) -> Any:
        """``JobOperations.begin_cancel``: an ``LROPoller[None]`` (``result()`` is None once the service has
        canceled); the job goes ``CancelRequested`` then ``Canceled``, its unfinished children ``Canceled``."""
        self.calls.append(("begin_cancel", name))
        with self._changed:
            record = self._record(name)
            kept = (
                record.timeline[: record.get_cursor + 1] if record.get_cursor < len(record.timeline) else []
            )
            record.timeline = [s for s in kept if isinstance(s, str) and s not in ("Completed", "Failed")]
            record.timeline += ["CancelRequested", "Canceled"]
            for child in record.children.values():
                if self.status(child) not in ("Completed", "Failed", "Canceled"):
                    self.records[child].timeline = ["Canceled"]
                    self.records[child].get_cursor = 0
            self._changed.notify_all()
        return cancel_poller(self.cancel_seconds, self._released)

    def download(
        self, name: str, *, download_path: Any = ".", output_name: str | None = None, all: bool = False
    ) -> None:  # noqa: A002
        """``JobOperations.download``: ``JobException`` unless the job is in one of ``SDK_TERMINAL``; writes the
        job's logs and outputs (``artifacts/...``, ``named-outputs/<name>/...``) under ``download_path``."""
        from azure.ai.ml.exceptions import ErrorCategory, ErrorTarget, JobException

        self.calls.append(("download", name))
        record = self._record(name)
        status = self.status(name)
        if status not in SDK_TERMINAL:
            msg = f"This job is in state {status}. Download is allowed only in states {list(SDK_TERMINAL)}"
            raise JobException(
                message=msg,
                target=ErrorTarget.JOB,  # type: ignore[arg-type]  # the SDK's own str constants
                no_personal_data_message=msg,
                error_category=ErrorCategory.USER_ERROR,  # type: ignore[arg-type]
            )
        root = Path(download_path)
        for rel, data in {**self.default_files, **record.files}.items():
            if output_name and not rel.startswith(f"named-outputs/{output_name}/"):
                continue
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def cancel_poller(seconds: float | None, released: threading.Event) -> Any:
    """A real ``azure.core.polling.LROPoller`` whose polling method ends after ``seconds`` (never, when None,
    until ``released`` is set): ``wait(timeout)`` / ``done()`` / ``result()`` behave as on the real one."""
    from azure.core.polling import LROPoller, PollingMethod

    class _CancelPolling(PollingMethod[None]):
        def initialize(
            self, client: Any, initial_response: Any, deserialization_callback: Callable[..., Any]
        ) -> None:
            self._done = seconds == 0

        def run(self) -> None:
            released.wait(timeout=seconds if seconds is not None else None)
            self._done = True

        def status(self) -> str:
            return "Succeeded" if self._done else "InProgress"

        def finished(self) -> bool:
            return self._done

        def resource(self) -> None:
            return None

    return LROPoller(None, None, lambda response: None, _CancelPolling())
