"""What a runner does when things fail: ride out a store outage, and stop retrying an item that fails the
same way twice.

:class:`Outage` follows one run of failed store calls (polls, heartbeats): the first failure is logged as a
warning, the others at debug level, the recovery once with how long it lasted; :meth:`Outage.delay` is the
wait before the next try, doubling from ``first`` up to ``most`` seconds with jitter (half to all of it),
so a fleet does not come back in step.

It tells the faults apart (:func:`store_fault`), because they do not pass the same way: a store that does
not answer (**unreachable**) and one whose disk is full (**disk full**: space may be freed) are waited
out; a **read-only** store (a read-only mount, a folder the runner may not write) never becomes writable
by waiting, so :meth:`Outage.give_up` stops a runner on it at once. A runner started with ``--once``
gives up on any fault after ``once_limit_s`` seconds of it (default 60). Either way the error it raises
(:class:`~archai_aml.errors.StoreError`, exit code 2 on the command line) names the fault.

:class:`RepeatedFailures` remembers the last store or I/O failure of each work item. A failure seen twice
in a row with the same message marks the row ``error`` (instead of a retry loop). A store failure counts
only once the store is known to be reachable (a poll after it succeeded): during an outage every item
fails the same way and none of them is at fault.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field

from archai_aml.errors import ReadOnlyStoreError, StoreError, StoreFullError

__all__ = ["Outage", "RepeatedFailures", "store_fault"]

_WORDS = {
    "read-only": "the store is read-only: nothing can be leased or recorded on it (waiting will not help)",
    "disk full": "the store's disk is full: retrying with backoff until space is freed",
    "unreachable": "the store looks unreachable; retrying with backoff until it answers",
}


def store_fault(exc: BaseException) -> str:
    """``"read-only"``, ``"disk full"`` or ``"unreachable"`` (any other store error: a network, a
    service or a lock that may pass)."""
    if isinstance(exc, ReadOnlyStoreError):
        return "read-only"
    if isinstance(exc, StoreFullError):
        return "disk full"
    return "unreachable"


log = logging.getLogger(__name__)


@dataclass
class Outage:
    """A run of failed store calls of one runner (see the module docstring)."""

    owner: str
    first: float = 0.5
    most: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    #: with ``once``, how long a run of store faults may last before :meth:`give_up` ends the runner
    once_limit_s: float = 60.0
    failures: int = 0
    since: float | None = None
    #: the kind of the last failure (:func:`store_fault`)
    kind: str | None = None
    #: completed outages: (seconds, failed calls)
    history: list[tuple[float, int]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.since is not None

    def failed(self, what: str, exc: BaseException) -> float:
        """Note a failure of ``what``; returns the seconds to wait before the next try."""
        self.failures += 1
        kind = store_fault(exc)
        if self.since is None or kind != self.kind:
            self.since = self.since or time.monotonic()
            log.warning("%s: %s failed, %s: %s", self.owner, what, _WORDS[kind], exc)
        else:
            log.debug("%s: %s failed again (%d): %s", self.owner, what, self.failures, exc)
        self.kind = kind
        return self.delay()

    def give_up(self, exc: BaseException, *, once: bool) -> StoreError | None:
        """The error to stop the runner with after ``exc`` (noted by :meth:`failed`), or None to go on:
        at once on a read-only store; with ``once``, when the faults have lasted ``once_limit_s``."""
        kind = store_fault(exc)
        lasted = 0.0 if self.since is None else time.monotonic() - self.since
        if kind == "read-only":
            return StoreError(
                f"{self.owner}: stopped: the store is read-only, so no work can be leased: {exc}"
            )
        if once and lasted >= self.once_limit_s:
            return StoreError(
                f"{self.owner}: --once gave up after {lasted:.0f} s of store faults ({self.failures} failed "
                f"calls): {'the disk of the store is full' if kind == 'disk full' else 'the store is unreachable'}"
                f": {exc}"
            )
        return None

    def delay(self) -> float:
        nominal = min(self.most, self.first * 2 ** max(0, self.failures - 1))
        return nominal * self.rng.uniform(0.5, 1.0)

    def succeeded(self) -> None:
        if self.since is None:
            return
        lasted = time.monotonic() - self.since
        log.warning(
            "%s: the store answers again after %.1f s (%s, %d failed calls)",
            self.owner,
            lasted,
            self.kind,
            self.failures,
        )
        self.history.append((lasted, self.failures))
        self.since, self.failures, self.kind = None, 0, None


class RepeatedFailures:
    """The last store/I-O failure of each work item (see the module docstring)."""

    def __init__(self) -> None:
        # (row, item label) -> (message, counts): counts is False until the store was seen reachable
        self._last: dict[tuple[str, str], tuple[str, bool]] = {}

    def failed(self, key: tuple[str, str], message: str, *, store_error: bool) -> bool:
        """Note a failure; True when the same failure already counted once (mark the row ``error``)."""
        previous = self._last.get(key)
        if previous is not None and previous == (message, True):
            del self._last[key]
            return True
        self._last[key] = (message, not store_error)
        return False

    def succeeded(self, key: tuple[str, str]) -> None:
        self._last.pop(key, None)

    def store_reachable(self) -> None:
        """A poll succeeded: the store failures noted so far were not an outage."""
        self._last = {k: (m, True) for k, (m, _) in self._last.items()}

    def store_unreachable(self) -> None:
        """A poll failed: forget the store failures that had not counted yet (the outage caused them)."""
        self._last = {k: v for k, v in self._last.items() if v[1]}
