"""What a working runner holds: the host's quantization lock, the lease on its row, and the heartbeat thread
that renews that lease every ``ttl / 3`` (carrying the row's status notes, so a step's status costs no
request of its own)."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archai_aml.errors import LeaseLostError
from archai_aml.store.leases import Lease, LeaseManager

__all__ = ["Heartbeat", "HostLock", "LeaseHolder"]

log = logging.getLogger(__name__)


class HostLock:
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


class LeaseHolder:
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


class Heartbeat(threading.Thread):
    """Renews the held lease every ``ttl / 3`` and calls ``on_beat(item)`` after each try.

    A renewal that fails on a store error is tried again at the next beat; the first failure of a run of
    them is logged as a warning, the others at debug level, and the recovery once. A lease found lost
    (its token changed: expired and taken, or broken) sets ``holder.lost`` and ends the thread.
    """

    def __init__(self, holder: LeaseHolder, ttl: float, on_beat: Callable[[str], None] | None = None) -> None:
        super().__init__(name=f"heartbeat-{holder.lease.name}", daemon=True)
        self.holder = holder
        self.ttl = ttl
        self.on_beat = on_beat
        self.done = threading.Event()
        #: renewals that failed on a store error (over the thread's life)
        self.failures = 0

    def run(self) -> None:
        failing = False
        while not self.done.wait(self.ttl / 3):
            try:
                with self.holder.lock:
                    if self.done.is_set():  # released meanwhile (the release stops the beats under the lock)
                        return
                    notes = dict(self.holder.notes)
                    self.holder.lease = self.holder.leases.renew(self.holder.lease, self.ttl, extra=notes)
                    for key in notes:
                        if self.holder.notes.get(key) == notes[key]:
                            del self.holder.notes[key]
                if failing:
                    log.warning("the lease on %s is renewed again", self.holder.lease.name)
                    failing = False
            except LeaseLostError as exc:
                log.warning("%s", exc)
                self.holder.lost.set()
                return
            except Exception as exc:  # a transient store error: try again at the next beat
                self.failures += 1
                level = logging.DEBUG if failing else logging.WARNING
                log.log(
                    level, "could not renew the lease on %s (will retry): %s", self.holder.lease.name, exc
                )
                failing = True
            if self.on_beat is not None:
                self.on_beat(self.holder.lease.name)
