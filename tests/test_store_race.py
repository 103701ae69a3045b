"""Real processes racing for leases on every backend.

- 8 spawned processes race over the same 100 rows: query -> acquire -> re-check -> process -> release.
  Every row must be processed exactly once (each process appends its pid to ``processed_by``).
- A lease holder killed with SIGKILL: while it was alive and renewing nobody could take its lease; after
  the kill another process polling every 0.25 s takes it within ttl + one poll.
- (embedded) processes forked from a parent that already used the store: connections are not shared.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
from typing import Any

import pytest

from archai_aml.config import StoreConfig
from archai_aml.store import LeaseManager, Store, open_store

P = "race"
ROWS = 100
PROCESSES = 8


def race_worker(config: StoreConfig, ready: Any, start: Any, results: Any, seed: int) -> None:
    """One racing process (module-level so that spawned children can import it)."""
    pid = os.getpid()
    owner = f"worker-{seed}-{pid}"
    rng = random.Random(seed)
    processed: list[str] = []  # reported out of band too: a broken store could lose its own updates
    denied = stale = 0
    with open_store(config) as store:
        leases = LeaseManager(store, P)
        store.query(P, names=["warm-up"])  # open connections before the start signal
        ready.put(pid)
        start.wait(60)
        while True:
            rows = store.query(P, status="new")
            if not rows:
                break
            rng.shuffle(rows)
            for row in rows:
                lease = leases.acquire(row["name"], owner, ttl=30, entity=row)
                if lease is None:
                    denied += 1
                    break  # the snapshot is out of date: query again
                time.sleep(0.002)  # getting ready: the window in which a second, wrongly granted lease shows
                if lease.entity.get("status") != "new":  # processed by someone else since the query
                    stale += 1
                    leases.release(lease)
                    break
                done_by = str(lease.entity.get("processed_by", ""))
                lease = leases.write(lease, {"status": "processing", "processed_by": f"{done_by}{pid};"})
                time.sleep(0.002)  # the "work"
                leases.release(lease, extra={"status": "done"})
                processed.append(row["name"])
    results.put((pid, processed, denied, stale))


def _run_race(config: StoreConfig, store: Store, context: Any, processes: int, rows: int) -> dict[int, int]:
    for i in range(rows):
        store.create(P, f"row{i:03d}", {"status": "new"})
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    procs = [
        context.Process(target=race_worker, args=(config, ready, start, results, i)) for i in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=60)
        t0 = time.monotonic()
        start.set()
        outcome = [results.get(timeout=120) for _ in procs]
        elapsed = time.monotonic() - t0
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]

    processed_by_pid = {pid: len(names) for pid, names, _, _ in outcome}
    reported = sorted(name for _, names, _, _ in outcome for name in names)
    assert reported == [f"row{i:03d}" for i in range(rows)], "some row was processed twice or never"
    denied = sum(d for _, _, d, _ in outcome)
    stale = sum(s for _, _, _, s in outcome)
    final = store.query(P)
    assert len(final) == rows
    counts = {}
    for row in final:
        assert row["status"] == "done", row
        pids = [p for p in str(row["processed_by"]).split(";") if p]
        counts[row["name"]] = len(pids)
        assert len(pids) == 1, f"{row['name']} processed by {pids}"
        assert int(pids[0]) in processed_by_pid
        assert "lease_owner" not in row
    assert sum(processed_by_pid.values()) == rows
    # the race was real: several processes got work, and some acquisitions lost to another process
    assert sum(1 for n in processed_by_pid.values() if n > 0) >= 2
    print(
        f"{processes} processes, {rows} rows in {elapsed:.2f}s: per process {sorted(processed_by_pid.values())}, "
        f"{denied} acquisitions refused, {stale} stale rows skipped"
    )
    return processed_by_pid


def test_processes_race_every_row_processed_exactly_once(store_config: StoreConfig, store: Store) -> None:
    _run_race(store_config, store, mp.get_context("spawn"), PROCESSES, ROWS)


def test_forked_processes_do_not_share_the_parents_connection(tmp_path: Any) -> None:
    """fork children inherit a store object whose connection the parent already used."""
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    config = StoreConfig(backend="embedded", path=tmp_path / "store", table_name="forked")
    with open_store(config) as store:
        store.query(P)  # the parent's connection exists before the fork
        _run_race(config, store, mp.get_context("fork"), 4, 40)
        assert store.get(P, "row000") is not None  # the parent's connection still works


# ---------------------------------------------------------------------------------------------- SIGKILL
TTL = 2.0
RENEW_EVERY = 0.25
POLL = 0.25


def holder(config: StoreConfig, acquired: Any) -> None:
    """Take the lease and renew it forever (until SIGKILL)."""
    with open_store(config) as store:
        leases = LeaseManager(store, P)
        lease = leases.acquire("victim", f"holder-{os.getpid()}", ttl=TTL)
        if lease is None:
            acquired.put("not acquired")
            return
        acquired.put("acquired")
        while True:
            time.sleep(RENEW_EVERY)
            lease = leases.renew(lease, ttl=TTL)


def test_killed_holder_lease_is_taken_within_ttl_plus_one_poll(
    store_config: StoreConfig, store: Store
) -> None:
    store.create(P, "victim", {"status": "new"})
    context = mp.get_context("spawn")
    acquired = context.Queue()
    proc = context.Process(target=holder, args=(store_config, acquired))
    proc.start()
    try:
        assert acquired.get(timeout=60) == "acquired"
        leases = LeaseManager(store, P)
        # while the holder lives and renews, nobody can take the lease (for longer than a ttl)
        tries = 0
        alive_until = time.monotonic() + TTL * 1.5
        while time.monotonic() < alive_until:
            assert leases.acquire("victim", "thief", ttl=TTL) is None
            tries += 1
            time.sleep(POLL)
        assert tries >= 5
        assert proc.is_alive()
        holder_owner = store.get(P, "victim")["lease_owner"]  # type: ignore[index]
        assert holder_owner == f"holder-{proc.pid}"

        os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
        killed_at = time.monotonic()
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
        while True:
            lease = leases.acquire("victim", "thief", ttl=TTL)
            if lease is not None:
                break
            assert time.monotonic() - killed_at < TTL + 5, "the dead holder's lease was never taken"
            time.sleep(POLL)
        delay = time.monotonic() - killed_at
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(10)
    stored = store.get(P, "victim")
    assert stored is not None and stored["lease_owner"] == "thief" and stored["lease_token"] == lease.token
    print(f"lease of the killed holder taken {delay:.3f}s after SIGKILL (ttl {TTL}s, poll {POLL}s)")
    # not before the last renewal had expired, and no later than ttl + one poll (+ request time)
    assert delay >= TTL - RENEW_EVERY - 0.3
    assert delay <= TTL + POLL + 0.5
