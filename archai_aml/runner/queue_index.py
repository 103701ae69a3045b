"""The queue index: entities beside the status rows whose keys sort in priority order, so that a runner reads
the head of the queue (a few entities per poll) instead of every open row.

The index is the table ``<status table>queue``, partition = the experiment. A row with work has one entry
per *lane* it has work in; a lane groups the work items that need the same capability, so a runner reads
only the lanes it can serve:

=====  =============================================  =====================
lane   items                                          read by runners that
=====  =============================================  =====================
``c``  ``convert``                                    may quantize now
``b``  ``benchmark`` run ``k``                        do device work
``o``  ``f1_onnx``                                    are not benchmark-only
``f``  ``f1_1k``, ``f1_1k_f``, ``f1_10k``             do device work, not benchmark-only
=====  =============================================  =====================

An entry's name is ``<lane>.<priority>.<row>`` (the priority as 16 hex digits that sort like the number,
:func:`sortable`), its columns ``row``, ``lane`` and ``priority``; the priority is that of the row's best
item in the lane, computed by :func:`~archai_aml.runner.queue.items_for_row` itself (so the anchor's
priorities and the row's ``priority`` override hold unchanged). Reading a lane's first entries
(:meth:`Store.query_range`) gives its rows best first.

The index is a hint, never the truth: a runner reads the row an entry names, decides on the row (and takes
its lease by compare-and-swap on the row, as before), so a stale entry costs a read, never a wrong or
repeated item. Its invariant is that every open row with work has an entry in each of its lanes, and the
writes keep it:

- after a row's update the writer adds the row's new entries, *then* deletes its old ones (:meth:`sync`):
  a crash between the row's update and the index update leaves the old entry, which still leads to the row;
  a crash between the two index writes leaves both (the reader reads the row once);
- a reader that finds an entry whose row says otherwise (done, another priority) fixes it (:meth:`repair`);
- rows written by something that does not know the index (old code, a hand edit) are found by a rebuild
  from a full scan of the rows (:meth:`rebuild`): a runner does one at start when the index was not rebuilt
  within ``rescan`` seconds (the ``!meta`` entity says when), one every ``rescan`` seconds per fleet, one when
  runners run out of work (one per fleet, at most every ``rescan / 10`` seconds), and one before ``--once``
  exits.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import random
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from archai_aml.errors import ConcurrencyError, EntityExistsError
from archai_aml.runner.queue import Capabilities, WorkItem, items_for_row
from archai_aml.store.base import KEY_MAX_BYTES, Entity, Store, key_problem
from archai_aml.store.leases import lease_state, utcnow

__all__ = ["LANES", "META", "QueueIndex", "index_store", "lanes_for", "sortable"]

log = logging.getLogger(__name__)

#: The lane of each work-item kind.
LANE_OF = {"convert": "c", "benchmark": "b", "f1_onnx": "o", "f1_1k": "f", "f1_1k_f": "f", "f1_10k": "f"}
LANES = ("c", "b", "o", "f")
#: The entity that records the last rebuild (its name sorts before every lane).
META = "!meta"
#: Entries read per request of a lane.
PAGE = 8


def index_store(store: Store) -> Store:
    """The table of the queue index (``<status table>queue``)."""
    return store.with_table(f"{store.table_name}queue")


def sortable(priority: float) -> str:
    """``priority`` as 16 hex digits whose string order is the numeric order (IEEE 754 bits, the sign bit
    flipped for positive numbers, every bit for negative ones)."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", float(priority) + 0.0))  # + 0.0: -0.0 sorts as 0.0
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


def entry_name(lane: str, priority: float, row: str) -> str:
    """The key of a row's entry in a lane; a row name too long for the key is replaced by its hash (such
    rows then sort among their equals by hash, not by name)."""
    name = f"{lane}.{sortable(priority)}.{row}"
    if len(name.encode("utf-8")) > KEY_MAX_BYTES:
        name = f"{lane}.{sortable(priority)}.~{hashlib.sha256(row.encode('utf-8')).hexdigest()}"
    return name


def lanes_for(caps: Capabilities) -> tuple[str, ...]:
    """The lanes holding work that a runner with ``caps`` can do."""
    lanes = []
    if caps.can_quantize:
        lanes.append("c")
    if caps.use_device:
        lanes.append("b")
    if not caps.benchmark_only:
        lanes.append("o")
        if caps.use_device:
            lanes.append("f")
    return tuple(lanes)


@dataclass(order=True)
class _Pending:
    """A heap element of :meth:`QueueIndex.best_items`: an entry not read yet, or a row's item re-queued."""

    priority: float
    tie: float
    seq: int
    lane: str = field(compare=False)
    entry: Entity | None = field(default=None, compare=False)
    item: WorkItem | None = field(default=None, compare=False)


class QueueIndex:
    """The queue index of one experiment (see the module docstring). ``benchmark_only`` and
    ``max_benchmark_runs`` are the fleet's settings the entries are computed with (a runner's own)."""

    def __init__(
        self,
        store: Store,
        experiment: str,
        *,
        benchmark_only: bool = False,
        max_benchmark_runs: int = 5,
        page: int = PAGE,
        rng: random.Random | None = None,
    ) -> None:
        self.rows = store
        self.table = index_store(store)
        self.experiment = experiment
        self.caps = Capabilities(benchmark_only=benchmark_only, max_benchmark_runs=max_benchmark_runs)
        self.page = page
        self._rng = rng or random.Random()
        #: rows held by a live lease that :meth:`best_items` passed over (for the dead-lease wait)
        self.leased: list[Entity] = []
        # entry name -> (its version, the lease expiry its row showed): the row is not read again before
        # then unless the entry changes (a release that changes the row's work moves its entries)
        self._held: dict[str, tuple[str, datetime]] = {}

    # ------------------------------------------------------------------------------------------ keys
    def entries(self, row: Entity | None) -> dict[str, tuple[str, float]]:
        """The entries ``row`` should have: lane -> (entry name, priority); none for a done row."""
        if row is None:
            return {}
        out: dict[str, tuple[str, float]] = {}
        for item in items_for_row(row, self.caps):  # best first: the first of each lane is its best
            lane = LANE_OF[item.kind]
            if lane not in out:
                out[lane] = (entry_name(lane, item.priority, item.name), item.priority)
        return out

    def _put(self, lane: str, name: str, priority: float, row: str) -> Entity:
        return self.table.replace(self.experiment, name, {"row": row, "lane": lane, "priority": priority})

    def _drop(self, name: str, version: str | None = None) -> None:
        try:
            self.table.delete(self.experiment, name, expected_version=version)
        except ConcurrencyError:  # written again meanwhile (a rebuild, another reader): it stays
            pass

    # ------------------------------------------------------------------------------------------ writes
    def sync(self, before: Entity | None, after: Entity | None) -> tuple[list[Entity], set[str]]:
        """Update the index after a row went from ``before`` to ``after`` (None: absent): first the new
        entries, then the deletion of the old ones, so that a crash in between leaves the row reachable.
        Returns (entries written, names deleted)."""
        old, new = self.entries(before), self.entries(after)
        old_names = {n for n, _ in old.values()}
        new_names = {n for n, _ in new.values()}
        row = str((after or before or {}).get("name"))
        written = [
            self._put(lane, name, priority, row)
            for lane, (name, priority) in new.items()
            if name not in old_names
        ]
        dropped = old_names - new_names
        for name in sorted(dropped):
            self._drop(name)
        return written, dropped

    def repair(self, entry: Entity, row: Entity | None) -> None:
        """Fix ``entry`` (read from the index) against its ``row`` as read now. An entry the row does not
        want (its work in the lane is done, its priority moved, the row is gone) means the index missed an
        update of the row (a crash between the two writes, a writer that does not know the index): every
        entry the row wants is written again, then the stale one is deleted."""
        want = self.entries(row)
        if any(name == entry["name"] for name, _ in want.values()):
            return
        if row is not None:
            for lane, (name, priority) in want.items():
                self._put(lane, name, priority, str(row["name"]))
        self._drop(str(entry["name"]), str(entry["_version"]))

    def rebuild(self, rows: Iterable[Entity]) -> int:
        """Make the index hold exactly the entries of ``rows`` (every open row of the experiment, from one
        full query) and record the rebuild in :data:`META`; returns the entries written or deleted."""
        want: dict[str, tuple[str, float, str]] = {}
        for row in rows:
            for lane, (name, priority) in self.entries(row).items():
                want[name] = (lane, priority, str(row["name"]))
        have = {e["name"]: e for e in self.table.query(self.experiment) if e["name"] != META}
        writes = 0
        for name, (lane, priority, row_name) in want.items():
            if name not in have:
                self._put(lane, name, priority, row_name)
                writes += 1
        for name, entry in have.items():
            if name not in want:
                self._drop(name, str(entry["_version"]))
                writes += 1
        self.table.replace(self.experiment, META, {"built": utcnow(), "entries": len(want)})
        if writes:
            log.info("queue index of %s rebuilt: %d entries written or deleted", self.experiment, writes)
        return writes

    def rebuilt_at(self) -> datetime | None:
        """When the index was last rebuilt (None: never)."""
        meta = self.table.get(self.experiment, META)
        built = meta.get("built") if meta else None
        return built if isinstance(built, datetime) else None

    def claim_rebuild(self, owner: str, rescan: float) -> bool:
        """Whether this caller should rebuild now: :data:`META` is missing or says the last rebuild began
        more than ``rescan`` seconds ago, and this caller won the compare-and-swap that marks a new one as
        begun (so one runner of a fleet rebuilds per period)."""
        now = utcnow()
        meta = self.table.get(self.experiment, META)
        try:
            if meta is None:
                self.table.create(self.experiment, META, {"built": now, "by": owner})
                return True
            built = meta.get("built")
            if isinstance(built, datetime) and now - built < timedelta(seconds=rescan):
                return False
            self.table.cas_merge(meta, {"built": now, "by": owner})
        except (ConcurrencyError, EntityExistsError):
            return False
        return True

    # ------------------------------------------------------------------------------------------- reads
    def best_items(
        self,
        caps: Capabilities,
        *,
        usable: Callable[[Entity], bool] = lambda row: True,
        first: dict[str, tuple[list[Entity], str | None]] | None = None,
    ) -> Iterator[WorkItem]:
        """This runner's items, best first, read from the heads of its lanes: a lane's next page is read
        only when every entry read from it was used. Each row is read (``get``) when its entry comes up,
        and its item is decided on the row; entries of equal priority come in a random order (fewer
        lease races). ``first``: lane heads already read (:meth:`heads`). Leased rows passed over go to
        :attr:`leased`."""
        self.leased = []
        heap: list[_Pending] = []
        pending: dict[str, int] = {}
        after: dict[str, str | None] = {}
        seen: dict[str, Entity | None] = {}  # rows read in this poll (None: not read)
        seq = 0

        def push(lane: str, page: tuple[list[Entity], str | None]) -> None:
            nonlocal seq
            entries, after[lane] = page  # after: where the next page starts (None: the lane ends)
            for entry in entries:
                seq += 1
                priority = float(entry.get("priority") or 0.0)
                heapq.heappush(heap, _Pending(priority, self._rng.random(), seq, lane, entry=entry))
            pending[lane] = pending.get(lane, 0) + len(entries)
            if not entries and after[lane] is not None:  # a read-ahead page emptied by a release
                push(lane, self._page(lane, str(after[lane])))

        for lane in lanes_for(caps):
            push(lane, first[lane] if first and lane in first else self._page(lane, f"{lane}."))
        while heap:
            top = heapq.heappop(heap)
            if top.item is not None:
                yield top.item
                continue
            lane, entry = top.lane, top.entry
            assert entry is not None
            pending[lane] -= 1
            if pending[lane] == 0 and after[lane] is not None:
                push(lane, self._page(lane, str(after[lane])))
            name = str(entry.get("row"))
            if name in seen:  # another lane's entry of a row read in this poll: only checked
                row = seen[name]
                if row is not None and not lease_state(row)[1]:
                    wanted = {n for n, _ in self.entries(row).values()}
                    if entry["name"] not in wanted:
                        self._drop(str(entry["name"]), str(entry["_version"]))
                continue
            seen[name] = None
            if key_problem(name) is not None or not usable({"name": name}):
                continue  # a row the store's key rule or the runner refuses: never read, never leased
            held = self._held.get(str(entry["name"]))
            if held is not None and held[0] == str(entry["_version"]) and held[1] > utcnow():
                continue  # its row was leased when last read, and the lease seen then has not expired
            self._held.pop(str(entry["name"]), None)
            row = seen[name] = self.rows.get(self.experiment, name)
            if row is None:
                self._drop(str(entry["name"]), str(entry["_version"]))
                continue
            if lease_state(row)[1]:
                self.leased.append(row)
                self._held[str(entry["name"])] = (str(entry["_version"]), row["lease_expires"])
                continue
            self.repair(entry, row)
            items = items_for_row(row, caps)
            if not items:
                continue
            best = items[0]
            if heap and best.priority > heap[0].priority:  # the entry was better than the row now is
                seq += 1
                heapq.heappush(heap, _Pending(best.priority, self._rng.random(), seq, lane, item=best))
                continue
            yield best

    def heads(self, caps: Capabilities) -> dict[str, tuple[list[Entity], str | None]]:
        """The first page of each lane ``caps`` can serve (read ahead of a poll), with its cursor."""
        return {lane: self._page(lane, f"{lane}.") for lane in lanes_for(caps)}

    def _page(self, lane: str, after: str) -> tuple[list[Entity], str | None]:
        """The lane's entries after ``after`` (one request), and the cursor of the next page (None: the
        lane ends here)."""
        entries = self.table.query_range(self.experiment, after=after, below=f"{lane}/", limit=self.page)
        return entries, (str(entries[-1]["name"]) if len(entries) >= self.page else None)
