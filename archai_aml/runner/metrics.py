"""The queue depth and the runner's liveness over HTTP, for an autoscaler and a liveness probe.

``archai-aml runner --metrics-port 9100`` serves, beside the runner loop (``--metrics-only``: instead of it),
on ``--metrics-host`` (default ``127.0.0.1``; the Kubernetes manifests pass the pod's address), with
:class:`~archai_aml.runner.metrics_http.BoundedHttpServer` (a listen backlog of 1024, a deadline of 5 s for a
request to arrive, at most 8 answering threads whatever the number of connections):

- ``GET /metrics``: Prometheus text format (0.0.4), one sample per metric, no labels, so that KEDA's
  ``metrics-api`` scaler (``format: prometheus``, ``valueLocation: <metric name>``) and Prometheus read it:

  ==========================================  ===========================================================
  ``archai_aml_rows_waiting_quantization``    open rows not converted/quantized yet and not leased
  ``archai_aml_rows_quantizing``              open rows not converted yet whose lease is live (in work)
  ``archai_aml_quantization_backlog``         the sum: the scaling metric (replicas = backlog / target)
  ``archai_aml_rows_waiting_no_device_work``  open rows with any work a device-less runner does (convert,
                                              ``f1_onnx``) and no live lease
  ``archai_aml_rows_open``                    rows not ``complete``/``error``
  ``archai_aml_queue_age_seconds``            seconds since the store query these numbers come from
  ``archai_aml_queue_stale``                  1 when the last store query failed or is still running
                                              (the numbers are the last ones read), else 0
  ``archai_aml_runner_heartbeat_age_seconds`` seconds since this process's runner last beat (absent with
                                              ``--metrics-only``)
  ==========================================  ===========================================================

- ``GET /queue``: the same numbers as JSON (KEDA ``format: json``, ``valueLocation: quantization_backlog``),
  with ``age_s``, ``stale`` and ``store`` (``"reachable"`` or ``"unreachable: <error type>"``).
- ``GET /healthz``: 200 while the runner's heartbeat is younger than ``max_heartbeat_age_s`` (the loop and
  its heartbeat thread are alive), else 503; with ``--metrics-only`` 200 while the server runs. Its JSON
  says whether the store is reachable (``store``); a store outage does not fail it (the runner rides
  outages out: a liveness probe that restarted it would not bring the store back).

The counts come from ONE store query (the runner's own query: rows not ``complete``/``error``), made at most
every ``cache_s`` seconds whatever the number of scrapers, on a thread of its own: a request waits for it
at most ``wait_s`` (0.5 s) and then answers from the last numbers read, with their age and the stale flag,
so that an outage (a store that refuses, or one that hangs) never makes a scrape wait. Before any query
succeeded, ``/metrics`` and ``/queue`` answer 503 at once, saying the store is unreachable.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archai_aml.errors import redact_secrets
from archai_aml.runner.metrics_http import BoundedHttpServer, Response
from archai_aml.runner.queue import DONE_STATUSES, Capabilities, items_for_row
from archai_aml.store.base import Entity, Store
from archai_aml.store.leases import lease_state, utcnow

__all__ = ["MetricsServer", "QueueMetrics", "QueueSnapshot", "queue_counts", "render_prometheus"]

log = logging.getLogger(__name__)

PREFIX = "archai_aml_"
HELP = {
    "rows_waiting_quantization": "Open rows not converted and quantized yet, with no live lease",
    "rows_quantizing": "Open rows not converted yet whose lease is live",
    "quantization_backlog": "Rows waiting for quantization or being quantized (the scaling metric)",
    "rows_waiting_no_device_work": "Open rows with conversion or f1_onnx work and no live lease",
    "rows_open": "Rows neither complete nor in error",
    "queue_age_seconds": "Seconds since the store query the queue numbers come from",
    "queue_stale": "1 when the last store query failed or is still running (the numbers are the last read)",
    "runner_heartbeat_age_seconds": "Seconds since this process's runner last beat",
}
_NO_DEVICE = Capabilities(use_device=False, can_quantize=True)


def queue_counts(rows: list[Entity]) -> dict[str, float]:
    """The queue gauges of one query's rows (a pure function, like :func:`~archai_aml.runner.queue.build_queue`)."""
    now = utcnow()
    waiting = quantizing = no_device = is_open = 0
    for row in rows:
        if row.get("status") in DONE_STATUSES or row.get("error"):
            continue
        is_open += 1
        items = items_for_row(row, _NO_DEVICE)
        live = lease_state(row, now)[1]
        if items and items[0].kind == "convert":
            if live:
                quantizing += 1
            else:
                waiting += 1
        if items and not live:
            no_device += 1
    return {
        "rows_waiting_quantization": waiting,
        "rows_quantizing": quantizing,
        "quantization_backlog": waiting + quantizing,
        "rows_waiting_no_device_work": no_device,
        "rows_open": is_open,
    }


def _help_text(text: str) -> str:
    """A HELP docstring escaped as the text format asks (backslash and line feed)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def render_prometheus(values: dict[str, float], experiment: str) -> str:
    """Prometheus text exposition (version 0.0.4) of ``values``."""
    lines = []
    for key, value in values.items():
        name = PREFIX + key
        lines.append(f"# HELP {name} {_help_text(f'{HELP.get(key, key)} (experiment {experiment})')}")
        lines.append(f"# TYPE {name} gauge")
        lines.append(f"{name} {float(value):g}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class QueueSnapshot:
    """The last queue numbers read (None: no query has succeeded yet), their age, and the store's state."""

    counts: dict[str, float] | None
    age_s: float | None
    stale: bool
    store_error: str | None

    @property
    def store(self) -> str:
        return "reachable" if self.store_error is None else f"unreachable: {self.store_error}"


class QueueMetrics:
    """What the endpoints answer: queue gauges of ``experiment`` (cached ``cache_s``) and the runner's health.

    ``heartbeat``: returns the ``time.monotonic()`` of the runner's last heartbeat (None: no runner here).
    :meth:`counts` queries (blocking); :meth:`snapshot`, what the server uses, never waits more than
    ``wait_s`` for the store.
    """

    def __init__(
        self,
        store: Store,
        experiment: str,
        *,
        heartbeat: Callable[[], float | None] | None = None,
        max_heartbeat_age_s: float = 180.0,
        cache_s: float = 5.0,
        wait_s: float = 0.5,
    ) -> None:
        self.store = store
        self.experiment = experiment
        self.heartbeat = heartbeat
        self.max_heartbeat_age_s = max_heartbeat_age_s
        self.cache_s = cache_s
        self.wait_s = wait_s
        self.queries = 0
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, float]] | None = None
        self._error: str | None = None
        self._refresh: threading.Thread | None = None

    def counts(self) -> dict[str, float]:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.cache_s:
                return dict(self._cached[1])
        return self._query()

    def _query(self) -> dict[str, float]:
        try:
            rows = self.store.query(self.experiment, status_not=DONE_STATUSES)
        except Exception as exc:
            with self._lock:
                self.queries += 1
                self._error = type(exc).__name__
            log.warning("metrics: the store query failed: %s", redact_secrets(str(exc))[:300])
            raise
        counts = queue_counts(rows)
        with self._lock:
            self.queries += 1
            self._cached, self._error = (time.monotonic(), counts), None
        return dict(counts)

    def _refresh_once(self) -> None:
        try:
            self._query()
        except Exception:  # recorded in _error; the next snapshot tries again
            pass

    def snapshot(self) -> QueueSnapshot:
        """The numbers to serve now: fresh when the cache is younger than ``cache_s`` or a query answers
        within ``wait_s``; else the last ones read, flagged stale (one query in flight at a time)."""
        with self._lock:
            now = time.monotonic()
            fresh = self._cached is not None and now - self._cached[0] < self.cache_s
            thread = self._refresh
            if not fresh and (thread is None or not thread.is_alive()):
                thread = threading.Thread(target=self._refresh_once, name="metrics-query", daemon=True)
                self._refresh = thread
                thread.start()
        if not fresh and thread is not None:
            thread.join(timeout=self.wait_s)
        with self._lock:
            cached, error = self._cached, self._error
            running = self._refresh is not None and self._refresh.is_alive()
        if cached is None:
            return QueueSnapshot(None, None, True, error or "no answer yet")
        age = max(0.0, time.monotonic() - cached[0])
        stale = error is not None or (running and age >= self.cache_s)
        if running and error is None and stale:
            error = f"no answer for {age:.1f} s"
        return QueueSnapshot(dict(cached[1]), age, stale, error)

    def heartbeat_age(self) -> float | None:
        last = self.heartbeat() if self.heartbeat is not None else None
        return None if last is None else max(0.0, time.monotonic() - last)

    def values(self) -> dict[str, float]:
        values = self.counts()
        age = self.heartbeat_age()
        if age is not None:
            values["runner_heartbeat_age_seconds"] = round(age, 3)
        return values

    def healthy(self) -> tuple[bool, str]:
        if self.heartbeat is None:
            return True, "metrics only"
        age = self.heartbeat_age()
        if age is None:
            return False, "the runner has not beaten yet"
        if age > self.max_heartbeat_age_s:
            return False, f"last heartbeat {age:.0f} s ago (limit {self.max_heartbeat_age_s:.0f} s)"
        return True, f"last heartbeat {age:.1f} s ago"


def answer(metrics: QueueMetrics, path: str) -> Response:
    """The response of the server to ``GET path`` (never waits for the store more than ``wait_s``)."""
    if path == "/healthz":
        ok, why = metrics.healthy()
        snap = metrics.snapshot()
        body = {"ok": ok, "detail": why, "store": snap.store, "queue_age_s": snap.age_s}
        return Response(200 if ok else 503, json.dumps(body), "application/json")
    if path not in ("/metrics", "/queue"):
        return Response(404, "not found: /metrics, /queue, /healthz\n")
    snap = metrics.snapshot()
    if snap.counts is None:
        return Response(503, f"no queue numbers read yet: the store is {snap.store}\n")
    values = dict(snap.counts)
    values["queue_age_seconds"] = round(snap.age_s or 0.0, 3)
    values["queue_stale"] = 1 if snap.stale else 0
    heartbeat = metrics.heartbeat_age()
    if heartbeat is not None:
        values["runner_heartbeat_age_seconds"] = round(heartbeat, 3)
    if path == "/metrics":
        return Response(
            200, render_prometheus(values, metrics.experiment), "text/plain; version=0.0.4; charset=utf-8"
        )
    body = {
        "experiment": metrics.experiment,
        **values,
        "age_s": values["queue_age_seconds"],
        "stale": snap.stale,
    }
    body["store"] = snap.store
    return Response(200, json.dumps(body), "application/json")


class MetricsServer:
    """Serves :class:`QueueMetrics` on ``host:port`` (port 0: a free one, see :attr:`port`) on a daemon thread."""

    def __init__(
        self, metrics: QueueMetrics, host: str = "127.0.0.1", port: int = 9100, **limits: Any
    ) -> None:
        """``limits``: those of :class:`~archai_aml.runner.metrics_http.BoundedHttpServer` (``backlog``,
        ``max_connections``, ``max_workers``, ``request_timeout_s``, ``write_timeout_s``)."""
        self.metrics = metrics
        self._server = BoundedHttpServer(lambda path: answer(metrics, path), host, port, **limits)

    @property
    def port(self) -> int:
        return self._server.address[1]

    @property
    def http(self) -> BoundedHttpServer:
        return self._server

    def start(self) -> MetricsServer:
        self._server.start()
        log.warning(
            "queue metrics of %s on %s port %d: /metrics /queue /healthz",
            self.metrics.experiment,
            self._server.address[0],
            self.port,
        )
        return self

    def stop(self) -> None:
        self._server.stop()


def runner_heartbeat(runner: Any) -> Callable[[], float | None]:
    """The monotonic time of ``runner``'s last heartbeat (its loop and lease-renewal thread both beat)."""

    def last() -> float | None:
        value = getattr(runner, "_last_beat", None)
        return float(value) if value else None

    return last


def serve_for_runner(store: Store, runner: Any, *, host: str, port: int, metrics_only: bool) -> MetricsServer:
    """Start the server for ``archai-aml runner --metrics-port`` (liveness from ``runner``'s heartbeat, which
    beats at least every ``lease_ttl / 2`` while working and every poll while idle)."""
    s = runner.settings
    metrics = QueueMetrics(
        store,
        runner.experiment,
        heartbeat=None if metrics_only else runner_heartbeat(runner),
        max_heartbeat_age_s=3 * s.lease_ttl + s.poll_interval,
    )
    return MetricsServer(metrics, host, port).start()
