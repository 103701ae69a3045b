"""The table side of the Azure store: entities with ETag compare-and-swap, server-side queries, partitions."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.data.tables import UpdateMode

from archai_aml.errors import ConcurrencyError, EntityExistsError, StoreError
from archai_aml.store.azure.base import AzureBase
from archai_aml.store.azure.codec import (
    MAX_FILTER_COMPARISONS,
    RESULTS_PER_PAGE,
    _entity_from_table,
    _status_of,
    _to_table,
    _written,
    odata_filter,
    odata_literal,
)
from archai_aml.store.azure.retry import answer_lost, recover_cas
from archai_aml.store.base import Entity, Value
from archai_aml.store.rules import (
    RESERVED_KEYS,
    as_set,
    check_column_count,
    check_key,
    check_range,
    user_columns,
)


class AzureTableSide(AzureBase):
    """Entities in one Azure table (see :class:`~archai_aml.store.base.Store`)."""

    def get(self, partition: str, name: str) -> Entity | None:
        check_key(partition, name)
        self._ensure_table()
        try:
            raw = self._table.get_entity(partition, name)
        except ResourceNotFoundError:
            return None
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail(f"reading {partition}/{name}", exc) from exc
        return _entity_from_table(raw)

    def create(self, partition: str, name: str, values: Mapping[str, Any] | None = None) -> Entity:
        check_key(partition, name)
        columns = {k: v for k, v in user_columns(values or {}).items() if v is not None}
        check_column_count(partition, name, columns)
        self._ensure_table()
        body = {"PartitionKey": partition, "RowKey": name, **_to_table(columns)}
        try:
            response = self._table.create_entity(body)
        except ResourceExistsError:
            raise EntityExistsError(partition, name) from None
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail(f"creating {partition}/{name}", exc) from exc
        return _written(partition, name, columns, response)

    def replace(
        self, partition: str, name: str, values: Mapping[str, Any], *, expected_version: str | None = None
    ) -> Entity:
        check_key(partition, name)
        columns = {k: v for k, v in user_columns(values).items() if v is not None}
        check_column_count(partition, name, columns)
        self._ensure_table()
        return self._replace(partition, name, columns, expected_version)

    def _replace(
        self, partition: str, name: str, columns: dict[str, Any], expected_version: str | None
    ) -> Entity:
        body = {"PartitionKey": partition, "RowKey": name, **_to_table(columns)}
        response = self._write(body, UpdateMode.REPLACE, expected_version, "replacing")
        return _written(partition, name, columns, response)

    def _write(self, body: dict[str, Any], mode: UpdateMode, expected_version: str | None, what: str) -> Any:
        """Upsert ``body`` (no ``expected_version``) or update it conditionally on that ETag; a moved or
        missing entity is a :class:`ConcurrencyError`, any other failure a :class:`StoreError`."""
        with self._conditional(body["PartitionKey"], body["RowKey"], expected_version, what):
            if expected_version is None:
                return self._table.upsert_entity(body, mode=mode)
            return self._table.update_entity(
                body, mode=mode, etag=expected_version, match_condition=MatchConditions.IfNotModified
            )

    @contextmanager
    def _conditional(
        self, partition: str, name: str, expected_version: str | None, what: str
    ) -> Iterator[None]:
        """Map the errors of a (conditional) entity write: a moved or missing entity is a
        :class:`ConcurrencyError`, any other failure a :class:`StoreError`."""
        try:
            yield
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrencyError(partition, name, expected_version) from None
        except HttpResponseError as exc:
            if exc.status_code in (404, 412):
                raise ConcurrencyError(partition, name, expected_version) from None
            raise self._fail(f"{what} {partition}/{name}", exc) from exc
        except ServiceRequestError as exc:
            raise self._fail(f"{what} {partition}/{name}", exc) from exc

    def merge(
        self, partition: str, name: str, values: Mapping[str, Any], *, expected_version: str | None = None
    ) -> Entity:
        """Set the given columns (``None`` removes one), keep the others.

        Without ``None`` values this is one server-side merge (conditional on ``expected_version`` when
        given) followed by a read of the whole entity. The Table service cannot store a null, so removing
        columns reads the entity and replaces it conditionally on the ETag just read, re-reading when a
        concurrent write moved it (compare-and-swap, never a blind read-then-write).
        """
        check_key(partition, name)
        columns = user_columns(values)
        self._ensure_table()
        if any(v is None for v in columns.values()):
            return self._merge_removing(partition, name, columns, expected_version)
        body = {"PartitionKey": partition, "RowKey": name, **_to_table(columns)}
        self._write(body, UpdateMode.MERGE, expected_version, "merging into")
        entity = self.get(partition, name)
        if entity is None:  # deleted right after our write
            raise ConcurrencyError(partition, name, expected_version)
        return entity

    def cas_merge(self, entity: Entity, values: Mapping[str, Any]) -> Entity:
        """One request: a conditional MERGE of ``values``, or (when a column is removed) a conditional
        REPLACE with ``entity``'s columns plus ``values``; the result is built from ``entity`` and the
        response's ETag (see :meth:`Store.cas_merge`)."""
        partition, name, version = entity["partition"], entity["name"], str(entity["_version"])
        check_key(partition, name)
        columns = user_columns(values)
        merged = {k: v for k, v in entity.items() if k not in RESERVED_KEYS}
        merged.update(columns)
        merged = {k: v for k, v in merged.items() if v is not None}
        self._ensure_table()
        try:
            if any(v is None for v in columns.values()):
                return self._replace(partition, name, merged, version)
            body = {"PartitionKey": partition, "RowKey": name, **_to_table(columns)}
            response = self._write(body, UpdateMode.MERGE, version, "merging into")
        except StoreError as exc:
            if not answer_lost(exc):  # the answer was lost: read back whether this write landed
                raise
            return recover_cas(self.get, self.cas_merge, entity, values, exc)
        return _written(partition, name, merged, response)

    def _merge_removing(
        self, partition: str, name: str, columns: dict[str, Any], expected_version: str | None
    ) -> Entity:
        for _ in range(20):
            current = self.get(partition, name)
            if current is None:
                if expected_version is not None:
                    raise ConcurrencyError(partition, name, expected_version)
                try:
                    return self.create(partition, name, columns)
                except EntityExistsError:
                    continue  # created concurrently: merge into it
            if expected_version is not None and current["_version"] != expected_version:
                raise ConcurrencyError(partition, name, expected_version)
            try:
                return self.cas_merge(current, columns)  # a conditional replace (a column is removed)
            except ConcurrencyError:
                if expected_version is not None:
                    raise
                continue  # a concurrent write: re-read and merge again
        raise StoreError(
            f"merge into {partition}/{name} lost 20 compare-and-swap races in a row: too much contention, retry later"
        )

    def delete(self, partition: str, name: str, *, expected_version: str | None = None) -> bool:
        check_key(partition, name)
        self._ensure_table()
        kwargs: dict[str, Any] = {}
        if expected_version is not None:
            kwargs = {"etag": expected_version, "match_condition": MatchConditions.IfNotModified}
        with self._conditional(partition, name, expected_version, "deleting"):
            _, status = _status_of(self._table.delete_entity, partition, name, **kwargs)
        if status == 404:  # the SDK swallows a 404 on delete
            if expected_version is not None:
                raise ConcurrencyError(partition, name, expected_version)
            return False
        return True

    def query(
        self,
        partition: str,
        *,
        status: str | Collection[str] | None = None,
        status_not: str | Collection[str] | None = None,
        names: Collection[str] | None = None,
        where: Mapping[str, Value] | None = None,
    ) -> list[Entity]:
        """Entities of ``partition`` matching every filter, evaluated by the Table service, ordered by name.

        One request per 1000 rows. The service evaluates at most 15 comparisons per filter, so a long
        ``names`` list is split into several queries (one per chunk of names), whose results are joined.
        """
        statuses, not_statuses = as_set(status), as_set(status_not)
        if statuses is not None and not statuses:
            return []
        name_list = sorted(set(names)) if names is not None else None
        if name_list is not None and not name_list:
            return []
        _, base = odata_filter(partition, status=statuses, status_not=not_statuses, where=where)
        if name_list is None:
            chunks: list[list[str] | None] = [None]
        else:
            room = MAX_FILTER_COMPARISONS - base
            if room < 1:
                raise ValueError(
                    f"too many filter values ({base} comparisons): the Table service allows "
                    f"{MAX_FILTER_COMPARISONS} per query; filter on fewer statuses or columns"
                )
            chunks = [name_list[i : i + room] for i in range(0, len(name_list), room)]
        self._ensure_table()
        found: dict[str, Entity] = {}
        for chunk in chunks:
            text, count = odata_filter(
                partition, status=statuses, status_not=not_statuses, names=chunk, where=where
            )
            if count > MAX_FILTER_COMPARISONS:
                raise ValueError(
                    f"too many filter values ({count} comparisons): the Table service allows "
                    f"{MAX_FILTER_COMPARISONS} per query"
                )
            try:
                for raw in self._table.query_entities(text, results_per_page=RESULTS_PER_PAGE):
                    entity = _entity_from_table(raw)
                    found[entity["name"]] = entity
            except (HttpResponseError, ServiceRequestError) as exc:
                raise self._fail(f"querying partition {partition}", exc) from exc
        return [found[n] for n in sorted(found)]

    def query_range(
        self, partition: str, *, after: str | None = None, below: str | None = None, limit: int
    ) -> list[Entity]:
        """One request for up to 1,000 entities (``$top``): a key-range query, which the Table service
        answers from its index in key order; a short page with a continuation is followed until ``limit``."""
        check_key(partition)
        check_range(after, below, limit)
        parts = [f"PartitionKey eq {odata_literal(partition)}"]
        if after is not None:
            parts.append(f"RowKey gt {odata_literal(after)}")
        if below is not None:
            parts.append(f"RowKey lt {odata_literal(below)}")
        self._ensure_table()
        out: list[Entity] = []
        try:
            pages = self._table.query_entities(
                " and ".join(parts), results_per_page=min(limit, RESULTS_PER_PAGE)
            ).by_page()
            for page in pages:
                for raw in page:
                    out.append(_entity_from_table(raw))
                    if len(out) >= limit:
                        return out
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail(f"querying a key range of partition {partition}", exc) from exc
        return out

    def partitions(self) -> list[str]:
        """Every partition, with one small request per partition (each asks for the first key after the last)."""
        self._ensure_table()
        out: list[str] = []
        last: str | None = None
        try:
            while True:
                text = None if last is None else f"PartitionKey gt {odata_literal(last)}"
                rows: Iterable[Any] = (
                    self._table.list_entities(results_per_page=1, select=["PartitionKey"])
                    if text is None
                    else self._table.query_entities(text, results_per_page=1, select=["PartitionKey"])
                )
                first = next(iter(rows), None)
                if first is None:
                    return out
                last = str(first["PartitionKey"])
                out.append(last)
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail("listing partitions", exc) from exc
