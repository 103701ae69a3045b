"""Asynchronous latency (and accuracy) measurements by the runner fleet, as an Archai evaluator.

:class:`RemoteAzureBenchmarkEvaluator` keeps the parameters of archai 1.0.0's evaluator of the same name
but talks to an archai-aml :class:`~archai_aml.store.Store` (Azure or embedded):

- ``send`` exports the model to ONNX (the caller's ``onnx_export_kwargs``), uploads it as
  ``<experiment>/id_<archid>/model.onnx`` and sets the row to ``new`` with ``model_date``, ``shape``
  (JSON) and ``benchmark_only``. A row that is already ``complete`` with the metric is reused (with
  ``overwrite`` its results and derived artifacts are reset so it is measured again); a row still in
  progress is waited for. Export errors go into the row's ``error`` column: the search goes on.
- ``fetch_all`` makes one store query per poll for the whole batch (a ``names`` filter up to 15 models,
  else the ``batch`` column the rows carry: the table service allows 15 comparisons per filter), returns
  the metric per model in send order (None for rows in error, logged with the error), and raises
  :class:`~archai_aml.errors.EvaluationTimeoutError` after ``max_retries`` polls without progress, naming
  the pending models and saying whether any runner is alive (runner heartbeats and live leases).
  *Progress* is a model finishing or any pending row changing (status messages, lease renewals).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from archai.discrete_search.api.archai_model import ArchaiModel
from archai.discrete_search.api.model_evaluator import AsyncModelEvaluator
from overrides import overrides
from tqdm import tqdm

from archai_aml.errors import (
    ConcurrencyError,
    EntityExistsError,
    EvaluationTimeoutError,
    SimulatedLatencyError,
)
from archai_aml.store.base import Entity, Store, as_float
from archai_aml.store.leases import lease_state, utcnow

__all__ = ["RemoteAzureBenchmarkEvaluator"]

log = logging.getLogger(__name__)

#: Result columns cleared when a model is measured again.
RESET_COLUMNS = (
    "mean", "stdev", "total_inference_avg", "macs", "params", "quantized", "f1_onnx", "f1_1k",
    "f1_1k_f", "f1_10k", "error", "completed", "priority", "converted_model", "quantized_model",
    "latency_simulated", "median", "min", "total_inference_median",
)  # fmt: skip
#: Row columns that hold latency figures (what ``latency_simulated`` is about).
LATENCY_COLUMNS = frozenset(
    {"mean", "stdev", "total_inference_avg", "median", "min", "total_inference_median"}
)
MAX_NAMES_PER_QUERY = 15


class RemoteAzureBenchmarkEvaluator(AsyncModelEvaluator):
    """Benchmark architectures on the runner fleet (see the module docstring).

    Args:
        input_shape: the model input shape, or a list of shapes for several inputs.
        store: the status store the runners watch.
        experiment_name: partition of the status table (and blob folder) of this search.
        metric_key: the row column returned by :meth:`fetch_all` (``mean``: latency in ms).
        overwrite: measure a complete model again instead of reusing its result.
        max_retries: polls without progress before :meth:`fetch_all` gives up.
        retry_interval: seconds between polls.
        onnx_export_kwargs: keyword arguments for ``torch.onnx.export`` (default: opset 13, the
            TorchScript exporter, inputs named ``input`` or ``input_0``, ``input_1``...).
        verbose: log each model's fate at INFO level.
        benchmark_only: rows are complete after their latency runs (no F1 runs).
        progress: show a tqdm progress bar while waiting.
        runner_alive_s: a runner whose heartbeat is older than this is reported dead.
        allow_simulated_latency: return latency measured on a simulator (rows with ``latency_simulated``,
            e.g. the QNN HTP emulator of an x86-64 host). By default a latency ``metric_key`` of such a row
            raises :class:`~archai_aml.errors.SimulatedLatencyError`: an emulator's timings are not the
            target's, and a search would optimize the wrong thing.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...] | list[int] | list[tuple[int, ...]] | list[list[int]],
        store: Store,
        experiment_name: str,
        metric_key: str = "mean",
        overwrite: bool = True,
        max_retries: int = 5,
        retry_interval: float = 120,
        onnx_export_kwargs: dict[str, Any] | None = None,
        verbose: bool = False,
        benchmark_only: bool = True,
        *,
        progress: bool = True,
        runner_alive_s: float = 180.0,
        allow_simulated_latency: bool = False,
    ) -> None:
        raw: Any = input_shape
        shapes: list[list[int]]
        if raw and all(isinstance(d, int) for d in raw):
            shapes = [[int(d) for d in raw]]
        else:
            shapes = [[int(d) for d in s] for s in raw]
        if not shapes or any(not s or any(d <= 0 for d in s) for s in shapes):
            raise ValueError(
                f"input_shape {input_shape!r} must be a shape of positive ints or a list of them"
            )
        self.input_shapes = shapes
        self.store = store
        self.experiment_name = experiment_name
        self.metric_key = metric_key
        self.overwrite = overwrite
        self.max_retries = max_retries
        self.retry_interval = retry_interval
        self.onnx_export_kwargs = dict(onnx_export_kwargs or {})
        self.verbose = verbose
        self.benchmark_only = benchmark_only
        self.progress = progress
        self.runner_alive_s = runner_alive_s
        self.allow_simulated_latency = allow_simulated_latency
        self.archids: list[str] = []
        self._known: dict[str, float | None] = {}
        self.batch_id = secrets.token_hex(6)

    def metric_from_row(self, row: Entity) -> float | None:
        """The value this evaluator returns for a complete row: its ``metric_key`` column as a float.

        The hook to override to return something else (e.g. a pessimistic latency from ``mean`` and
        ``stdev``); None means "no result" (logged, and the search sees None for the model)."""
        return as_float(row.get(self.metric_key))

    @property
    def shape_json(self) -> str:
        return json.dumps(self.input_shapes[0] if len(self.input_shapes) == 1 else self.input_shapes)

    # ------------------------------------------------------------------------------------------ send
    @overrides
    def send(self, arch: ArchaiModel, budget: float | None = None) -> None:
        archid = f"id_{arch.archid}"  # Azure ML folders must not start with a digit
        self.archids.append(archid)
        for _ in range(5):
            try:
                self._send(archid, arch)
                return
            except ConcurrencyError:
                continue  # somebody wrote the row in between: decide again
        log.warning("could not claim row %s after 5 tries: waiting for what is there", archid)

    def _say(self, msg: str, *args: Any) -> None:
        log.log(logging.INFO if self.verbose else logging.DEBUG, msg, *args)

    def _send(self, archid: str, arch: ArchaiModel) -> None:
        exp = self.experiment_name
        entity = self.store.get(exp, archid)
        if entity is not None:
            status, error = entity.get("status"), entity.get("error")
            if status == "complete" and self.metric_from_row(entity) is not None and not self.overwrite:
                self._known[archid] = self.metric_from_row(entity)
                self._say("%s already measured: %s = %s", archid, self.metric_key, self._known[archid])
                return
            if status not in ("complete", "error") and not error:
                self._say("%s is in progress (%s): waiting for it", archid, status)
                if entity.get("batch") != self.batch_id:
                    self.store.merge(exp, archid, {"batch": self.batch_id})
                return
        values: dict[str, Any] = dict.fromkeys(RESET_COLUMNS)
        values.update(
            {
                "status": "new",
                "shape": self.shape_json,
                "benchmark_only": bool(self.benchmark_only),
                "batch": self.batch_id,
                "model_name": "model.onnx",
                "message": "uploaded by the search",
            }
        )
        if entity is not None:  # measured again: drop the artifacts derived from the old model
            self.store.delete_blobs(exp, archid, pattern=r"^(?!model\.onnx$)")
        if arch.arch is not None:
            try:
                data = self._export(arch)
            except Exception as exc:  # any exporter failure goes into the row, never into the search
                log.error("ONNX export of %s failed: %s", archid, exc)
                values.update({"status": "error", "error": f"ONNX export failed: {exc}"[:4000]})
            else:
                self.store.upload_bytes(exp, archid, "model.onnx", data)
                values["model_date"] = utcnow()
        elif not self.store.list_blobs(exp, archid, pattern=r"^model\.onnx$"):
            values.update(
                {
                    "status": "error",
                    "error": f"model.onnx is missing for {archid}: upload it or send a model with `arch` set",
                }
            )
            log.error("%s has no arch and no model.onnx in blob storage", archid)
        if entity is None:
            try:
                self.store.create(exp, archid, {k: v for k, v in values.items() if v is not None})
            except EntityExistsError:
                raise ConcurrencyError(exp, archid, None) from None
        else:
            self.store.merge(exp, archid, values, expected_version=entity["_version"])
        self._say("sent %s to the remote benchmark (%s)", archid, values["status"])

    def _export(self, arch: ArchaiModel) -> bytes:
        import torch

        model = arch.arch.to("cpu").eval()
        sample = tuple(torch.rand(*shape) for shape in self.input_shapes)
        kwargs: dict[str, Any] = {"opset_version": 13, "dynamo": False}
        kwargs.update(self.onnx_export_kwargs)
        if "input_names" not in kwargs:
            kwargs["input_names"] = (
                ["input"] if len(sample) == 1 else [f"input_{i}" for i in range(len(sample))]
            )
        with TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            with torch.no_grad():
                torch.onnx.export(model, sample, str(path), **kwargs)
            return path.read_bytes()

    # ------------------------------------------------------------------------------------- fetch_all
    def _poll(self, pending: list[str]) -> dict[str, Entity]:
        exp = self.experiment_name
        if len(pending) <= MAX_NAMES_PER_QUERY:
            rows = self.store.query(exp, names=pending)
        else:
            rows = self.store.query(exp, where={"batch": self.batch_id})
        found = {str(r["name"]): r for r in rows}
        missing = [n for n in pending if n not in found]
        for i in range(0, len(missing) if len(pending) > MAX_NAMES_PER_QUERY else 0, MAX_NAMES_PER_QUERY):
            # rows another search re-tagged: fetch them by name (rare)
            for r in self.store.query(exp, names=missing[i : i + MAX_NAMES_PER_QUERY]):
                found[str(r["name"])] = r
        return found

    @overrides
    def fetch_all(self) -> list[float | None]:
        results: dict[str, float | None] = dict(self._known)
        pending = [a for a in dict.fromkeys(self.archids) if a not in results]
        versions: dict[str, str] = {}
        idle_polls = 0
        bar = tqdm(
            total=len(set(self.archids)),
            initial=len(set(self.archids)) - len(pending),
            desc="remote benchmark",
            unit="model",
            disable=not self.progress,
        )
        try:
            while pending:
                rows = self._poll(pending)
                progressed = False
                for name in list(pending):
                    row = rows.get(name)
                    if row is None:
                        continue
                    if row.get("_version") != versions.get(name):
                        progressed = progressed or name in versions
                        versions[name] = str(row.get("_version"))
                    if row.get("error") or row.get("status") == "error":
                        log.error("%s failed on the remote benchmark: %s", name, row.get("error"))
                        results[name] = None
                    elif row.get("status") == "complete":
                        self._check_simulated(name, row)
                        results[name] = self.metric_from_row(row)
                        if results[name] is None:
                            log.warning("%s is complete but has no %s column", name, self.metric_key)
                        self._say("%s complete: %s = %s", name, self.metric_key, results[name])
                    else:
                        continue
                    pending.remove(name)
                    progressed = True
                    bar.update(1)
                if not pending:
                    break
                idle_polls = 0 if progressed else idle_polls + 1
                if idle_polls >= self.max_retries:
                    raise EvaluationTimeoutError(self._timeout_message(pending, rows, idle_polls))
                bar.set_postfix(pending=len(pending))
                time.sleep(self.retry_interval)
        finally:
            bar.close()
        out = [results.get(a) for a in self.archids]
        self.archids = []
        self._known = {}
        self.batch_id = secrets.token_hex(6)
        return out

    def _check_simulated(self, name: str, row: Entity) -> None:
        """Refuse a simulator's latency as the objective unless ``allow_simulated_latency``."""
        if self.allow_simulated_latency or self.metric_key not in LATENCY_COLUMNS:
            return
        if row.get("latency_simulated") is True:
            raise SimulatedLatencyError(
                f"{name} of experiment {self.experiment_name!r}: its {self.metric_key!r} latency was measured "
                f"on a simulator (latency_simulated=True, runner {row.get('message', '')!r}), e.g. the QNN HTP "
                "emulator of an x86-64 host, whose timings are not the target's. Run the runners where the "
                "hardware is (qnn on an ARM64 Snapdragon host, snpe with a board, aihub), or build the "
                "evaluator with allow_simulated_latency=True to accept emulated timings (development only)"
            )

    def _timeout_message(self, pending: list[str], rows: dict[str, Entity], polls: int) -> str:
        from archai_aml.runner.worker import alive_runners

        try:
            alive = alive_runners(self.store, self.experiment_name, within=self.runner_alive_s)
        except Exception as exc:  # the heartbeat table may not exist yet
            log.debug("no runner heartbeats: %s", exc)
            alive = []
        leased = [n for n in pending if lease_state(rows.get(n))[1]]
        names = ", ".join(pending[:20]) + (f" and {len(pending) - 20} more" if len(pending) > 20 else "")
        if alive:
            nodes = ", ".join(sorted({str(r.get("node")) for r in alive}))
            who = f"{len(alive)} runner(s) alive ({nodes}), {len(leased)} pending model(s) leased"
        else:
            who = (
                f"no runner alive in the last {self.runner_alive_s:.0f}s: start one with "
                f"`archai-aml runner --target cpu --experiment {self.experiment_name}`"
            )
        return (
            f"{len(pending)} model(s) of experiment {self.experiment_name!r} made no progress in {polls} polls "
            f"{self.retry_interval}s apart: {names}; {who}"
        )
