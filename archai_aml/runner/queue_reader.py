"""How a runner reads its queue: the head of the queue index (:mod:`~archai_aml.runner.queue_index`), a few
entries per poll whatever the number of open rows, and the full scans that keep the index whole.

A poll reads the first page of each lane the runner can serve and then the rows its entries name, one by
one, best first, until one is leased (:meth:`QueueReader.items`). A runner started with ``--subset`` reads
its rows by name instead (they are few). Full scans of the open rows (one query, as every poll made before
the index) happen only to rebuild the index: at start unless the fleet rebuilt it within
``queue_rescan`` seconds, once per ``queue_rescan`` per fleet, when runners run out of work (one of them,
at most every ``queue_rescan / 10`` seconds per fleet), and before ``--once`` gives up.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from archai_aml.errors import StoreError
from archai_aml.runner.queue import DONE_STATUSES, Capabilities, WorkItem, build_queue
from archai_aml.runner.queue_index import QueueIndex
from archai_aml.runner.settings import RunnerSettings
from archai_aml.store.base import Entity, Store

__all__ = ["QueueReader", "spread"]

log = logging.getLogger(__name__)


def spread(queue: list[WorkItem], rng: random.Random) -> Iterator[WorkItem]:
    """Items best first; equal priorities in a random order (fewer lease races)."""
    i = 0
    while i < len(queue):
        j = i
        while j < len(queue) and queue[j].priority == queue[i].priority:
            j += 1
        group = queue[i:j]
        rng.shuffle(group)
        yield from group
        i = j


class QueueReader:
    """The queue of one runner (see the module docstring)."""

    def __init__(self, store: Store, settings: RunnerSettings, owner: str, rng: random.Random) -> None:
        self.store = store
        self.settings = settings
        self.experiment = settings.experiment
        self.owner = owner
        self.rng = rng
        self.index = QueueIndex(
            store,
            settings.experiment,
            benchmark_only=settings.benchmark_only,
            max_benchmark_runs=settings.max_benchmark_runs,
            rng=rng,
        )
        self.rescan = settings.queue_rescan
        #: open rows seen by the last poll or scan that a live lease held (for the dead-lease wait)
        self.rows_seen: list[Entity] = []
        self._next_meta_check = 0.0  # monotonic time of the next look at the index's last rebuild
        self._last_scan = float("-inf")
        self._heads: Future[dict[str, tuple[list[Entity], str | None]]] | None = None
        # the index writes of the release the read-ahead raced with: (entries written, names deleted)
        self._moved: tuple[list[Entity], set[str]] = ([], set())

    def scan(self) -> tuple[list[Entity], int]:
        """A full query of the open rows, and the index rebuilt from it: (rows, index writes)."""
        rows = self.store.query(self.experiment, status_not=DONE_STATUSES)
        self._last_scan = time.monotonic()
        return rows, self.index.rebuild(rows)

    def items(self, caps: Capabilities, usable: Callable[[Entity], bool]) -> Iterator[WorkItem]:
        """The runner's items, best first, each decided on its row as read just now."""
        if self.settings.subset is not None:
            rows = self.store.query(self.experiment, names=self.settings.subset, status_not=DONE_STATUSES)
            rows = [r for r in rows if usable(r)]
            self.rows_seen = rows
            yield from spread(build_queue(rows, caps), self.rng)
            return
        now = time.monotonic()
        if now >= self._next_meta_check:
            self._next_meta_check = now + self.rescan / 4
            if self.index.claim_rebuild(self.owner, self.rescan):
                self.scan()
        first = self._take_heads()
        yield from self.index.best_items(caps, usable=usable, first=first)
        self.rows_seen = self.index.leased

    def idle(self) -> None:
        """Nothing to do: scan the rows (rows written by something that does not update the index show up
        here) if the fleet's last rebuild began ``queue_rescan / 10`` seconds ago or more; one idle runner
        of the fleet wins that rebuild (:meth:`QueueIndex.claim_rebuild`)."""
        if self.settings.subset is not None or time.monotonic() - self._last_scan < self.rescan / 10:
            return
        self._last_scan = time.monotonic()  # looked: the next look is a period away, whoever rebuilt
        if self.index.claim_rebuild(self.owner, self.rescan / 10):
            self.scan()

    def exhausted(self) -> bool:
        """Before ``--once`` gives up: a full scan; True when it found work the index did not hold (poll
        again). :attr:`rows_seen` then holds every open row."""
        if self.settings.subset is not None:
            return False
        rows, writes = self.scan()
        self.rows_seen = rows
        return writes > 0

    def released(self, before: Entity, after: Entity | None) -> None:
        """The row ``before`` was released as ``after``: move its index entries. A store error here loses
        nothing (the old entries still lead to the row, which a reader then fixes): it is logged."""
        if after is None:
            return
        try:
            self._moved = self.index.sync(before, after)
        except StoreError as exc:
            log.warning("%s: the queue index of %s was not updated: %s", self.owner, after.get("name"), exc)

    def read_ahead(self, pool: ThreadPoolExecutor, caps: Capabilities) -> None:
        """Read the lane heads of the next poll on ``pool`` (sent with the release of the item just done)."""
        if self.settings.subset is None:
            self._heads = pool.submit(self.index.heads, caps)

    def _take_heads(self) -> dict[str, tuple[list[Entity], str | None]] | None:
        """The read-ahead lane heads, with the index writes of the release they raced with applied (the
        read may have seen the released row's old entries, or missed its new ones)."""
        future, self._heads = self._heads, None
        (written, dropped), self._moved = self._moved, ([], set())
        if future is None:
            return None
        try:
            heads = future.result()
        except Exception as exc:  # a transient store error: the poll reads again
            log.warning("%s: the read-ahead of the queue failed: %s", self.owner, exc)
            return None
        gone = dropped | {str(e["name"]) for e in written}
        for lane, (page, after) in heads.items():
            kept = [e for e in page if e["name"] not in gone]
            kept += [e for e in written if e.get("lane") == lane and (after is None or e["name"] < after)]
            heads[lane] = (sorted(kept, key=lambda e: str(e["name"])), after)
        return heads

    def settle(self) -> None:
        """Wait for a read-ahead (before the runner's threads stop)."""
        self._take_heads()
