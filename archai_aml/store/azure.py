"""The Azure backend of the status store: Azure Table storage for entities, Azure Blob storage for files.

Three ways to authenticate (see ``docs/azure-store.md``):

- a connection string: ``AccountName=..;AccountKey=..`` (with ``EndpointSuffix`` or explicit
  ``TableEndpoint``/``BlobEndpoint``), a ``SharedAccessSignature=..`` string, or Azurite's
  ``UseDevelopmentStorage=true`` (``127.0.0.1:10000``/``10002``, or ``DevelopmentStorageProxyUri``);
- account URLs (``table_url``/``blob_url``, or ``account_name``) plus a SAS token;
- account URLs plus an Azure AD identity: ``DefaultAzureCredential`` (with ``managed_identity_client_id``
  picking a user-assigned managed identity inside Azure ML jobs), or any ``credential`` passed in.

Type mapping (every value round-trips exactly, see :mod:`archai_aml.store.base`):

- ``int`` is always written as ``Edm.Int64`` and read back as ``int``;
- ``float`` is written as ``Edm.Double``. The Table service returns integer-looking doubles (``1.0``) as bare
  JSON integers without a type annotation; since this store writes every ``int`` with an annotation, a bare
  integer read back is a double and becomes ``float`` again. (An ``Edm.Int32`` column written by another
  tool therefore reads back as ``float``.) ``-0.0`` reads back as ``0.0``;
- ``datetime`` is written in UTC at microsecond precision (naive values are taken to be UTC) and read back
  as a plain timezone-aware :class:`datetime.datetime` (the service keeps 100 ns ticks, so nothing is lost);
- ``bool`` and ``str`` are stored as themselves (a string that looks like a number stays a string).

The version of an entity is its ETag; ``_timestamp`` is the service's ``Timestamp``. Transient errors are
retried by the SDKs' pipelines with the policies of :mod:`archai_aml.store.retry` (which requests may be sent
again, the backoff schedule), never by loops here; the loops in this module are compare-and-swap retries that
re-read after a concurrent write, and a compare-and-swap whose answer was lost is settled by reading back.

Secrets (account keys, SAS tokens, connection strings) are never logged, put in error messages or shown by
``repr``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential, TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.data.tables import EdmType, EntityProperty, TableClient, UpdateMode
from azure.storage.blob import BlobServiceClient, ContainerClient
from tqdm import tqdm

from archai_aml.config import StoreConfig
from archai_aml.errors import BlobExistsError, ConcurrencyError, EntityExistsError, StoreError
from archai_aml.store.base import (
    RESERVED_KEYS,
    Entity,
    Store,
    Value,
    as_set,
    check_blob_name,
    check_key,
    matching,
    requested_blobs,
    safe_blob_path,
    to_utc,
    upload_plan,
    user_columns,
)
from archai_aml.store.connection import ConnectionSettings, parse_connection_string
from archai_aml.store.retry import (
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_RETRY_BACKOFF_MAX,
    DEFAULT_RETRY_TOTAL,
    BlobRetry,
    RetryingTableClient,
    answer_lost,
    recover_cas,
)

__all__ = ["AzureStore", "ConnectionSettings", "odata_filter", "odata_literal", "parse_connection_string"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The Table service evaluates at most this many comparisons in one ``$filter``.
MAX_FILTER_COMPARISONS = 15
#: Rows per page of a query; the service returns at most 1000 per request.
RESULTS_PER_PAGE = 1000

_INT64 = (-(2**63), 2**63 - 1)


# ------------------------------------------------------------------------------------------- OData
def odata_literal(value: Value) -> str:
    """``value`` as an OData literal of the type this store writes (strings quoted, quotes doubled)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}L"  # every int column is Edm.Int64; an Int32 literal would never match it
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"cannot filter on {value!r}: NaN and infinities are not comparable")
        text = repr(value)
        return text if any(c in text for c in ".eE") else text + ".0"
    if isinstance(value, datetime):
        return "datetime'" + to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot filter on a {type(value).__name__}")


def _column(name: str) -> str:
    if name == "partition":
        return "PartitionKey"
    if name == "name":
        return "RowKey"
    user_columns({name: None})  # validates the identifier
    return name


def odata_filter(
    partition: str,
    *,
    status: frozenset[str] | None = None,
    status_not: frozenset[str] | None = None,
    names: Sequence[str] | None = None,
    where: Mapping[str, Value] | None = None,
) -> tuple[str, int]:
    """(filter, number of comparisons) for one query of :meth:`AzureStore.query`."""
    clauses = [f"PartitionKey eq {odata_literal(partition)}"]
    count = 1
    if status is not None:
        clauses.append("(" + " or ".join(f"status eq {odata_literal(s)}" for s in sorted(status)) + ")")
        count += len(status)
    if status_not:
        # ``not (... eq ...)`` so that rows without a status column match too
        clauses.append(
            "not (" + " or ".join(f"status eq {odata_literal(s)}" for s in sorted(status_not)) + ")"
        )
        count += len(status_not)
    for key, value in (where or {}).items():
        clauses.append(f"{_column(key)} eq {odata_literal(value)}")
        count += 1
    if names is not None:
        clauses.append("(" + " or ".join(f"RowKey eq {odata_literal(n)}" for n in names) + ")")
        count += len(names)
    return " and ".join(clauses), count


# -------------------------------------------------------------------------------------- conversions
def _plain_datetime(value: datetime) -> datetime:
    """A plain ``datetime`` in UTC (the SDK returns a ``TablesEntityDatetime`` subclass)."""
    value = to_utc(value)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=timezone.utc,
    )


def _to_table(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or isinstance(value, str):
            out[key] = value
        elif isinstance(value, int):
            if not _INT64[0] <= value <= _INT64[1]:
                raise ValueError(f"column {key!r}: {value} does not fit in a signed 64-bit integer")
            out[key] = EntityProperty(value, EdmType.INT64)
        elif isinstance(value, float):
            out[key] = EntityProperty(value, EdmType.DOUBLE)
        elif isinstance(value, datetime):
            out[key] = to_utc(value)
        else:  # user_columns() has already rejected other types
            raise TypeError(f"column {key!r}: cannot store a {type(value).__name__}")
    return out


def _from_table_value(value: Any) -> Any:
    if isinstance(value, EntityProperty):
        value = value.value
        return _plain_datetime(value) if isinstance(value, datetime) else value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)  # a bare integer is a double the service printed without ".0" (see module doc)
    if isinstance(value, datetime):
        return _plain_datetime(value)
    return value


_ETAG_TIME = re.compile(r"datetime'([^']+)'")


def _timestamp_from_etag(etag: str | None) -> datetime | None:
    """The ``Timestamp`` an ETag encodes (``W/"datetime'2024-01-01T00%3A00%3A00.1234567Z'"``)."""
    match = _ETAG_TIME.search(etag or "")
    if not match:
        return None
    text = unquote(match.group(1)).rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6].ljust(6, '0')}"
        fmt = "%Y-%m-%dT%H:%M:%S.%f"
    else:
        fmt = "%Y-%m-%dT%H:%M:%S"
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _entity_from_table(raw: Mapping[str, Any]) -> Entity:
    metadata = getattr(raw, "metadata", {}) or {}
    entity: Entity = {"partition": raw["PartitionKey"], "name": raw["RowKey"]}
    for key, value in raw.items():
        if key in ("PartitionKey", "RowKey", "Timestamp"):
            continue
        entity[key] = _from_table_value(value)
    etag = metadata.get("etag")
    entity["_version"] = etag
    stamp = metadata.get("timestamp")
    entity["_timestamp"] = (
        _plain_datetime(stamp) if isinstance(stamp, datetime) else _timestamp_from_etag(etag)
    )
    return entity


def _written(partition: str, name: str, values: Mapping[str, Any], response: Mapping[str, Any]) -> Entity:
    etag = response.get("etag")
    entity: Entity = {"partition": partition, "name": name}
    entity.update({k: _plain_datetime(v) if isinstance(v, datetime) else v for k, v in values.items()})
    entity["_version"] = etag
    entity["_timestamp"] = _timestamp_from_etag(etag) or datetime.now(timezone.utc)
    return entity


def _status_of(call: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, int | None]:
    """Run an SDK call and return (result, HTTP status of its last response)."""
    seen: dict[str, int] = {}

    def hook(response: Any) -> None:
        seen["status"] = response.http_response.status_code

    result = call(*args, raw_response_hook=hook, **kwargs)
    return result, seen.get("status")


# ------------------------------------------------------------------------------------------- store
def _blob_hooks(policies: list[SansIOHTTPPolicy[Any, Any]]) -> dict[str, Any]:
    """``raw_request_hook``/``raw_response_hook`` that run ``policies`` on every blob request."""

    def on_request(request: PipelineRequest[Any]) -> None:
        for policy in policies:
            policy.on_request(request)

    def on_response(response: PipelineResponse[Any, Any]) -> None:
        request = PipelineRequest(response.http_request, response.context)
        for policy in policies:
            policy.on_response(request, response)

    return {"raw_request_hook": on_request, "raw_response_hook": on_response}


class AzureStore(Store):
    """A :class:`Store` on an Azure storage account (or Azurite): one table and one blob container."""

    def __init__(
        self,
        make_table: Callable[[str], TableClient],
        blob_service: BlobServiceClient,
        *,
        table_name: str = "status",
        container_name: str = "models",
        max_concurrency: int = 8,
        progress: bool = True,
        auth: str = "credential",
        _owner: bool = True,
        _describe: str = "",
    ) -> None:
        """Wrap ready clients (``make_table(name)`` opens a table client); prefer :meth:`from_config` or the
        ``from_*`` constructors."""
        self.table_name = table_name
        self.container_name = container_name
        self.max_concurrency = max_concurrency
        self.progress = progress
        self._make_table = make_table
        self._blob_service = blob_service
        self._table: TableClient = make_table(table_name)
        self._container: ContainerClient = blob_service.get_container_client(container_name)
        self.auth = auth
        self._owner = _owner
        self._describe = _describe or _strip_query(self._table.url).rsplit("/", 1)[0]
        self._lock = threading.Lock()
        self._table_ready = False
        self._container_ready = False

    # ------------------------------------------------------------------------------- constructors
    @staticmethod
    def client_options(
        *,
        retry_total: int = DEFAULT_RETRY_TOTAL,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        retry_backoff_max: float = DEFAULT_RETRY_BACKOFF_MAX,
        connection_timeout: float = 20.0,
        read_timeout: float = 60.0,
        per_call_policies: Sequence[Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(table client kwargs, blob client kwargs): the retry policies of :mod:`archai_aml.store.retry`
        and the caller's policies.

        The table client takes ``per_call_policies`` as they are. The blob SDK ignores that argument, so
        there each policy (a :class:`~azure.core.pipeline.policies.SansIOHTTPPolicy`) is called from the
        client's public ``raw_request_hook``/``raw_response_hook``, which run once per attempt (retries are
        seen again).
        """
        common: dict[str, Any] = {"connection_timeout": connection_timeout, "read_timeout": read_timeout}
        blob_hooks: dict[str, Any] = {}
        if per_call_policies:
            policies = list(per_call_policies)
            if not all(isinstance(p, SansIOHTTPPolicy) for p in policies):
                raise TypeError("per_call_policies must be azure-core SansIOHTTPPolicy instances")
            blob_hooks = _blob_hooks(policies)
        table_kwargs = dict(
            common,
            per_call_policies=list(per_call_policies or ()),
            retry_total=retry_total,
            retry_connect=retry_total,
            retry_read=retry_total,
            retry_status=retry_total,
            retry_backoff_factor=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            retry_mode="exponential",
        )
        blob_kwargs = dict(
            common,
            **blob_hooks,
            retry_policy=BlobRetry(
                retry_total=retry_total, backoff=retry_backoff, backoff_max=retry_backoff_max
            ),
        )
        return table_kwargs, blob_kwargs

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        *,
        table_name: str = "status",
        container_name: str = "models",
        max_concurrency: int = 8,
        progress: bool = True,
        **client_kwargs: Any,
    ) -> AzureStore:
        """A store from a connection string (account key, SAS, or ``UseDevelopmentStorage=true``)."""
        settings = parse_connection_string(connection_string)
        if settings.account_key is not None:
            assert settings.account_name is not None
            credential: Any = AzureNamedKeyCredential(settings.account_name, settings.account_key)
        else:
            assert settings.sas_token is not None
            credential = AzureSasCredential(settings.sas_token)
        return cls._build(
            settings.table_url,
            settings.blob_url,
            credential,
            credential,
            auth="account key" if settings.account_key is not None else "SAS",
            table_name=table_name,
            container_name=container_name,
            max_concurrency=max_concurrency,
            progress=progress,
            client_kwargs=client_kwargs,
        )

    @classmethod
    def from_sas(
        cls,
        table_url: str,
        blob_url: str,
        sas_token: str,
        *,
        blob_sas_token: str | None = None,
        table_name: str = "status",
        container_name: str = "models",
        max_concurrency: int = 8,
        progress: bool = True,
        **client_kwargs: Any,
    ) -> AzureStore:
        """A store from account URLs and a SAS token: an account SAS valid for the table and blob services,
        or a table SAS plus ``blob_sas_token`` (e.g. a container SAS)."""
        credential = AzureSasCredential(sas_token.lstrip("?"))
        blob_credential = AzureSasCredential(blob_sas_token.lstrip("?")) if blob_sas_token else credential
        return cls._build(
            table_url,
            blob_url,
            credential,
            blob_credential,
            auth="SAS",
            table_name=table_name,
            container_name=container_name,
            max_concurrency=max_concurrency,
            progress=progress,
            client_kwargs=client_kwargs,
        )

    @classmethod
    def from_identity(
        cls,
        table_url: str,
        blob_url: str,
        *,
        credential: TokenCredential | None = None,
        managed_identity_client_id: str | None = None,
        table_name: str = "status",
        container_name: str = "models",
        max_concurrency: int = 8,
        progress: bool = True,
        **client_kwargs: Any,
    ) -> AzureStore:
        """A store from account URLs and an Azure AD identity (``DefaultAzureCredential`` unless given).

        The identity needs the *Storage Table Data Contributor* and *Storage Blob Data Contributor* roles.
        """
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(managed_identity_client_id=managed_identity_client_id)
        return cls._build(
            table_url,
            blob_url,
            credential,
            credential,
            auth="identity",
            table_name=table_name,
            container_name=container_name,
            max_concurrency=max_concurrency,
            progress=progress,
            client_kwargs=client_kwargs,
        )

    @classmethod
    def from_config(cls, config: StoreConfig, **kwargs: Any) -> AzureStore:
        """The store a :class:`StoreConfig` (backend ``azure``) describes.

        Keyword arguments: ``per_call_policies`` (azure-core policies added to both clients, e.g. to count
        requests), ``retry_total``, ``retry_backoff``, ``retry_backoff_max``, ``connection_timeout``,
        ``read_timeout``, ``progress`` (tqdm bars on folder transfers) and ``credential`` (a token credential
        for the identity form).
        """
        common: dict[str, Any] = {
            "table_name": config.table_name,
            "container_name": config.container_name,
            "max_concurrency": config.max_concurrency,
        }
        common.update(kwargs)
        if config.connection_string is not None:
            common.pop("credential", None)
            return cls.from_connection_string(config.connection_string.get_secret_value(), **common)
        table_url, blob_url = config.resolved_urls()
        if config.sas_token is not None:
            common.pop("credential", None)
            return cls.from_sas(table_url, blob_url, config.sas_token.get_secret_value(), **common)
        return cls.from_identity(
            table_url, blob_url, managed_identity_client_id=config.managed_identity_client_id, **common
        )

    @classmethod
    def _build(
        cls,
        table_url: str,
        blob_url: str,
        table_credential: Any,
        blob_credential: Any,
        *,
        auth: str,
        table_name: str,
        container_name: str,
        max_concurrency: int,
        progress: bool,
        client_kwargs: dict[str, Any],
    ) -> AzureStore:
        option_names = (
            "retry_total",
            "retry_backoff",
            "retry_backoff_max",
            "connection_timeout",
            "read_timeout",
            "per_call_policies",
        )
        options = {k: client_kwargs.pop(k) for k in option_names if k in client_kwargs}
        if client_kwargs:
            raise TypeError(f"unexpected AzureStore options: {sorted(client_kwargs)}")
        table_kwargs, blob_kwargs = cls.client_options(**options)
        install_log_redaction()

        def make_table(name: str) -> TableClient:
            # a client per table: TableServiceClient.get_table_client would drop per_call_policies
            return RetryingTableClient(
                endpoint=table_url, table_name=name, credential=table_credential, **table_kwargs
            )

        blob_service = BlobServiceClient(account_url=blob_url, credential=blob_credential, **blob_kwargs)
        return cls(
            make_table,
            blob_service,
            table_name=table_name,
            container_name=container_name,
            max_concurrency=max_concurrency,
            progress=progress,
            auth=auth,
            _describe=_strip_query(table_url),
        )

    def __repr__(self) -> str:
        return f"AzureStore(table={self._describe}/{self.table_name}, container={self.container_name})"

    __str__ = __repr__

    # ------------------------------------------------------------------------------------ errors
    def _fail(self, what: str, exc: Exception) -> StoreError:
        """A :class:`StoreError` for an SDK error, with a hint and without any secret."""
        if isinstance(exc, ClientAuthenticationError) or (
            isinstance(exc, HttpResponseError) and exc.status_code in (401, 403)
        ):
            hint = {
                "account key": "check the account name and key in the connection string",
                "SAS": "check the SAS token: expiry, allowed services (table and blob) and permissions",
            }.get(
                self.auth,
                "no Azure identity could give a token: run `az login`, set AZURE_CLIENT_ID/"
                "AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or give the job a managed identity with the Storage "
                "Table Data Contributor and Storage Blob Data Contributor roles",
            )
            hint = f"authentication or authorization failed ({self.auth}): {hint}"
        elif isinstance(exc, ServiceRequestError):
            hint = (
                "the storage endpoint could not be reached: check the URL, the network, or that Azurite runs"
            )
        else:
            hint = "see the cause above"
        status = getattr(exc, "status_code", None)
        code = getattr(exc, "error_code", None)
        detail = ", ".join(str(x) for x in (f"HTTP {status}" if status else None, code) if x)
        message = f"{what} on {self!r} failed ({type(exc).__name__}{': ' + detail if detail else ''}): {hint}"
        return StoreError(message)

    # ------------------------------------------------------------------------------ lazy creation
    def _ensure_table(self) -> None:
        if not self._table_ready:
            self._ensure("table", self.table_name, self._table.create_table, "_table_ready")

    def _ensure_container(self) -> None:
        if not self._container_ready:
            self._ensure(
                "blob container", self.container_name, self._container.create_container, "_container_ready"
            )

    def _ensure(self, kind: str, name: str, create: Callable[[], Any], ready_flag: str) -> None:
        """Create the table or container once per store (idempotent; several processes may race)."""
        with self._lock:
            if getattr(self, ready_flag):
                return
            try:
                create()
                log.info("created %s %s", kind, name)
            except ResourceExistsError:
                pass
            except HttpResponseError as exc:
                if exc.status_code != 403:
                    raise self._fail(f"creating {kind} {name}", exc) from exc
                # A scoped SAS may not create it: assume it exists; the next call says otherwise.
                log.debug("not allowed to create %s %s; assuming it exists", kind, name)
            except ServiceRequestError as exc:
                raise self._fail(f"creating {kind} {name}", exc) from exc
            setattr(self, ready_flag, True)

    # ---------------------------------------------------------------------------------- entities
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

    # --------------------------------------------------------------------------------------- blobs
    @staticmethod
    def _prefix(partition: str, name: str | None) -> str:
        check_key(partition, name)
        return f"{partition}/" if name is None else f"{partition}/{name}/"

    def _pool(self, max_concurrency: int | None) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=max(1, max_concurrency or self.max_concurrency))

    def upload_bytes(
        self, partition: str, name: str, blob_name: str, data: bytes, *, overwrite: bool = True
    ) -> str:
        full = self._prefix(partition, name) + check_blob_name(blob_name)
        self._ensure_container()
        try:
            self._container.upload_blob(full, data, overwrite=overwrite)
        except ResourceExistsError:
            raise BlobExistsError(f"blob {full} already exists (pass overwrite=True to replace it)") from None
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail(f"uploading blob {full}", exc) from exc
        return full

    def upload(
        self,
        partition: str,
        name: str,
        local_path: str | Path,
        *,
        blob_name: str | None = None,
        overwrite: bool = True,
        max_concurrency: int | None = None,
    ) -> list[str]:
        prefix = self._prefix(partition, name)
        jobs = upload_plan(local_path, blob_name)
        self._ensure_container()

        def send(job: tuple[Path, str]) -> str:
            path, relative = job
            full = prefix + relative
            with open(path, "rb") as handle:
                try:
                    self._container.upload_blob(full, handle, overwrite=overwrite)
                except ResourceExistsError:
                    raise BlobExistsError(
                        f"blob {full} already exists (pass overwrite=True to replace it)"
                    ) from None
                except (HttpResponseError, ServiceRequestError) as exc:
                    raise self._fail(f"uploading {path} to blob {full}", exc) from exc
            return full

        return self._run_all(send, jobs, max_concurrency, f"upload {prefix}")

    def _run_all(
        self,
        fn: Callable[[Any], T],
        jobs: Sequence[Any],
        max_concurrency: int | None,
        label: str,
    ) -> list[T]:
        if len(jobs) <= 1:
            return [fn(job) for job in jobs]
        with (
            self._pool(max_concurrency) as pool,
            tqdm(total=len(jobs), desc=label, unit="file", disable=(not self.progress) or None) as bar,
        ):
            futures = [pool.submit(fn, job) for job in jobs]
            results = []
            for future in futures:
                results.append(future.result())
                bar.update(1)
        return results

    def download_bytes(self, partition: str, name: str, blob_name: str) -> bytes:
        full = self._prefix(partition, name) + check_blob_name(blob_name)
        self._ensure_container()
        try:
            return self._container.download_blob(full).readall()
        except ResourceNotFoundError:
            raise FileNotFoundError(f"no blob {full} in container {self.container_name}") from None
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail(f"downloading blob {full}", exc) from exc

    def download(
        self,
        partition: str,
        name: str,
        target_folder: str | Path,
        *,
        blob_names: Sequence[str] | None = None,
        pattern: str | None = None,
        max_concurrency: int | None = None,
    ) -> list[Path]:
        prefix = self._prefix(partition, name)
        if blob_names is not None:
            relatives = requested_blobs(blob_names, pattern)
        else:
            relatives = self._list(prefix, pattern)
        folder = Path(target_folder)
        # every name is checked before anything is written
        targets = [(relative, safe_blob_path(folder, relative)) for relative in relatives]
        self._ensure_container()

        def fetch(job: tuple[str, Path]) -> Path:
            relative, target = job
            full = prefix + relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                downloader = self._container.download_blob(full)
                with open(target, "wb") as handle:
                    downloader.readinto(handle)
            except ResourceNotFoundError:
                target.unlink(missing_ok=True)
                raise FileNotFoundError(f"no blob {full} in container {self.container_name}") from None
            except (HttpResponseError, ServiceRequestError) as exc:
                raise self._fail(f"downloading blob {full}", exc) from exc
            return target

        return self._run_all(fetch, targets, max_concurrency, f"download {prefix}")

    def _list(self, prefix: str, pattern: str | None) -> list[str]:
        self._ensure_container()
        try:
            names = [blob.name[len(prefix) :] for blob in self._container.list_blobs(name_starts_with=prefix)]
        except (HttpResponseError, ServiceRequestError) as exc:
            raise self._fail(f"listing blobs under {prefix}", exc) from exc
        return sorted(matching(names, pattern))

    def list_blobs(self, partition: str, name: str | None = None, *, pattern: str | None = None) -> list[str]:
        return self._list(self._prefix(partition, name), pattern)

    def delete_blobs(self, partition: str, name: str, *, pattern: str | None = None) -> int:
        prefix = self._prefix(partition, name)
        relatives = self._list(prefix, pattern)

        def remove(relative: str) -> int:
            try:
                self._container.delete_blob(prefix + relative)
                return 1
            except ResourceNotFoundError:
                return 0  # deleted concurrently
            except (HttpResponseError, ServiceRequestError) as exc:
                raise self._fail(f"deleting blob {prefix + relative}", exc) from exc

        return sum(self._run_all(remove, relatives, None, f"delete {prefix}"))

    # -------------------------------------------------------------------------------------- others
    def with_table(self, table_name: str) -> AzureStore:
        """A store on another table of the same account, sharing this one's blob client (close this one last)."""
        StoreConfig(table_name=table_name)  # validates the name
        return AzureStore(
            self._make_table,
            self._blob_service,
            table_name=table_name,
            container_name=self.container_name,
            max_concurrency=self.max_concurrency,
            progress=self.progress,
            auth=self.auth,
            _owner=False,
            _describe=self._describe,
        )

    def close(self) -> None:
        self._table.close()
        if self._owner:
            self._blob_service.close()


_SAS_SIGNATURE = re.compile(r"(?i)\b(sig=)[^&\s\"']+")


class RedactSasFilter(logging.Filter):
    """Masks ``sig=...`` (a SAS signature) in the records of a logger that prints request URLs.

    urllib3 logs every request line (with its query string, hence a SAS) at DEBUG; the azure-core logging
    policy already redacts, urllib3 does not.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "sig=" in message.lower():
            record.msg = _SAS_SIGNATURE.sub(r"\1REDACTED", message)
            record.args = ()
        return True


def install_log_redaction() -> None:
    """Add :class:`RedactSasFilter` to urllib3's request logger (once)."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, RedactSasFilter) for f in logger.filters):
        logger.addFilter(RedactSasFilter())


def _strip_query(url: str) -> str:
    """``url`` without a query string (where a SAS would be)."""
    return url.split("?", 1)[0]
