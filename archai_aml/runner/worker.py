"""The runner: a loop that takes the best work item from the status table, does it, and repeats.

Each poll reads the head of the queue index (a few entries of each lane it can serve, whatever the number
of open rows: :mod:`~archai_aml.runner.queue_reader`), reads the rows they name best first, decides each
row's item on the row itself (:func:`~archai_aml.runner.queue.items_for_row`), and takes the lease on the
best row it can get (compare-and-swap through :class:`~archai_aml.store.leases.LeaseManager`). The release
of an item moves the row's index entries. While the item runs a heartbeat
thread renews the lease every ``ttl / 3``; if the lease is lost the item is abandoned and nothing it
produced is written to the row. Results are written with :meth:`LeaseManager.write` /
:meth:`LeaseManager.release` (CAS on the lease token), artifacts go to blob storage as each step finishes
so another runner can resume from them, and device time goes to the usage table.

At most one conversion/quantization runs at a time per host: the runner holds an exclusive ``fcntl``
lock on ``<lock_dir>/archai-aml-quantize.lock`` (``lock_dir`` defaults to the system temp folder, shared
by every runner of the host) while it converts and quantizes.

The parts: :mod:`~archai_aml.runner.settings` (how a runner works, the heartbeat table),
:mod:`~archai_aml.runner.holding` (host lock, lease holder, heartbeat thread) and
:mod:`~archai_aml.runner.steps` (what each work item does).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import random
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from archai_aml.errors import ConfigError, InvalidRowError, LeaseLostError, StoreError, TargetError
from archai_aml.runner.failures import ItemFailed, failure_text, safe_folder
from archai_aml.runner.holding import Heartbeat, HostLock, LeaseHolder
from archai_aml.runner.queue import Capabilities, WorkItem, dead_lease_wait, items_for_row
from archai_aml.runner.queue_reader import QueueReader
from archai_aml.runner.resilience import Outage, RepeatedFailures
from archai_aml.runner.settings import RunnerSettings, alive_runners, runners_store
from archai_aml.runner.steps import ItemSteps
from archai_aml.runner.usage import usage_store
from archai_aml.store.base import Entity, Store
from archai_aml.store.leases import Lease, LeaseManager, utcnow
from archai_aml.targets.base import Target

__all__ = ["STATUS_OF", "Runner", "RunnerSettings", "alive_runners", "runners_store"]

log = logging.getLogger(__name__)

#: The status a row shows while a work item of each kind runs (written with the lease, no extra request).
STATUS_OF = {
    "convert": "converting",
    "benchmark": "running benchmark",
    "f1_onnx": "running f1_onnx",
    "f1_1k": "running f1_1k",
    "f1_1k_f": "running f1_1k_f",
    "f1_10k": "running f1_10k",
}


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
        self.host_lock = HostLock(settings.lock_dir or Path(os.environ.get("TMPDIR", "/tmp")))
        try:
            self.working = safe_folder(Path(settings.working), self.experiment, "experiment")
        except InvalidRowError as exc:
            raise ConfigError(str(exc)) from None
        self.done: list[tuple[str, str]] = []
        self.kinds: Counter[str] = Counter()
        self._stop = threading.Event()
        self._signals = 0
        self._once = False  # run(once=True): store faults end the run after outage.once_limit_s
        self._last_beat = 0.0
        self._rng = random.Random(settings.seed)
        self.outage = Outage(self.owner, most=settings.outage_backoff_max, rng=self._rng)
        self.repeated = RepeatedFailures()
        self._refused: set[str] = set()  # row names that cannot be a folder: never leased
        self.queue = QueueReader(store, settings, self.owner, self._rng)
        self._lease_seen: dict[str, tuple[str, datetime]] = {}
        # uploads and usage rows of the current item run here, next to the work; all are done before the
        # release, so a row never claims a step whose artifact is not stored
        self._io_pool: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Future[Any], Callable[[], Any]]] = []
        self.steps = ItemSteps(
            store,
            target,
            settings,
            node=self.node,
            device_id=self.device_id,
            usage=self.usage,
            later=self._later,
        )

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
            level = logging.DEBUG if self.outage.active else logging.WARNING
            log.log(level, "could not write the heartbeat of %s: %s", self.owner, exc)

    # ------------------------------------------------------------------------------------------- loop
    def run(self, *, once: bool = False, max_items: int | None = None) -> int:
        """Loop until stopped (or, with ``once``, until no work is left). Returns the items done.

        A poll that fails on a store error (an outage) is logged once and tried again with a bounded,
        jittered backoff, until the store answers or the runner is stopped. With ``once``, a row leased by
        a runner that may have died (its lease not renewed) is waited for until the lease expires, then
        taken (see :func:`~archai_aml.runner.queue.dead_lease_wait`)."""
        self._beat("idle", force=True)
        self._once = once
        count = 0
        try:
            while not self.stopping:
                try:
                    worked = self.poll_once()
                except StoreError as exc:
                    self.repeated.store_unreachable()
                    self._stop.wait(self._store_fault("polling the queue", exc))
                    continue
                self.outage.succeeded()
                if worked is None:  # nothing to do
                    if once:
                        if self._exhausted():  # the full scan found rows the index did not hold
                            continue
                        wait = self._dead_lease_wait()
                        if wait is None:
                            break
                        self._stop.wait(wait + self._rng.uniform(0.05, 0.25))
                        continue
                    self._beat("idle")
                    try:  # the idle rescan writes (its claim, the index): a full disk shows here first
                        self.queue.idle()
                    except StoreError as exc:
                        self._stop.wait(self._store_fault("rebuilding the queue index", exc))
                        continue
                    self._stop.wait(self.settings.poll_interval)
                elif worked:
                    count += 1
                    if max_items is not None and count >= max_items:
                        break
                else:  # lost every race: look again soon
                    self._stop.wait(self._rng.uniform(0, self.settings.poll_interval / 4))
        finally:
            self._settle(quiet=True)
            self.queue.settle()
            self.close()
            if self.outage.active:  # a heartbeat write would wait out the store's retries first
                log.warning(
                    "%s: stopping during a store outage: the heartbeat row is not updated", self.owner
                )
            else:
                self._beat("stopped", force=True)
        return count

    def _exhausted(self) -> bool:
        try:
            return self.queue.exhausted()
        except StoreError as exc:  # the dead-lease wait then works from the last poll's rows
            log.warning("%s: the full scan before stopping failed: %s", self.owner, exc)
            return False

    def _store_fault(self, what: str, exc: StoreError) -> float:
        """A store call of the loop failed: how long to back off (the outage logs it once), or the fatal
        error (read-only, or ``--once`` past its limit: it says which, exit 2)."""
        delay = self.outage.failed(what, exc)
        fatal = self.outage.give_up(exc, once=self._once)
        if fatal is not None:
            raise fatal from exc
        return delay

    def _dead_lease_wait(self) -> float | None:
        wait = dead_lease_wait(
            [r for r in self.queue.rows_seen if self._usable(r)],
            self.capabilities(not self.settings.no_quantization),
            self._lease_seen,
            owner=self.owner,
        )
        if wait is not None:
            log.info("%s: waiting %.1f s for a lease that was not renewed to expire", self.owner, wait)
        return wait

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

    def poll_once(self) -> bool | None:
        """One poll: ``True`` if an item was done, ``False`` if work exists but none could be leased,
        ``None`` if there is nothing this runner can do."""
        holds_lock = not self.settings.no_quantization and self.host_lock.try_acquire()
        try:
            tried = False
            for item in self.queue.items(self.capabilities(holds_lock), self._usable):
                if not tried:  # the queue was read: the store answers
                    self.repeated.store_reachable()
                tried = True
                if holds_lock and item.kind != "convert":
                    self.host_lock.release()
                    holds_lock = False
                if self._try_item(item):
                    return True
            if not tried:
                self.repeated.store_reachable()
            return False if tried else None
        finally:
            if holds_lock:
                self.host_lock.release()

    def _usable(self, row: Entity) -> bool:
        """Whether the row's name can be a folder under the working folder (else it is never leased)."""
        name = str(row.get("name"))
        if name in self._refused:
            return False
        try:
            safe_folder(self.working, name)
        except InvalidRowError as exc:
            self._refused.add(name)
            log.error("%s: skipping a row: %s", self.owner, exc)
            return False
        return True

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
            self.queue.released(item.entity, self.leases.release(lease))
            return False
        self._work(fresh[0], lease, before=item.entity)
        return True

    # ------------------------------------------------------------------------------------------- work
    def _work(self, item: WorkItem, lease: Lease, *, before: Entity) -> None:
        """Do ``item`` under ``lease``; ``before``: the row as the queue read it (its index entries)."""
        holder = LeaseHolder(self.leases, lease)
        heartbeat = Heartbeat(holder, self.settings.lease_ttl, lambda name: self._beat("working", name))
        heartbeat.start()
        self._beat("working", item.name)
        released = False
        folder = self.working
        log.info("%s: %s of %s", self.owner, item.label, item.name)
        try:
            folder = safe_folder(self.working, item.name)
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            results = self.steps.do(item, holder, folder)
            self._settle(holder=holder)
            holder.check()
            if not self.stopping:  # the next poll's queue read travels with the release
                self.queue.read_ahead(self._io, self.capabilities(not self.settings.no_quantization))
            row = self._release_done(holder, heartbeat, results, before)
            released = row is not None
            if released:
                self.done.append((item.name, item.label))
                self.kinds[item.kind] += 1
                self.repeated.succeeded((item.name, item.label))
        except LeaseLostError as exc:
            log.warning("%s: abandoned %s of %s: %s", self.owner, item.label, item.name, exc)
            released = True
        except (ItemFailed, InvalidRowError, TargetError) as exc:
            message = failure_text(item, exc, folder, self.experiment)
            log.error("%s: %s", self.owner, message)
            released = self._release_in_error(holder, heartbeat, message, f"{item.label} failed", before)
        except (StoreError, OSError) as exc:
            message = failure_text(item, exc, folder, self.experiment)
            store_error = isinstance(exc, StoreError)
            if self.repeated.failed((item.name, item.label), message, store_error=store_error):
                log.error("%s: %s (the second time: not retried)", self.owner, message)
                error = f"{message} (failed twice the same way; fix the cause, then clear the error column)"
                released = self._release_in_error(holder, heartbeat, error, f"{item.label} failed", before)
            else:
                log.warning("%s: %s; will retry", self.owner, message)
        except Exception as exc:  # a bug on this row must not stop the fleet: record it, go on
            log.exception("%s: %s of %s crashed", self.owner, item.label, item.name)
            with contextlib.suppress(Exception):
                error = f"{item.label}: internal error {type(exc).__name__}: {exc}"
                released = self._release_in_error(holder, heartbeat, error, f"{item.label} crashed", before)
        finally:
            heartbeat.done.set()
            self._settle(quiet=True)
            if not released and not holder.lost.is_set():
                with holder.lock, contextlib.suppress(Exception):
                    self.leases.release(
                        holder.lease, extra={"message": f"{item.label} interrupted on {self.node}"}
                    )

    def _release_in_error(
        self, holder: LeaseHolder, heartbeat: Heartbeat, error: str, what: str, before: Entity
    ) -> bool:
        """Wait for the item's writes, release the row in ``error`` (``error`` starts with the item's
        label); True if released."""
        self._settle(quiet=True)
        values = {"status": "error", "error": error[:4000], "message": f"{what} on {self.node}"}
        return self._release_done(holder, heartbeat, values, before) is not None

    def _release_done(
        self, holder: LeaseHolder, heartbeat: Heartbeat, values: dict[str, Any], before: Entity
    ) -> Entity | None:
        """Release the lease writing ``values``, stop the heartbeat, then move the row's queue index entries
        from ``before`` (the row as the queue read it). A store error (an outage) does not lose the item's
        work: the heartbeat keeps renewing the lease while the release is tried again with backoff, until it
        lands or the lease is found lost (None then)."""
        while True:
            try:
                with holder.lock:
                    row = self.leases.release(holder.lease, extra=values)
                    heartbeat.done.set()
                break
            except LeaseLostError:
                heartbeat.done.set()
                return None
            except StoreError as exc:
                if holder.lost.is_set():
                    heartbeat.done.set()
                    return None
                delay = self.outage.failed(f"releasing {holder.lease.name}", exc)
                fatal = self.outage.give_up(exc, once=self._once)
                if fatal is not None:
                    raise fatal from exc
                time.sleep(delay)
        self.outage.succeeded()
        heartbeat.join()
        self.queue.released(before, row)
        return row

    def _later(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run a store write (upload, usage row) of the current item on the I/O threads. Each must be safe
        to run twice (an overwrite, an insert under a name chosen once): :meth:`_settle` may run it again."""
        self._pending.append((self._io.submit(fn, *args, **kwargs), lambda: fn(*args, **kwargs)))

    def _settle(self, *, quiet: bool = False, holder: LeaseHolder | None = None) -> None:
        """Wait for the current item's background writes; raise the first failure unless ``quiet``.

        With the item's ``holder`` (the item is done, its results wait for these writes), a write that
        failed on a store error is run again with backoff while the lease is still held, so an outage does
        not throw the item's work away (and a benchmark is never run twice because its upload failed)."""
        pending, self._pending = self._pending, []
        first: BaseException | None = None
        for future, again in pending:
            exc = future.exception()
            while exc is not None and holder is not None and isinstance(exc, StoreError):
                if holder.lost.is_set() or isinstance(exc, LeaseLostError):
                    break
                delay = self.outage.failed("a write of the finished item", exc)
                fatal = self.outage.give_up(exc, once=self._once)
                if fatal is not None:
                    raise fatal from exc
                time.sleep(delay)
                try:
                    again()
                    exc = None
                    self.outage.succeeded()
                except Exception as retry_exc:
                    exc = retry_exc
            if exc is not None and first is None:
                first = exc
        if first is not None:
            if not quiet:
                raise first
            log.warning("%s: a background write of an abandoned item failed: %s", self.owner, first)
