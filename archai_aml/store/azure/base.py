"""What both sides of the Azure store share: its clients and settings, errors turned into one-line
:class:`StoreError` messages without secrets, the table and container made on first use, and the log
redaction of SAS signatures."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

from archai_aml.errors import StoreError
from archai_aml.store.azure.retry import ResponseLostError
from archai_aml.store.base import Store

log = logging.getLogger("archai_aml.store.azure")

_CREATE_ATTEMPTS = 5
#: Connections kept open per host by the blob client: more than any thread pool of the store's transfers.
BLOB_POOL_SIZE = 64


class PooledTransport(RequestsTransport):  # type: ignore[misc]
    """The SDK's requests transport with a connection pool of ``pool_size`` per host.

    requests keeps 10 connections per host; a transfer on more threads than that opens a connection per
    request and drops it ("Connection pool is full, discarding connection"), a TCP handshake per blob."""

    def __init__(self, *, pool_size: int = BLOB_POOL_SIZE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool_size = pool_size

    def _init_session(self, session: Any) -> None:  # a requests.Session
        super()._init_session(session)
        for adapter in session.adapters.values():
            adapter.init_poolmanager(self._pool_size, self._pool_size)  # type: ignore[attr-defined]
            adapter._pool_connections = adapter._pool_maxsize = self._pool_size  # type: ignore[attr-defined]


class AzureBase(Store):
    """The clients and settings of an :class:`~archai_aml.store.azure.AzureStore` (set by its constructor)."""

    table_name: str
    container_name: str
    max_concurrency: int
    progress: bool | None
    auth: str
    _table: TableClient
    _container: ContainerClient
    _lock: threading.Lock
    _table_ready: bool
    _container_ready: bool

    # ------------------------------------------------------------------------------------ errors
    def _fail(self, what: str, exc: Exception) -> StoreError:
        """A :class:`StoreError` for an SDK error, with a hint and without any secret."""
        malformed = _malformed_path(exc)
        if malformed is not None:
            hint = (
                f"the request path {malformed!r} holds '.' or '..' segments, which the HTTP stack rewrites "
                "before sending, so the service saw another path: the name is malformed (not the credential); "
                "use names without '.' or '..' parts"
            )
        elif isinstance(exc, ClientAuthenticationError) or (
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
            for attempt in range(1, _CREATE_ATTEMPTS + 1):
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
                except ResponseLostError as exc:
                    # Creating a table is a POST, which the retry policy does not send twice; here twice is
                    # harmless (the second answers 409, taken as success above), so send it again.
                    if attempt == _CREATE_ATTEMPTS:
                        raise self._fail(f"creating {kind} {name}", exc) from exc
                    log.info("creating %s %s lost its answer; sending it again", kind, name)
                    continue
                except ServiceRequestError as exc:
                    raise self._fail(f"creating {kind} {name}", exc) from exc
                break
            setattr(self, ready_flag, True)


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


def _malformed_path(exc: Exception) -> str | None:
    """The path of the failed request when it holds ``.``/``..`` segments, else None."""
    response = getattr(exc, "response", None)
    request = getattr(response, "request", None)
    url = getattr(request, "url", None)
    if not isinstance(url, str):
        return None
    path = urlsplit(url).path
    segments = unquote(path).split("/")[1:]
    if any(seg in (".", "..") for seg in segments):
        return path
    return None


def _strip_query(url: str) -> str:
    """``url`` without a query string (where a SAS would be)."""
    return url.split("?", 1)[0]
