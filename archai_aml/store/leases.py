"""Leases built only on compare-and-swap.

A lease is three columns on the entity it guards: ``lease_owner``, ``lease_token`` (random, one per
acquisition) and ``lease_expires`` (UTC). Every change is a conditional write on the version just read, so
two owners can never both believe they hold the same entity: the loser of a race gets
:class:`~archai_aml.errors.ConcurrencyError` from the store and reports "not acquired". Lease writes go
through :meth:`Store.cas_merge` on the entity last read or written, one request each (no read-back).

An expired lease (its owner stopped renewing: crashed, killed, partitioned) is taken by the next owner
that asks. A lease whose owner keeps renewing within ``ttl`` is never taken. Owners compare expiry times
with their own clocks, so machines sharing a table should keep their clocks in sync (NTP); a skew of
``s`` seconds shortens or lengthens a lease by ``s``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from archai_aml.errors import ConcurrencyError, EntityExistsError, EntityNotFoundError, LeaseLostError
from archai_aml.store.base import Entity, Store

log = logging.getLogger(__name__)

LEASE_COLUMNS = ("lease_owner", "lease_token", "lease_expires")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Lease:
    """A held lease. ``entity`` is the guarded entity as of the last lease write (its ``_version`` is current)."""

    partition: str
    name: str
    owner: str
    token: str
    expires: datetime
    entity: Entity

    @property
    def version(self) -> str:
        return str(self.entity["_version"])


def lease_state(entity: Entity | None, now: datetime | None = None) -> tuple[str | None, bool]:
    """(owner, live) of the lease on ``entity``; live means held and not expired."""
    if not entity or not entity.get("lease_owner"):
        return None, False
    expires = entity.get("lease_expires")
    now = now or utcnow()
    return entity["lease_owner"], isinstance(expires, datetime) and expires > now


class LeaseManager:
    """Acquire, renew and release leases on the entities of one partition of a store."""

    def __init__(self, store: Store, partition: str) -> None:
        self.store = store
        self.partition = partition

    def acquire(
        self,
        name: str,
        owner: str,
        ttl: float,
        *,
        entity: Entity | None = None,
        create: bool = False,
        extra: dict[str, Any] | None = None,
        reread: bool = True,
    ) -> Lease | None:
        """Take the lease on ``name`` for ``ttl`` seconds, or return ``None`` if a live owner holds it.

        ``entity`` may be a recent whole read of the entity (from ``get`` or ``query``; saves a request, and a
        stale one only makes the CAS fail and this call re-read). With ``create`` a missing entity is created holding the lease; otherwise a
        missing entity raises :class:`EntityNotFoundError`. ``extra`` columns are written with the lease.
        With ``reread=False`` a lost compare-and-swap on the given ``entity`` returns ``None`` at once (the
        entity changed since it was read, most likely another owner took it) instead of reading it again.
        """
        for _ in range(3):
            if entity is None:
                entity = self.store.get(self.partition, name)
            now = utcnow()
            token = secrets.token_hex(8)
            expires = now + timedelta(seconds=ttl)
            values: dict[str, Any] = {"lease_owner": owner, "lease_token": token, "lease_expires": expires}
            if extra:
                values.update(extra)
            if entity is None:
                if not create:
                    raise EntityNotFoundError(self.partition, name)
                try:
                    written = self.store.create(self.partition, name, values)
                except EntityExistsError:
                    continue
                return Lease(self.partition, name, owner, token, expires, written)
            holder, live = lease_state(entity, now)
            if live:
                return None
            if holder is not None and holder != owner:
                log.info("taking expired lease on %s/%s from %s", self.partition, name, holder)
            try:
                written = self.store.cas_merge(entity, values)
            except ConcurrencyError:
                if not reread:
                    return None
                entity = None  # somebody wrote in between: re-read and decide again
                continue
            return Lease(self.partition, name, owner, token, expires, written)
        return None

    def renew(self, lease: Lease, ttl: float, *, extra: dict[str, Any] | None = None) -> Lease:
        """Extend ``lease`` by ``ttl`` seconds from now; :class:`LeaseLostError` if it is no longer ours.

        Other writers may have changed the entity's other columns since the last lease write: the lease is
        still ours as long as its token is (see :meth:`write`).
        """
        expires = utcnow() + timedelta(seconds=ttl)
        return replace(self.write(lease, {"lease_expires": expires, **(extra or {})}), expires=expires)

    def write(self, lease: Lease, values: dict[str, Any]) -> Lease:
        """Write ``values`` to the leased entity only while the lease is still ours: a compare-and-swap on the
        version last seen, re-read and retried while the token is unchanged (other columns may have moved)."""
        entity: Entity | None = lease.entity
        for _ in range(5):
            if entity is None:
                entity = self.store.get(self.partition, lease.name)
            if entity is None or entity.get("lease_token") != lease.token:
                raise LeaseLostError(
                    f"lease on {self.partition}/{lease.name} held by {lease.owner} was lost (expired and "
                    f"taken, or released): not writing {sorted(values)}; stop working on it"
                )
            try:
                written = self.store.cas_merge(entity, values)
            except ConcurrencyError:
                entity = None
                continue
            return replace(lease, entity=written)
        raise LeaseLostError(f"could not write to {self.partition}/{lease.name}: too much contention")

    def release(self, lease: Lease, *, extra: dict[str, Any] | None = None) -> Entity | None:
        """Give the lease up (and write ``extra`` columns in the same write). Returns the entity, or None
        if the lease was already lost (nothing is written then)."""
        values: dict[str, Any] = dict.fromkeys(LEASE_COLUMNS)
        if extra:
            values.update(extra)
        try:
            return self.write(lease, values).entity
        except LeaseLostError:
            log.warning("lease on %s/%s was already lost when released", self.partition, lease.name)
            return None

    def break_lease(self, name: str, *, owner: str | None = None) -> bool:
        """Clear the lease on ``name`` (administrative ``unlock``), only if held by ``owner`` when given."""
        for _ in range(5):
            entity = self.store.get(self.partition, name)
            if entity is None or not entity.get("lease_owner"):
                return False
            if owner is not None and entity.get("lease_owner") != owner:
                return False
            try:
                self.store.cas_merge(entity, dict.fromkeys(LEASE_COLUMNS))
                return True
            except ConcurrencyError:
                continue
        return False
