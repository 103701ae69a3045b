"""Wait for a batch of training jobs to finish, with ONE store query per poll for the whole batch.

Every row of a batch carries the ``batch`` column (the pipeline submission's id), so each poll is a single
server-side filtered query ``where={"batch": batch_id}`` whatever the batch size (the Azure Table service
allows at most 15 comparisons in one filter: a filter on 80 names cannot be one request, a batch column
can). The poll interval starts at ``poll_interval_min_s``, doubles while nothing changes up to
``poll_interval_max_s``, and falls back to the minimum as soon as a row moves. A runner that can notify
(the local one) wakes the monitor as soon as a node ends.

Each poll also asks the job runner for the pipeline's status: a node that ended while its row still says
``preparing`` is marked ``failed to start``; a pipeline that ended (Completed, Failed or Canceled) ends the
wait, marking rows that never finished (``failed to start``, ``failed`` or ``canceled``). Every row write is
a compare-and-swap on the version the poll just read, so a job that reports at the same moment wins.

A storage outage does not end the wait: a poll whose query fails is logged once (the recovery once
more), counts as a poll without progress (so the interval backs off to ``poll_interval_max_s``) and the
wait goes on until the store answers or ``timeout_seconds`` is spent; a row write that fails is left to
the next poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from archai_aml.errors import ConcurrencyError, EvaluationTimeoutError, StoreError, TrainingFailedError
from archai_aml.pipelines.base import CANCELED, COMPLETED, JobRunner, is_terminal
from archai_aml.store.base import Entity, Store

__all__ = ["DONE_STATUSES", "BatchResult", "CompletionMonitor"]

log = logging.getLogger(__name__)

#: Row statuses after which a model's training is over (successfully only for ``complete``).
DONE_STATUSES = frozenset({"complete", "failed", "failed to start", "canceled"})
NOT_STARTED_ROW = frozenset({"preparing", ""})


@dataclass
class BatchResult:
    """The final rows of a batch, by model id, and how the wait went."""

    rows: dict[str, Entity]
    model_ids: list[str]
    polls: int = 0
    elapsed_s: float = 0.0
    pipeline_status: str | None = None
    failed: list[str] = field(default_factory=list)

    @property
    def completed(self) -> list[str]:
        return [m for m in self.model_ids if self.rows.get(m, {}).get("status") == "complete"]


class CompletionMonitor:
    """Waits for the rows of one batch to reach a final status (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        job_runner: JobRunner,
        experiment: str,
        *,
        timeout_seconds: float = 3600.0,
        max_failure_rate: float = 0.5,
        poll_interval_min_s: float = 0.05,
        poll_interval_max_s: float = 20.0,
        metric_key: str = "val_iou",
        status_every: int | None = None,
        progress: bool = True,
    ) -> None:
        if poll_interval_min_s <= 0 or poll_interval_max_s < poll_interval_min_s:
            raise ValueError("need 0 < poll_interval_min_s <= poll_interval_max_s")
        self.store = store
        self.job_runner = job_runner
        self.experiment = experiment
        self.timeout_seconds = timeout_seconds
        self.max_failure_rate = max_failure_rate
        self.poll_interval_min_s = poll_interval_min_s
        self.poll_interval_max_s = poll_interval_max_s
        self.metric_key = metric_key
        self.status_every = max(1, status_every or int(getattr(job_runner, "status_every", 1)))
        self.progress = progress
        #: Store queries made by the last :meth:`wait` (one per poll).
        self.queries = 0
        #: Failed polls of the current store outage (0 while the store answers), and when it began.
        self.outage_polls = 0
        self._outage_since = 0.0

    def _poll(self, batch_id: str) -> list[Entity] | None:
        """The batch's rows, or None when the store does not answer (logged once per outage)."""
        try:
            found = self.store.query(self.experiment, where={"batch": batch_id})
        except StoreError as exc:
            if self.outage_polls == 0:
                self._outage_since = time.monotonic()
                log.warning("batch %s: the store does not answer, polling on with backoff: %s", batch_id, exc)
            self.outage_polls += 1
            return None
        if self.outage_polls:
            lasted = time.monotonic() - self._outage_since
            log.warning(
                "batch %s: the store answers again after %.1f s (%d failed polls)",
                batch_id,
                lasted,
                self.outage_polls,
            )
            self.outage_polls = 0
        return found

    # ----------------------------------------------------------------------------------------- marks
    def _mark(self, model_id: str, row: Entity, status: str, error: str) -> Entity | None:
        """Write a final status unless the row moved since ``row`` was read (then the next poll decides)."""
        values = {"status": status, "error": error}
        try:
            return self.store.merge(self.experiment, model_id, values, expected_version=row["_version"])
        except ConcurrencyError:
            return None
        except StoreError as exc:  # an outage: the next poll decides again
            log.warning("could not mark %s %r (next poll retries): %s", model_id, status, exc)
            return None

    def _check_runner(
        self, pipeline_id: str, pending: set[str], rows: dict[str, Entity]
    ) -> tuple[str | None, dict[str, Entity]]:
        """Pipeline status, and the rows this check marked final."""
        marked: dict[str, Entity] = {}
        try:
            pipeline_status = self.job_runner.status(pipeline_id)
            nodes = self.job_runner.node_statuses(pipeline_id)
        except Exception as exc:  # a transient service error must not end the wait
            log.warning("could not read the status of pipeline %s: %s", pipeline_id, exc)
            return None, marked
        pipeline_ended = is_terminal(pipeline_status)
        for model_id in sorted(pending):
            node_status = nodes.get(model_id)
            row = rows.get(model_id)
            if not (pipeline_ended or is_terminal(node_status)):
                continue
            if row is None:
                # the row left this batch (a newer submission took the model over, or it was deleted):
                # never write to it; this batch's result for the model is a failure, known only here
                try:
                    current = self.store.get(self.experiment, model_id)
                except StoreError as exc:  # an outage: the next poll looks again
                    log.warning("could not read the row of %s (next poll retries): %s", model_id, exc)
                    continue
                owner = current.get("batch") if current is not None else None
                marked[model_id] = {
                    "partition": self.experiment,
                    "name": model_id,
                    "status": "failed",
                    "error": f"the row of {model_id} now belongs to batch {owner!r}, not {pipeline_id!r}",
                }
                log.warning("%s", marked[model_id]["error"])
                continue
            row_status = str(row.get("status", ""))
            if row_status in NOT_STARTED_ROW:
                if node_status == CANCELED or (node_status is None and pipeline_status == CANCELED):
                    status, error = "canceled", f"pipeline {pipeline_id} was canceled before the job started"
                else:
                    status = "failed to start"
                    error = (
                        f"job {model_id} of pipeline {pipeline_id} ended ({node_status or pipeline_status}) "
                        "before the training script reported: see the job's log"
                    )
            elif pipeline_ended or node_status != COMPLETED:
                # the job ended while the row still says "training": it died without reporting
                status = "canceled" if node_status == CANCELED else "failed"
                error = (
                    f"job {model_id} of pipeline {pipeline_id} ended ({node_status or pipeline_status}) "
                    f"while its row said {row_status!r}: see the job's log"
                )
            else:
                # completed node, row not final yet: the row write may still be in flight; next poll decides
                continue
            written = self._mark(model_id, row, status, error)
            if written is not None:
                log.warning("%s: %s", model_id, error)
                marked[model_id] = written
        return pipeline_status, marked

    # ------------------------------------------------------------------------------------------ wait
    def wait(self, model_ids: Sequence[str], batch_id: str, pipeline_id: str | None = None) -> BatchResult:
        """Poll until every model's row is final; returns the rows.

        Raises :class:`EvaluationTimeoutError` after ``timeout_seconds`` (naming the models still pending) and
        :class:`TrainingFailedError` when more than ``max_failure_rate`` of the models did not complete
        (naming each with its error). Both carry the :class:`BatchResult` as ``.result``.
        """
        pipeline_id = pipeline_id or batch_id
        ids = list(dict.fromkeys(model_ids))
        pending = set(ids)
        final: dict[str, Entity] = {}
        start = time.monotonic()
        interval = self.poll_interval_min_s
        polls = 0
        pipeline_status: str | None = None
        self.queries = 0
        self.outage_polls = 0
        bar = tqdm(
            total=len(ids), desc=f"training {len(ids)} models", unit="model", disable=not self.progress
        )
        try:
            while True:
                polls += 1
                progressed = False
                self.queries += 1
                found = self._poll(batch_id)
                rows = {r["name"]: r for r in found} if found is not None else {}
                for model_id in list(pending):
                    row = rows.get(model_id)
                    if row is not None and row.get("status") in DONE_STATUSES:
                        final[model_id] = row
                        pending.discard(model_id)
                        progressed = True
                if found is not None and pending and polls % self.status_every == 0:
                    pipeline_status, marked = self._check_runner(pipeline_id, pending, rows)
                    for model_id, row in marked.items():
                        final[model_id] = row
                        pending.discard(model_id)
                        progressed = True
                    if pending and is_terminal(pipeline_status) and not marked:
                        # ended pipeline, rows still moving (writes racing ours): poll again promptly
                        interval = self.poll_interval_min_s
                done = len(ids) - len(pending)
                failed = sum(1 for r in final.values() if r.get("status") != "complete")
                bar.n = done
                bar.set_postfix_str(f"done={done - failed} failed={failed} total={len(ids)}", refresh=False)
                bar.refresh()
                if not pending:
                    break
                elapsed = time.monotonic() - start
                if elapsed > self.timeout_seconds:
                    result = self._result(ids, final, rows, polls, elapsed, pipeline_status)
                    names = ", ".join(sorted(pending))
                    err = EvaluationTimeoutError(
                        f"training batch {batch_id} (pipeline {pipeline_id}) timed out after "
                        f"{self.timeout_seconds:g} s with {len(pending)} of {len(ids)} models unfinished: {names}; "
                        "raise training.timeout_seconds or check the jobs' logs"
                    )
                    err.result = result
                    err.pending = sorted(pending)
                    raise err
                interval = (
                    self.poll_interval_min_s if progressed else min(interval * 2, self.poll_interval_max_s)
                )
                sleep = min(interval, max(self.timeout_seconds - elapsed, 0.0) + 1e-3)
                self.job_runner.wait_for_change(pipeline_id, sleep)
        finally:
            bar.close()
        result = self._result(ids, final, final, polls, time.monotonic() - start, pipeline_status)
        self._check_failures(result, batch_id)
        return result

    def _result(
        self,
        ids: list[str],
        final: dict[str, Entity],
        rows: dict[str, Entity],
        polls: int,
        elapsed: float,
        pipeline_status: str | None,
    ) -> BatchResult:
        merged = {m: final.get(m) or rows.get(m) or {} for m in ids}
        failed = [m for m in ids if m in final and final[m].get("status") != "complete"]
        return BatchResult(merged, ids, polls, elapsed, pipeline_status, failed)

    def _check_failures(self, result: BatchResult, batch_id: str) -> None:
        n = len(result.model_ids)
        for model_id in result.failed:
            row = result.rows[model_id]
            log.warning("model %s %s: %s", model_id, row.get("status"), row.get("error", "no error reported"))
        rate = len(result.failed) / n if n else 0.0
        log.info(
            "batch %s: %d complete, %d failed in %.1f s (%d polls)",
            batch_id,
            n - len(result.failed),
            len(result.failed),
            result.elapsed_s,
            result.polls,
        )
        if rate > self.max_failure_rate:
            details = "\n".join(
                f"  {m} ({result.rows[m].get('status')}): {result.rows[m].get('error', 'no error reported')}"
                for m in result.failed
            )
            err = TrainingFailedError(
                f"{len(result.failed)} of {n} models of batch {batch_id} failed to train "
                f"(rate {rate:.2f} > max_failure_rate {self.max_failure_rate:.2f}):\n{details}\n"
                "fix the training script (see each job's log) or raise training.max_failure_rate"
            )
            err.result = result
            raise err
