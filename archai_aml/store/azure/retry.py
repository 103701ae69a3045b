"""How the Azure store retries: which requests may be sent again, how long it waits, and what a
compare-and-swap write does when its answer was lost.

A failed request is one of three cases, and each is treated on its own:

- **never sent** (``ServiceRequestError``: connection refused, DNS failure, connect timeout): sent again
  whatever the method, since the service cannot have seen it;
- **sent, answer lost** (``ServiceResponseError``: connection reset or read timeout after the request left):
  sent again only when doing it twice is harmless: reads, ``PUT``/``DELETE``/``MERGE`` without a version
  condition (an upsert of the same columns, a blob overwrite). A write guarded by an ETag (``If-Match`` on a
  version) or by ``If-None-Match: *`` (create-only), and every ``POST`` (insert), is not sent again: a second
  copy would fail (412/409) even when the first one landed, or insert twice. It raises
  :class:`ResponseLostError`, and :func:`recover_cas` settles a compare-and-swap by reading the entity back;
- **answered with a transient status** (408, 429, 500, 502, 503, 504): the SDKs' own rules.

Both clients wait the same schedule before retry ``n`` (1-based): nothing before the first, then
``backoff * 2**(n-1)`` seconds, at most ``backoff_max``, each with +-20% jitter (:func:`backoff_delay`).
With the defaults (10 retries, 0.5 s, 10 s) a call keeps trying for about 65 s (0, 1, 2, 4, 8, then five
times 10 s) before it raises :class:`~archai_aml.errors.StoreError`; ``docs/azure-store.md`` gives the
figures and the test that measures them.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.data.tables import TableClient
from azure.data.tables._policies import TablesRetryPolicy
from azure.storage.blob import ExponentialRetry

from archai_aml.errors import ConcurrencyError, StoreError
from archai_aml.store.base import Entity
from archai_aml.store.rules import to_utc, user_columns

__all__ = [
    "DEFAULT_RETRY_BACKOFF",
    "DEFAULT_RETRY_BACKOFF_MAX",
    "DEFAULT_RETRY_TOTAL",
    "BlobRetry",
    "ResponseLostError",
    "RetryingTableClient",
    "TableRetry",
    "answer_lost",
    "backoff_delay",
    "may_resend",
    "recover_cas",
    "retry_window",
]

log = logging.getLogger(__name__)

DEFAULT_RETRY_TOTAL = 10
DEFAULT_RETRY_BACKOFF = 0.5
DEFAULT_RETRY_BACKOFF_MAX = 10.0
JITTER = 0.2

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_REPEATABLE_WRITES = frozenset({"PUT", "DELETE", "PATCH", "MERGE"})


class ResponseLostError(ServiceRequestError):
    """A request that may have reached the service lost its answer and was not sent again (see the module
    docstring). A subclass of ``ServiceRequestError`` so that every handler of an unreachable endpoint maps
    it to :class:`~archai_aml.errors.StoreError`; :func:`answer_lost` finds it behind one."""


def backoff_delay(retry: int, backoff: float, backoff_max: float, *, jitter: bool = True) -> float:
    """Seconds to wait before retry number ``retry`` (1-based; see the module docstring)."""
    if retry <= 1:
        return 0.0
    delay = min(backoff_max, backoff * 2 ** (retry - 1))
    return delay * random.uniform(1 - JITTER, 1 + JITTER) if jitter else delay


def retry_window(retry_total: int, backoff: float, backoff_max: float) -> float:
    """The nominal seconds a call keeps retrying before it gives up (sum of the waits, no jitter)."""
    return sum(backoff_delay(n, backoff, backoff_max, jitter=False) for n in range(1, retry_total + 1))


def _header(request: Any, name: str) -> str | None:
    headers = getattr(request, "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def may_resend(request: Any, error: BaseException | None) -> bool:
    """Whether ``request`` may be sent again after ``error`` (see the module docstring)."""
    if error is None or isinstance(error, ServiceRequestError):
        return True  # a status to retry, or never sent
    if not isinstance(error, ServiceResponseError):
        return True
    method = str(getattr(request, "method", "")).upper()
    if method in _READS:
        return True
    if method not in _REPEATABLE_WRITES:
        return False  # POST: an insert (or a batch) would be done twice
    if_match, if_none_match = _header(request, "If-Match"), _header(request, "If-None-Match")
    return if_none_match is None and if_match in (None, "*")


def _lost(error: ServiceResponseError) -> ResponseLostError:
    lost = ResponseLostError(
        f"the request may have reached the service but its answer was lost ({error.message})", error=error
    )
    lost.__cause__ = error
    return lost


class TableRetry(TablesRetryPolicy):  # type: ignore[misc]
    """The table SDK's retry policy with this module's rules: every method retried while it was never
    sent, connect/read/status retries each allowed up to ``retry_total``, the shared jittered schedule."""

    def __init__(self, **kwargs: Any) -> None:
        total = kwargs.get("retry_total", DEFAULT_RETRY_TOTAL)
        for key in ("retry_connect", "retry_read", "retry_status"):
            kwargs.setdefault(key, total)
        super().__init__(**kwargs)

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return backoff_delay(len(settings["history"]), settings["backoff"], settings["max_backoff"])

    def _is_method_retryable(self, settings: dict[str, Any], request: Any, response: Any = None) -> bool:
        if response is None:  # a failed send: increment() decides with the error in hand
            return True
        return bool(super()._is_method_retryable(settings, request, response=response))

    def increment(self, settings: dict[str, Any], response: Any = None, error: Any = None) -> bool:
        if error is not None and not may_resend(getattr(response, "http_request", None), error):
            return False
        return bool(super().increment(settings, response=response, error=error))

    def send(self, request: Any) -> Any:
        try:
            return super().send(request)
        except ResponseLostError:
            raise
        except ServiceResponseError as exc:
            raise _lost(exc) from exc


class RetryingTableClient(TableClient):  # type: ignore[misc]
    """A ``TableClient`` whose pipeline has :class:`TableRetry` in place of the SDK's retry policy (the SDK
    builds that policy itself from the keyword arguments and takes no ``retry_policy``)."""

    def _configure_policies(self, **kwargs: Any) -> list[Any]:
        policies = super()._configure_policies(**kwargs)
        retry_kwargs = {k: v for k, v in kwargs.items() if k.startswith("retry_")}
        return [TableRetry(**retry_kwargs) if type(p) is TablesRetryPolicy else p for p in policies]


class BlobRetry(ExponentialRetry):  # type: ignore[misc]
    """The blob SDK's retry policy with the same rules and schedule as :class:`TableRetry` (the stock
    ``ExponentialRetry`` waits ``initial_backoff + increment_base**n``: 15, 18, 24 s by default)."""

    def __init__(
        self,
        *,
        retry_total: int = DEFAULT_RETRY_TOTAL,
        backoff: float = DEFAULT_RETRY_BACKOFF,
        backoff_max: float = DEFAULT_RETRY_BACKOFF_MAX,
    ) -> None:
        super().__init__(
            initial_backoff=0,
            increment_base=2,
            retry_total=retry_total,
            random_jitter_range=0,
            retry_connect=retry_total,
            retry_read=retry_total,
            retry_status=retry_total,
        )
        self.backoff = backoff
        self.backoff_max = backoff_max

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return backoff_delay(settings["count"], self.backoff, self.backoff_max)

    def increment(
        self, settings: dict[str, Any], request: Any, response: Any = None, error: Any = None
    ) -> bool:
        if error is not None and not may_resend(request, error):
            return False
        return bool(super().increment(settings, request, response=response, error=error))

    def send(self, request: Any) -> Any:
        try:
            return super().send(request)
        except ResponseLostError:
            raise
        except ServiceResponseError as exc:
            raise _lost(exc) from exc


def answer_lost(error: BaseException) -> bool:
    """Whether ``error`` (a :class:`StoreError` or an SDK error) stands for a :class:`ResponseLostError`."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ResponseLostError):
            return True
        seen = seen.__cause__
    return False


def _same(stored: Any, written: Any) -> bool:
    if isinstance(stored, datetime) and isinstance(written, datetime):
        return to_utc(stored) == to_utc(written)
    return bool(stored == written) and type(stored) is type(written)


def holds(entity: Entity, values: Mapping[str, Any]) -> bool:
    """Whether ``entity`` holds every column of ``values`` as written (``None``: the column is absent)."""
    return all(_same(entity.get(k), v) if v is not None else entity.get(k) is None for k, v in values.items())


def recover_cas(
    get: Callable[[str, str], Entity | None],
    resend: Callable[[Entity, Mapping[str, Any]], Entity],
    entity: Entity,
    values: Mapping[str, Any],
    error: StoreError,
) -> Entity:
    """Settle a compare-and-swap write of ``values`` on ``entity`` whose answer was lost.

    The entity is read back: still at ``entity``'s version, the write did not land and is sent again (the
    ETag still guards it); moved and holding every written column (a lease's random token among them), it
    is this write, and the entity as read is returned; moved otherwise (or gone), another writer won:
    :class:`ConcurrencyError`, as if the write had been refused. Never writes twice.
    """
    partition, name, version = entity["partition"], entity["name"], str(entity["_version"])
    current = get(partition, name)
    if current is None:
        raise ConcurrencyError(partition, name, version) from error
    if current.get("_version") == version:
        log.info("a write to %s/%s lost its answer and did not land: sending it again", partition, name)
        return resend(entity, values)
    if holds(current, user_columns(values)):
        log.info("a write to %s/%s lost its answer but landed (read back)", partition, name)
        return current
    raise ConcurrencyError(partition, name, version) from error
