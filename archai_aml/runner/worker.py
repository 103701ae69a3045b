"""The runner: a loop that takes the best work item from the status table, does it, and repeats.

Each poll makes one ``query`` for the experiment's open rows, builds the priority queue
(:func:`~archai_aml.runner.queue.build_queue`), and takes the lease on the best row it can get
(compare-and-swap through :class:`~archai_aml.store.leases.LeaseManager`). While the item runs a heartbeat
thread renews the lease every ``ttl / 3``; if the lease is lost the item is abandoned and nothing it
produced is written to the row. Results are written with :meth:`LeaseManager.write` /
:meth:`LeaseManager.release` (CAS on the lease token), artifacts go to blob storage as each step finishes
so another runner can resume from them, and device time goes to the usage table.

At most one conversion/quantization runs at a time per host: the runner holds an exclusive ``fcntl``
lock on ``<lock_dir>/archai-aml-quantize.lock`` (``lock_dir`` defaults to the system temp folder, shared
by every runner of the host) while it converts and quantizes.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import logging
import os
import platform
import random
import shutil
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from archai_aml.config import ArchaiAmlConfig
from archai_aml.errors import InvalidRowError, LeaseLostError, StoreError, TargetError
from archai_aml.runner.queue import (
    DEVICE_KINDS,
    DONE_STATUSES,
    F1_COLUMNS,
    Capabilities,
    WorkItem,
    build_queue,
    is_benchmark_only,
    items_for_row,
    parse_json_list,
    parse_shape,
)
from archai_aml.runner.usage import record_usage, usage_store
from archai_aml.store.base import Entity, Store
from archai_aml.store.leases import Lease, LeaseManager, utcnow
from archai_aml.targets.base import Target

__all__ = ["Runner", "RunnerSettings", "alive_runners", "runners_store"]

log = logging.getLogger(__name__)

CONVERTED_DIR = "converted"
QUANTIZED_DIR = "quantized"
MODEL_BLOB = "model.onnx"
#: The status a row shows while a work item of each kind runs (written with the lease, no extra request).
STATUS_OF = {
    "convert": "converting",
    "benchmark": "running benchmark",
    "f1_onnx": "running f1_onnx",
    "f1_1k": "running f1_1k",
    "f1_1k_f": "running f1_1k_f",
    "f1_10k": "running f1_10k",
}


def runners_store(store: Store) -> Store:
    """The table where runners write their heartbeats (``<status table>runners``)."""
    return store.with_table(f"{store.table_name}runners")


def alive_runners(store: Store, experiment: str, *, within: float) -> list[Entity]:
    """Runners of ``experiment`` whose heartbeat is more recent than ``within`` seconds."""
    now = utcnow()
    alive = []
    for row in runners_store(store).query(experiment):
        seen = row.get("last_seen")
        if (
            isinstance(seen, datetime)
            and (now - seen).total_seconds() <= within
            and row.get("state") != "stopped"
        ):
            alive.append(row)
    return alive


@dataclass
class RunnerSettings:
    """How a runner works. ``lease_ttl`` and ``poll_interval`` are seconds; F1 sizes are image counts."""

    experiment: str
    device: str | None = None
    benchmark_only: bool = False
    max_benchmark_runs: int = 5
    subset: frozenset[str] | None = None
    no_quantization: bool = False
    no_device_work: bool = False
    working: Path = field(default_factory=lambda: Path(".archai_aml/runner"))
    lock_dir: Path | None = None
    lease_ttl: float = 60.0
    poll_interval: float = 10.0
    benchmark_iterations: int = 50
    calibration_images: int = 32
    f1_onnx_images: int = 10000
    f1_1k_images: int = 1000
    f1_10k_images: int = 10000
    dataset: str | None = None
    node: str | None = None
    seed: int | None = None

    @classmethod
    def from_config(cls, config: ArchaiAmlConfig, **overrides: Any) -> RunnerSettings:
        """Settings from the ``target:``/``runner:`` sections of a configuration; an override that is None
        keeps the configured value (so command-line options that were not given can be passed as they are)."""
        tc, rc = config.target, config.runner
        values: dict[str, Any] = {
            "experiment": config.experiment_name,
            "device": tc.device,
            "max_benchmark_runs": tc.max_benchmark_runs,
            "working": rc.working,
            "lock_dir": rc.lock_dir,
            "lease_ttl": rc.lease_ttl_s,
            "poll_interval": rc.poll_interval_s,
            "benchmark_iterations": tc.benchmark_iterations,
            "calibration_images": tc.calibration_images,
            "f1_onnx_images": tc.f1_onnx_images,
            "f1_1k_images": tc.f1_1k_images,
            "f1_10k_images": tc.f1_10k_images,
            "dataset": tc.dataset,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class _HostLock:
    """An exclusive, non-blocking ``fcntl`` lock on a file shared by the runners of one host."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "archai-aml-quantize.lock"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class _LeaseHolder:
    """The current lease, shared by the worker and its heartbeat thread."""

    def __init__(self, leases: LeaseManager, lease: Lease) -> None:
        self.leases = leases
        self.lease = lease
        self.lock = threading.Lock()
        self.lost = threading.Event()
        #: status columns waiting for the next lease renewal (or dropped by the release's own values)
        self.notes: dict[str, Any] = {}

    def note(self, values: dict[str, Any]) -> None:
        """Say what is happening (``status``/``message``) with the next heartbeat renewal: no request of its
        own. The release writes the item's final status over it, so a short step is never written."""
        with self.lock:
            self.notes.update(values)

    def write(self, values: dict[str, Any]) -> None:
        if self.lost.is_set():
            raise LeaseLostError(f"lease on {self.lease.name} was lost: not writing {sorted(values)}")
        with self.lock:
            self.lease = self.leases.write(self.lease, values)

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLostError(f"lease on {self.lease.name} was lost: abandoning the work item")


class _Heartbeat(threading.Thread):
    def __init__(self, runner: Runner, holder: _LeaseHolder, ttl: float) -> None:
        super().__init__(name=f"heartbeat-{holder.lease.name}", daemon=True)
        self.runner = runner
        self.holder = holder
        self.ttl = ttl
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.ttl / 3):
            try:
                with self.holder.lock:
                    notes = dict(self.holder.notes)
                    self.holder.lease = self.holder.leases.renew(self.holder.lease, self.ttl, extra=notes)
                    for key in notes:
                        if self.holder.notes.get(key) == notes[key]:
                            del self.holder.notes[key]
            except LeaseLostError as exc:
                log.warning("%s", exc)
                self.holder.lost.set()
                return
            except Exception as exc:  # a transient store error: try again at the next beat
                log.warning("could not renew the lease on %s: %s", self.holder.lease.name, exc)
            self.runner._beat("working", self.holder.lease.name)


class _ItemFailed(Exception):
    """The work item failed for a reason that belongs in the row's ``error`` column."""


class Runner:
    """Runs work items of one experiment on one target until stopped (see the module docstring)."""

    def __init__(self, store: Store, target: Target, settings: RunnerSettings) -> None:
        self.store = store
        self.target = target
        self.settings = settings
        self.experiment = settings.experiment
        host = settings.node or platform.node() or "localhost"
        self.node = f"{host}_{settings.device}" if settings.device else host
        self.owner = f"{self.node}:{os.getpid()}:{id(self) & 0xFFFF:04x}"
        self.device_id = settings.device or f"{target.name}@{host}"
        self.use_device = not settings.no_device_work and (not target.needs_device or bool(settings.device))
        self.leases = LeaseManager(store, self.experiment)
        self.usage = usage_store(store)
        self.runners = runners_store(store)
        self.host_lock = _HostLock(settings.lock_dir or Path(os.environ.get("TMPDIR", "/tmp")))
        self.working = Path(settings.working) / self.experiment
        self.done: list[tuple[str, str]] = []
        self.kinds: Counter[str] = Counter()
        self._stop = threading.Event()
        self._signals = 0
        self._last_beat = 0.0
        self._rng = random.Random(settings.seed)
        # uploads and usage rows of the current item run here, next to the work; all are done before the
        # release, so a row never claims a step whose artifact is not stored
        self._io_pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[Any]] = []
        # the next poll's query, sent together with the release of the item just done, and that release
        self._prefetch: Future[list[Entity]] | None = None
        self._released: Entity | None = None

    # ---------------------------------------------------------------------------------------- control
    def stop(self) -> None:
        """Finish the current work item, then leave :meth:`run`."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM: the first finishes the current item and stops; the second interrupts it (its
        lease is released, nothing is written). Call from the main thread."""

        def handler(signum: int, frame: FrameType | None) -> None:
            self._signals += 1
            if self._signals == 1:
                log.warning("signal %d: finishing the current work item, then stopping", signum)
                self.stop()
            else:
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def capabilities(self, can_quantize: bool) -> Capabilities:
        s = self.settings
        return Capabilities(
            use_device=self.use_device,
            can_quantize=can_quantize,
            benchmark_only=s.benchmark_only,
            max_benchmark_runs=s.max_benchmark_runs,
            subset=s.subset,
        )

    def _beat(self, state: str, item: str = "", *, force: bool = False) -> None:
        """Write this runner's heartbeat row at most every ``ttl / 2`` seconds (or now with ``force``)."""
        now = time.monotonic()
        if not force and now - self._last_beat < self.settings.lease_ttl / 2:
            return
        self._last_beat = now
        try:
            self.runners.merge(
                self.experiment,
                self.owner,
                {
                    "node": self.node,
                    "device": self.device_id,
                    "target": self.target.name,
                    "state": state,
                    "item": item,
                    "last_seen": utcnow(),
                },
            )
        except Exception as exc:
            log.warning("could not write the heartbeat of %s: %s", self.owner, exc)

    # ------------------------------------------------------------------------------------------- loop
    def run(self, *, once: bool = False, max_items: int | None = None) -> int:
        """Loop until stopped (or, with ``once``, until no work is left). Returns the items done."""
        self._beat("idle", force=True)
        count = 0
        try:
            while not self.stopping:
                worked = self.poll_once()
                if worked is None:  # nothing to do
                    if once:
                        break
                    self._beat("idle")
                    self._stop.wait(self.settings.poll_interval)
                elif worked:
                    count += 1
                    if max_items is not None and count >= max_items:
                        break
                else:  # lost every race: look again soon
                    self._stop.wait(self._rng.uniform(0, self.settings.poll_interval / 4))
        finally:
            self._settle(quiet=True)
            self._take_prefetched()
            self.close()
            self._beat("stopped", force=True)
        return count

    @property
    def _io(self) -> ThreadPoolExecutor:
        if self._io_pool is None:
            self._io_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"io-{self.owner}")
        return self._io_pool

    def close(self) -> None:
        """Stop the I/O threads (:meth:`run` does it when it returns; they start again when needed)."""
        pool, self._io_pool = self._io_pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _query(self) -> list[Entity]:
        return self.store.query(self.experiment, status_not=DONE_STATUSES)

    def _take_prefetched(self) -> list[Entity] | None:
        """The rows of the query sent with the last release, with the released row as that write left it
        (the query may have run just before it); ``None`` when there is none or it failed."""
        future, released = self._prefetch, self._released
        self._prefetch = self._released = None
        if future is None:
            return None
        try:
            rows = future.result()
        except Exception as exc:  # a transient store error: the poll queries again
            log.warning("%s: the query sent with the last release failed: %s", self.owner, exc)
            return None
        if released is not None:
            rows = [r for r in rows if r.get("name") != released.get("name")]
            if released.get("status") not in DONE_STATUSES:
                rows.append(released)
        return rows

    def poll_once(self) -> bool | None:
        """One poll: ``True`` if an item was done, ``False`` if work exists but none could be leased,
        ``None`` if there is nothing this runner can do."""
        rows = self._take_prefetched()
        if rows is None:
            rows = self._query()
        holds_lock = not self.settings.no_quantization and self.host_lock.try_acquire()
        try:
            queue = build_queue(rows, self.capabilities(holds_lock))
            if not queue:
                return None
            for item in self._spread(queue):
                if holds_lock and item.kind != "convert":
                    self.host_lock.release()
                    holds_lock = False
                if self._try_item(item):
                    return True
            return False
        finally:
            if holds_lock:
                self.host_lock.release()

    def _spread(self, queue: list[WorkItem]) -> Iterator[WorkItem]:
        """Items best first; equal priorities in a per-runner random order (fewer lease races)."""
        i = 0
        while i < len(queue):
            j = i
            while j < len(queue) and queue[j].priority == queue[i].priority:
                j += 1
            group = queue[i:j]
            self._rng.shuffle(group)
            yield from group
            i = j

    def _try_item(self, item: WorkItem) -> bool:
        lease = self.leases.acquire(
            item.name,
            self.owner,
            self.settings.lease_ttl,
            entity=item.entity,
            reread=False,  # lost the race on this row: try the next item of the same query instead
            extra={
                "node": self.node,
                "status": STATUS_OF[item.kind],
                "message": f"{item.label} on {self.node}",
            },
        )
        if lease is None:
            return False
        # Decide again on the row as it is now that it is ours: the queue may have been stale.
        fresh = items_for_row(lease.entity, self.capabilities(item.kind == "convert"))
        if not fresh:
            self.leases.release(lease)
            return False
        self._work(fresh[0], lease)
        return True

    # ------------------------------------------------------------------------------------------- work
    def _work(self, item: WorkItem, lease: Lease) -> None:
        holder = _LeaseHolder(self.leases, lease)
        heartbeat = _Heartbeat(self, holder, self.settings.lease_ttl)
        heartbeat.start()
        self._beat("working", item.name)
        folder = self.working / item.name
        released = False
        log.info("%s: %s of %s", self.owner, item.label, item.name)
        try:
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            results = self._do(item, holder, folder)
            self._settle()
            holder.check()
            heartbeat.done.set()
            heartbeat.join()
            if not self.stopping:  # the next poll's query travels with the release
                self._prefetch = self._io.submit(self._query)
            with holder.lock:
                row = self.leases.release(holder.lease, extra=results)
            released = row is not None
            self._released = row
            if released:
                self.done.append((item.name, item.label))
                self.kinds[item.kind] += 1
        except LeaseLostError as exc:
            log.warning("%s: abandoned %s of %s: %s", self.owner, item.label, item.name, exc)
            released = True
        except (_ItemFailed, InvalidRowError, TargetError) as exc:
            message = (
                f"{exc}: {exc.__cause__}" if isinstance(exc, _ItemFailed) and exc.__cause__ else str(exc)
            )
            log.error("%s: %s of %s failed: %s", self.owner, item.label, item.name, message)
            released = self._release_in_error(item, holder, heartbeat, message, "failed")
        except (StoreError, OSError) as exc:
            log.warning(
                "%s: %s of %s stopped by a store/IO error, will retry: %s",
                self.owner,
                item.label,
                item.name,
                exc,
            )
        except Exception as exc:  # a bug on this row must not stop the fleet: record it, go on
            log.exception("%s: %s of %s crashed", self.owner, item.label, item.name)
            with contextlib.suppress(Exception):
                error = f"internal error {type(exc).__name__}: {exc}"
                released = self._release_in_error(item, holder, heartbeat, error, "crashed")
        finally:
            heartbeat.done.set()
            self._settle(quiet=True)
            if not released and not holder.lost.is_set():
                with holder.lock, contextlib.suppress(Exception):
                    self.leases.release(
                        holder.lease, extra={"message": f"{item.label} interrupted on {self.node}"}
                    )

    def _release_in_error(
        self, item: WorkItem, holder: _LeaseHolder, heartbeat: _Heartbeat, error: str, verb: str
    ) -> bool:
        """Stop the heartbeat, wait for the item's writes, release the row in ``error``; True if released."""
        heartbeat.done.set()
        self._settle(quiet=True)
        values = {
            "status": "error",
            "error": f"{item.label}: {error}"[:4000],
            "message": f"{item.label} {verb} on {self.node}",
        }
        with holder.lock:
            return self.leases.release(holder.lease, extra=values) is not None

    def _later(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run a store write (upload, usage row) of the current item on the I/O threads."""
        self._pending.append(self._io.submit(fn, *args, **kwargs))

    def _upload(self, name: str, path: Path, blob_name: str) -> None:
        self._later(self.store.upload, self.experiment, name, path, blob_name=blob_name)

    def _record_usage(self, name: str, item: str, start: datetime, end: datetime) -> None:
        self._later(
            record_usage,
            self.usage, device=self.device_id, node=self.node, start=start, end=end,
            row=name, experiment=self.experiment, item=item,
        )  # fmt: skip

    def _settle(self, *, quiet: bool = False) -> None:
        """Wait for the current item's background writes; raise the first failure unless ``quiet``."""
        pending, self._pending = self._pending, []
        first: BaseException | None = None
        for future in pending:
            exc = future.exception()
            if exc is not None and first is None:
                first = exc
        if first is not None:
            if not quiet:
                raise first
            log.warning("%s: a background write of an abandoned item failed: %s", self.owner, first)

    def _status(self, holder: _LeaseHolder, status: str, what: str) -> None:
        """Say what is happening in the row, with the next lease renewal (nothing when the lease write
        already said it)."""
        if holder.lease.entity.get("status") != status or holder.notes:
            holder.note({"status": status, "message": f"{what} on {self.node}"})

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the target; any failure of the model or backend becomes the row's error."""
        try:
            return fn(*args, **kwargs)
        except (LeaseLostError, StoreError):
            raise
        except Exception as exc:
            raise _ItemFailed(what) from exc

    def _download(
        self, name: str, folder: Path, blob: str, *, what: str | None = None, missing: str | None = None
    ) -> Path:
        """Download one blob of the row; a missing one fails the item as ``what`` (default: the blob)."""
        try:
            paths = self.store.download(self.experiment, name, folder, blob_names=[blob])
        except FileNotFoundError:
            paths = []
        if not paths:
            raise _ItemFailed(what or blob) from FileNotFoundError(
                missing or f"blob {blob} of {name} is missing"
            )
        return paths[0]

    def _do(self, item: WorkItem, holder: _LeaseHolder, folder: Path) -> dict[str, Any]:
        entity = holder.lease.entity
        shapes = parse_shape(entity)  # InvalidRowError for anything that is not a JSON shape
        if item.kind == "convert":
            return self._convert(item, holder, folder, shapes)
        if item.kind == "benchmark":
            return self._benchmark(item, holder, folder)
        return self._f1(item, holder, folder, shapes)

    # ---------------------------------------------------------------------------- convert + quantize
    def _convert(
        self, item: WorkItem, holder: _LeaseHolder, folder: Path, shapes: list[list[int]] | None
    ) -> dict[str, Any]:
        name = item.name
        blobs = set(self.store.list_blobs(self.experiment, name))  # what a runner before us left
        if MODEL_BLOB not in blobs:
            raise _ItemFailed("missing model") from FileNotFoundError(_missing_model(name))
        results: dict[str, Any] = {}
        onnx_path = self._download(name, folder, MODEL_BLOB)
        if shapes is None:
            shapes = self._call("reading the model's input shape", _onnx_input_shapes, onnx_path)
            results["shape"] = json.dumps(shapes[0] if len(shapes) == 1 else shapes)
        converted = sorted(b for b in blobs if b.startswith(CONVERTED_DIR + "/"))
        if converted:
            results["converted_model"] = converted[0]
        else:
            self._status(holder, "converting", "converting")
            conv_path = self._call("convert", self.target.convert, onnx_path, folder / CONVERTED_DIR)
            holder.check()
            results["converted_model"] = f"{CONVERTED_DIR}/{conv_path.name}"
            self._upload(name, conv_path, results["converted_model"])
        # a quantized model's companions (an EP-context model's .bin context binary) are never the model
        quantized = sorted(b for b in blobs if b.startswith(QUANTIZED_DIR + "/") and not b.endswith(".bin"))
        if quantized:
            quant_path = self._download(name, folder, quantized[0])
            self._download_companions(name, folder, quant_path, quantized[0])
            results["quantized_model"] = quantized[0]
        else:
            self._status(holder, "quantizing", "quantizing")
            calibration = _calibration(self.settings, shapes[0])
            quant_path = self._call(
                "quantize", self.target.quantize, onnx_path, calibration, folder / QUANTIZED_DIR
            )
            holder.check()
            results["quantized_model"] = f"{QUANTIZED_DIR}/{quant_path.name}"
            for extra in self.target.companion_files(quant_path):
                self._upload(name, quant_path.parent / extra, f"{QUANTIZED_DIR}/{extra}")
            self._upload(name, quant_path, results["quantized_model"])
        info = self._call("model info", self.target.info, quant_path, folder / "info")
        holder.check()
        if info.layers_csv is not None and Path(info.layers_csv).is_file():
            self._upload(name, Path(info.layers_csv), "model.info.csv")
        results.update(
            {
                "macs": int(info.macs),
                "params": int(info.params),
                "quantized": True,
                "status": "converted",
                "message": f"converted on {self.node}",
            }
        )
        return results

    # ------------------------------------------------------------------------------------- benchmark
    def _model(self, holder: _LeaseHolder, folder: Path, prefix: str) -> Path:
        """Download the row's converted or quantized model: the blob its ``<prefix>_model`` column names
        (written by the conversion), else the first ``<prefix>/`` blob listed (rows converted before that
        column existed)."""
        name = holder.lease.name
        recorded = holder.lease.entity.get(f"{prefix}_model")
        if isinstance(recorded, str) and recorded.startswith(prefix + "/"):
            blob = recorded
        else:
            found = sorted(
                b
                for b in self.store.list_blobs(self.experiment, name)
                if b.startswith(prefix + "/") and not b.endswith(".bin")  # a context binary is a companion
            )
            if not found:
                raise _ItemFailed(f"missing {prefix} model") from FileNotFoundError(_missing_derived(prefix))
            blob = found[0]
        path = self._download(
            name, folder, blob, what=f"missing {prefix} model", missing=_missing_derived(prefix, blob)
        )
        self._download_companions(name, folder, path, blob)
        return path

    def _download_companions(self, name: str, folder: Path, model: Path, blob: str) -> None:
        """The files a downloaded model loads from beside it (:meth:`Target.companion_files`)."""
        extras = self._call("reading the model's companion files", self.target.companion_files, model)
        prefix = blob.rpartition("/")[0]
        for extra in extras:
            what = f"missing {extra} beside {blob}"
            self._download(name, folder, f"{prefix}/{extra}" if prefix else extra, what=what)

    def _benchmark(self, item: WorkItem, holder: _LeaseHolder, folder: Path) -> dict[str, Any]:
        name, entity = item.name, holder.lease.entity
        model = self._model(holder, folder, QUANTIZED_DIR)
        self._status(
            holder, "running benchmark", f"benchmark run {item.run + 1}/{self.settings.max_benchmark_runs}"
        )
        start = utcnow()
        result = self._call(
            "benchmark", self.target.benchmark, model, iterations=self.settings.benchmark_iterations
        )
        end = utcnow()
        holder.check()
        csv_path = folder / f"benchmark_{item.run + 1}.csv"
        if result.csv is not None and Path(result.csv).is_file():
            shutil.copyfile(result.csv, csv_path)
        else:
            with csv_path.open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["iteration", "latency_ms"])
                w.writerows(enumerate(result.samples_ms))
        self._upload(name, csv_path, f"benchmark/{csv_path.name}")
        self._record_usage(name, item.label, start, end)
        runs = [float(x) for x in parse_json_list(entity, "total_inference_avg")] + [float(result.mean_ms)]
        mean = statistics.mean(runs)
        values: dict[str, Any] = {
            "total_inference_avg": json.dumps(runs),
            "mean": mean,
            "latency_simulated": bool(result.latency_simulated),
            "status": "benchmarked",
            "message": f"benchmark run {len(runs)} done on {self.node}",
        }
        if len(runs) > 1 and mean > 0:
            values["stdev"] = statistics.stdev(runs) * 100.0 / mean
        if len(runs) >= self.settings.max_benchmark_runs and is_benchmark_only(
            entity, self.settings.benchmark_only
        ):
            values.update({"status": "complete", "completed": end, "message": f"complete on {self.node}"})
        return values

    # -------------------------------------------------------------------------------------------- F1
    def _f1(
        self,
        item: WorkItem,
        holder: _LeaseHolder,
        folder: Path,
        shapes: list[list[int]] | None,
    ) -> dict[str, Any]:
        from archai_aml.data import open_dataset
        from archai_aml.scoring.segmentation import F1Accumulator, save_pr_curve_png, write_scores_csv

        name, prop, s = item.name, item.kind, self.settings
        if shapes is None:
            raise InvalidRowError(f"row {name!r} has no shape: cannot build the {prop} test set")
        size = {"f1_onnx": s.f1_onnx_images, "f1_1k": s.f1_1k_images, "f1_1k_f": s.f1_1k_images}.get(
            prop, s.f1_10k_images
        )
        run_batch = self.target.run_batch
        if prop == "f1_onnx":  # the float export on onnxruntime's CPU provider, wherever the runner is
            from archai_aml.ort.target import OrtCpuTarget

            model = self._download(name, folder, MODEL_BLOB)
            run_batch = OrtCpuTarget(progress=False).run_batch  # one session for the whole test set
        elif prop == "f1_1k_f":
            model = self._model(holder, folder, CONVERTED_DIR)
        else:
            model = self._model(holder, folder, QUANTIZED_DIR)
        self._status(holder, f"running {prop}", f"{prop} on {size} images")
        shape = shapes[0]
        data = self._call("opening the test set", open_dataset, s.dataset, split="test", length=size,
                          image_size=(shape[-2], shape[-1]))  # fmt: skip
        acc = F1Accumulator(
            data.num_classes, pr_classes=range(data.num_classes) if data.num_classes <= 20 else ()
        )
        start = utcnow()
        batch = max(1, shape[0])
        for first in range(0, len(data), 64):
            holder.check()
            pairs = [data[i] for i in range(first, min(first + 64, len(data)))]
            images = np.stack([p[0] for p in pairs]).astype(np.float32)
            labels = np.stack([p[1] for p in pairs])
            outputs = self._call(prop, run_batch, model, images, batch_size=batch)
            self._call(f"{prop} scoring", acc.update, labels, outputs)
        end = utcnow()
        scores, curves = acc.scores(), acc.pr_curves()
        results_csv = write_scores_csv(scores, folder / f"test_results_{prop}.csv", pr_curves=curves)
        self._upload(name, results_csv, results_csv.name)
        if curves:
            png = save_pr_curve_png(
                {f"class {c}": curve for c, curve in curves.items()},
                folder / f"pr_curve_{prop}.png",
                title=f"{name} {prop}",
            )
            self._upload(name, png, png.name)
        if prop in DEVICE_KINDS:
            self._record_usage(name, prop, start, end)
        f1 = float(scores.mean_f1)
        values: dict[str, Any] = {
            prop: f1,
            "status": f"{prop} done",
            "message": f"{prop}={f1:.4f} on {self.node}",
        }
        entity = holder.lease.entity
        if all(entity.get(c) is not None or c == prop for c in F1_COLUMNS):
            values.update({"status": "complete", "completed": end, "message": f"complete on {self.node}"})
        return values


def _missing_model(name: str) -> str:
    return f"{MODEL_BLOB} is missing in blob storage for {name}: upload it again"


def _missing_derived(prefix: str, blob: str | None = None) -> str:
    what = f"blob {blob}" if blob else f"no {prefix}/ model"
    return f"{what} missing in blob storage: reset the row's macs/quantized columns to redo the conversion"


def _onnx_input_shapes(path: Path) -> list[list[int]]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    init = {t.name for t in model.graph.initializer}
    shapes = []
    for inp in model.graph.input:
        if inp.name in init:
            continue
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
        shapes.append(dims)
    if not shapes:
        raise TargetError(f"{path.name} declares no input")
    return shapes


def _calibration(settings: RunnerSettings, shape: list[int]) -> Iterator[np.ndarray]:
    """Calibration batches (1 x C x H x W) from the training split, opened only if the target reads them."""
    from archai_aml.data import open_dataset

    data = open_dataset(
        settings.dataset, split="train", length=settings.calibration_images, image_size=(shape[-2], shape[-1])
    )
    for i in range(len(data)):
        yield np.asarray(data[i][0], dtype=np.float32)[None]
