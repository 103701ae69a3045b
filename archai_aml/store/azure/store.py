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
- ``float`` is written as ``Edm.Double`` and read back as ``float`` (the service sends it as a JSON number
  with a fraction, ``1.0``). ``-0.0`` reads back as ``0.0``;
- ``Edm.Int32`` (written by other tools, e.g. the anchor's own store) is sent as a bare JSON integer without
  a type annotation and reads back as ``int``, like ``Edm.Int64`` (the embedded store holds every integer
  as ``int`` too);
- ``datetime`` is written in UTC at microsecond precision (naive values are taken to be UTC) and read back
  as a plain timezone-aware :class:`datetime.datetime` (the service keeps 100 ns ticks, so nothing is lost);
- ``bool`` and ``str`` are stored as themselves (a string that looks like a number stays a string).

The version of an entity is its ETag; ``_timestamp`` is the service's ``Timestamp``. Transient errors are
retried by the SDKs' retry policies (``retry_total``, exponential backoff), never by loops here; the loops in
this module are compare-and-swap retries that re-read after a concurrent write.

Secrets (account keys, SAS tokens, connection strings) are never logged, put in error messages or shown by
``repr``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential, TokenCredential
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.data.tables import TableClient
from azure.storage.blob import BlobServiceClient, ContainerClient

from archai_aml.config import StoreConfig
from archai_aml.store.azure.base import PooledTransport, RedactSasFilter, _strip_query, install_log_redaction
from archai_aml.store.azure.blobs import AzureBlobSide
from archai_aml.store.azure.codec import odata_filter, odata_literal
from archai_aml.store.azure.retry import (
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_RETRY_BACKOFF_MAX,
    DEFAULT_RETRY_TOTAL,
    BlobRetry,
    RetryingTableClient,
)
from archai_aml.store.azure.settings import AzureStoreConfig
from archai_aml.store.azure.table import AzureTableSide
from archai_aml.store.connection import ConnectionSettings, parse_connection_string

__all__ = [
    "AzureStore",
    "BlobRetry",
    "ConnectionSettings",
    "RedactSasFilter",
    "install_log_redaction",
    "odata_filter",
    "odata_literal",
    "parse_connection_string",
]

log = logging.getLogger(__name__)


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


class AzureStore(AzureTableSide, AzureBlobSide):
    """A :class:`Store` on an Azure storage account (or Azurite): one table and one blob container."""

    def __init__(
        self,
        make_table: Callable[[str], TableClient],
        blob_service: BlobServiceClient,
        *,
        table_name: str = "status",
        container_name: str = "models",
        max_concurrency: int = 8,
        progress: bool | None = None,
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
        """(table client kwargs, blob client kwargs): the retry policies of :mod:`archai_aml.store.azure.retry`
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
            transport=PooledTransport(**common),
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
        progress: bool | None = None,
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
        progress: bool | None = None,
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
        progress: bool | None = None,
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
    def from_config(cls, config: AzureStoreConfig, **kwargs: Any) -> AzureStore:
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
            "progress": config.progress,
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
        progress: bool | None,
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
