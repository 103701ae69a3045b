"""LeaseManager semantics on every backend: acquire, renew, release, expiry, lost leases, break_lease."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from archai_aml.errors import EntityNotFoundError, LeaseLostError
from archai_aml.store import LeaseManager, Store
from archai_aml.store.leases import LEASE_COLUMNS, lease_state

P = "leases"


def test_acquire_writes_the_lease_and_blocks_others(store: Store) -> None:
    store.create(P, "m1", {"status": "new"})
    lm = LeaseManager(store, P)
    before = datetime.now(timezone.utc)
    lease = lm.acquire("m1", "alice", ttl=30)
    assert lease is not None
    assert lease.owner == "alice" and lease.name == "m1" and lease.partition == P
    assert timedelta(seconds=29) < lease.expires - before < timedelta(seconds=31)
    stored = store.get(P, "m1")
    assert stored is not None
    assert stored["lease_owner"] == "alice" and stored["lease_token"] == lease.token
    assert stored["lease_expires"] == lease.expires
    assert stored["status"] == "new"
    assert stored["_version"] == lease.version
    assert lease_state(stored) == ("alice", True)
    # a live lease is never taken, not even by its own owner a second time
    assert lm.acquire("m1", "bob", ttl=30) is None
    assert lm.acquire("m1", "alice", ttl=30) is None
    again = store.get(P, "m1")
    assert again is not None and again["lease_token"] == lease.token and again["_version"] == lease.version


def test_acquire_missing_entity(store: Store) -> None:
    lm = LeaseManager(store, P)
    with pytest.raises(EntityNotFoundError):
        lm.acquire("ghost", "alice", ttl=10)
    assert store.get(P, "ghost") is None
    lease = lm.acquire("ghost", "alice", ttl=10, create=True, extra={"status": "running"})
    assert lease is not None
    stored = store.get(P, "ghost")
    assert stored is not None
    assert stored["lease_owner"] == "alice" and stored["status"] == "running"
    assert lm.acquire("ghost", "bob", ttl=10, create=True) is None


def test_stale_entity_hint_only_costs_a_reread(store: Store) -> None:
    stale = store.create(P, "m1", {"status": "new"})
    store.merge(P, "m1", {"status": "queued"})  # the hint is now out of date
    lm = LeaseManager(store, P)
    lease = lm.acquire("m1", "alice", ttl=10, entity=stale)
    assert lease is not None
    assert lease.entity["status"] == "queued"


def test_renew_extends_and_survives_other_writers(store: Store) -> None:
    store.create(P, "m1", {"status": "new"})
    lm = LeaseManager(store, P)
    lease = lm.acquire("m1", "alice", ttl=5)
    assert lease is not None
    store.merge(P, "m1", {"progress": 0.5})  # somebody else writes another column
    time.sleep(0.05)
    renewed = lm.renew(lease, ttl=60, extra={"heartbeat": 1})
    assert renewed.expires > lease.expires + timedelta(seconds=50)
    assert renewed.token == lease.token
    stored = store.get(P, "m1")
    assert stored is not None
    assert stored["lease_expires"] == renewed.expires
    assert stored["progress"] == 0.5 and stored["heartbeat"] == 1
    written = lm.write(renewed, {"status": "training"})
    stored = store.get(P, "m1")
    assert stored is not None and stored["status"] == "training" and stored["_version"] == written.version


def test_expired_lease_is_taken_and_the_old_owner_loses_it(store: Store) -> None:
    store.create(P, "m1", {"status": "new"})
    lm = LeaseManager(store, P)
    old = lm.acquire("m1", "alice", ttl=0.4)
    assert old is not None
    assert lm.acquire("m1", "bob", ttl=10) is None
    time.sleep(0.6)
    assert lease_state(store.get(P, "m1")) == ("alice", False)
    new = lm.acquire("m1", "bob", ttl=10)
    assert new is not None and new.owner == "bob"
    with pytest.raises(LeaseLostError):
        lm.renew(old, ttl=10)
    with pytest.raises(LeaseLostError):
        lm.write(old, {"status": "done-by-alice"})
    assert lm.release(old, extra={"status": "released-by-alice"}) is None
    stored = store.get(P, "m1")
    assert stored is not None
    assert stored["lease_owner"] == "bob" and stored["lease_token"] == new.token
    assert stored["status"] == "new"


def test_release_clears_the_lease_and_writes_extra(store: Store) -> None:
    store.create(P, "m1", {"status": "new"})
    lm = LeaseManager(store, P)
    lease = lm.acquire("m1", "alice", ttl=30)
    assert lease is not None
    released = lm.release(lease, extra={"status": "complete", "val_iou": 0.75})
    assert released is not None
    stored = store.get(P, "m1")
    assert stored is not None
    for column in LEASE_COLUMNS:
        assert column not in stored
    assert stored["status"] == "complete" and stored["val_iou"] == 0.75
    assert lease_state(stored) == (None, False)
    # free again: anybody may take it at once
    assert lm.acquire("m1", "bob", ttl=30) is not None


def test_break_lease(store: Store) -> None:
    store.create(P, "m1", {"status": "new"})
    store.create(P, "m2", {"status": "new"})
    lm = LeaseManager(store, P)
    assert lm.break_lease("m1") is False  # nothing to break
    assert lm.break_lease("missing") is False
    lease = lm.acquire("m1", "alice", ttl=300)
    assert lease is not None
    assert lm.break_lease("m1", owner="bob") is False
    stored = store.get(P, "m1")
    assert stored is not None and stored["lease_owner"] == "alice"
    assert lm.break_lease("m1", owner="alice") is True
    stored = store.get(P, "m1")
    assert stored is not None and "lease_owner" not in stored and stored["status"] == "new"
    with pytest.raises(LeaseLostError):
        lm.renew(lease, ttl=10)
    assert lm.acquire("m1", "bob", ttl=10) is not None


def test_threads_racing_for_one_lease_have_one_winner(store: Store) -> None:
    store.create(P, "m1", {"status": "new"})
    lm = LeaseManager(store, P)
    barrier = threading.Barrier(6)
    winners: list[str] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            if lm.acquire("m1", f"owner{i}", ttl=30) is not None:
                winners.append(f"owner{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(winners) == 1
    stored = store.get(P, "m1")
    assert stored is not None and stored["lease_owner"] == winners[0]
