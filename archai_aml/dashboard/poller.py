"""The dashboard's one reader of the store: a thread that refreshes the watched experiments every
``interval_s`` (the store's poll interval, ``runner.poll_interval_s``), whatever the number of pages open.

Pages ask :meth:`Poller.wait` for a state newer than the ETag they hold; it answers as soon as a refresh
changes something (a long poll: a change reaches an open page within one refresh). A refresh that fails (a
store outage) keeps the last data and adds an ``outage`` record (when it began, what failed, secrets
redacted); the next refresh that succeeds clears it. The thread never dies of a store error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from archai_aml.dashboard.snapshot import read_snapshot
from archai_aml.errors import redact_secrets
from archai_aml.runner.settings import runners_store
from archai_aml.runner.usage import usage_store
from archai_aml.store.base import Store
from archai_aml.store.leases import utcnow

__all__ = ["Poller", "State"]

log = logging.getLogger(__name__)


def digest(value: Any) -> str:
    """A short, stable hash of JSON-ready ``value`` (an ETag)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@dataclass
class State:
    """The last data of one experiment, the outage that keeps it from being refreshed (or None) and the
    ETag of both."""

    data: dict[str, Any] | None = None
    outage: dict[str, Any] | None = None
    etag: str = ""
    refreshed_at: float = 0.0
    watched_at: float = field(default_factory=time.monotonic)


class Poller:
    """Refreshes each watched experiment every ``interval_s`` seconds with ``read(store, experiment)``.

    An experiment is watched while a page asked for it within ``keep_s`` seconds (the default experiment
    always). ``read`` defaults to :func:`~archai_aml.dashboard.snapshot.read_snapshot`."""

    def __init__(
        self,
        store: Store,
        default_experiment: str,
        *,
        interval_s: float,
        dead_after_s: float,
        keep_s: float = 120.0,
        read: Callable[[Store, str], dict[str, Any]] | None = None,
    ) -> None:
        self.store = store
        self.default_experiment = default_experiment
        self.interval_s = max(0.05, float(interval_s))
        self.keep_s = keep_s
        if read is None:
            runners, usage = runners_store(store), usage_store(store)  # kept: one table client each

            def read(s: Store, e: str) -> dict[str, Any]:
                return read_snapshot(s, e, dead_after_s=dead_after_s, runners=runners, usage=usage)

        self._read = read
        self._states: dict[str, State] = {}
        self._cond = threading.Condition()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: refreshes done and failed (over the poller's life)
        self.refreshes = 0
        self.failures = 0

    # ---------------------------------------------------------------------------------------- control
    def start(self) -> Poller:
        self._thread = threading.Thread(target=self._loop, name="dashboard-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for experiment in self._watched(started):
                if self._stop.is_set():
                    return
                self.refresh(experiment)
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def _watched(self, now: float) -> list[str]:
        with self._cond:
            gone = [
                e
                for e, s in self._states.items()
                if e != self.default_experiment and now - s.watched_at > self.keep_s
            ]
            for experiment in gone:
                del self._states[experiment]
            return sorted({self.default_experiment, *self._states})

    # ----------------------------------------------------------------------------------------- reading
    def refresh(self, experiment: str) -> State:
        """Read ``experiment`` now (one refresh); on a store error keep the last data and note the outage."""
        with self._refresh_lock:  # one refresh at a time: requests per refresh stay countable
            outage: dict[str, Any] | None = None
            try:
                data: dict[str, Any] | None = self._read(self.store, experiment)
                self.refreshes += 1
            except Exception as exc:  # a store outage (or a bad answer): keep serving the last data
                self.failures += 1
                data = None
                text = " ".join(redact_secrets(f"{type(exc).__name__}: {exc}").split())[:500]
                outage = {"error": text}
            with self._cond:
                state = self._states.setdefault(experiment, State())
                if outage is None:
                    if state.outage is not None:
                        log.warning("dashboard: the store answers again (%s)", experiment)
                    state.data, state.outage = data, None
                else:
                    if state.outage is None:
                        log.warning(
                            "dashboard: the store does not answer for %s: %s", experiment, outage["error"]
                        )
                        outage["since"] = utcnow().isoformat()
                    else:
                        outage["since"] = state.outage.get("since")
                    state.outage = outage
                state.refreshed_at = time.monotonic()
                state.etag = digest({"data": state.data, "outage": state.outage})
                self._cond.notify_all()
                return state

    def state(self, experiment: str) -> State:
        """The last state of ``experiment`` (read now if it was never read), marking it watched."""
        with self._cond:
            state = self._states.get(experiment)
            if state is not None:
                state.watched_at = time.monotonic()
                return state
        state = self.refresh(experiment)
        state.watched_at = time.monotonic()
        return state

    def wait(self, experiment: str, changed: Callable[[State], bool], timeout_s: float) -> State:
        """The state of ``experiment`` as soon as ``changed(state)`` holds, or after ``timeout_s``."""
        state = self.state(experiment)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not changed(state) and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
                state = self._states.get(experiment, state)
                state.watched_at = time.monotonic()
        return state
