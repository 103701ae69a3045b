"""An azure-core policy counting the HTTP requests an Azure store really sends (a ``merge`` may be two
requests there, a folder upload many), for ``--stats`` and the fleet benchmark. Only the azure backend
imports it: azure-core is an optional dependency (the ``azure`` extra)."""

from __future__ import annotations

import threading
from collections import Counter

from archai_aml._optional import require

require("azure.core", feature="counting the HTTP requests of the azure store")

from azure.core.pipeline import PipelineRequest  # noqa: E402
from azure.core.pipeline.policies import SansIOHTTPPolicy  # noqa: E402

__all__ = ["HttpCounter"]


class HttpCounter(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Counts every HTTP request (each retry too) by method and service (``GET table``, ``PUT blob``...).
    Pass it as ``open_store(config, per_call_policies=[counter])``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        http = request.http_request
        service = "table" if "DataServiceVersion" in http.headers else "blob"  # header the table SDK sets
        with self._lock:
            self.counts[f"{http.method} {service}"] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())
