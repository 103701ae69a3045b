"""The queue depth and the runner's liveness over HTTP, for an autoscaler and a liveness probe.

``archai-aml runner --metrics-port 9100`` serves, beside the runner loop (``--metrics-only``: instead of it),
with the standard library's :mod:`http.server` on a daemon thread:

- ``GET /metrics``: Prometheus text format (0.0.4), one sample per metric, no labels, so that KEDA's
  ``metrics-api`` scaler (``format: prometheus``, ``valueLocation: <metric name>``) and Prometheus read it:

  ==========================================  ===========================================================
  ``archai_aml_rows_waiting_quantization``    open rows not converted/quantized yet and not leased
  ``archai_aml_rows_quantizing``              open rows not converted yet whose lease is live (in work)
  ``archai_aml_quantization_backlog``         the sum: the scaling metric (replicas = backlog / target)
  ``archai_aml_rows_waiting_no_device_work``  open rows with any work a device-less runner does (convert,
                                              ``f1_onnx``) and no live lease
  ``archai_aml_rows_open``                    rows not ``complete``/``error``
  ``archai_aml_runner_heartbeat_age_seconds`` seconds since this process's runner last beat (absent with
                                              ``--metrics-only``)
  ==========================================  ===========================================================

- ``GET /queue``: the same numbers as JSON (KEDA ``format: json``, ``valueLocation: quantization_backlog``).
- ``GET /healthz``: 200 while the runner's heartbeat is younger than ``max_heartbeat_age_s`` (the loop and
  its heartbeat thread are alive; a store outage does not fail it, the runner rides those out), else 503.
  With ``--metrics-only`` it is 200 while the server runs.

The counts come from ONE store query (the runner's own query: rows not ``complete``/``error``), made at most
every ``cache_s`` seconds whatever the number of scrapers. A store error answers 503 on ``/metrics`` and
``/queue`` (the autoscaler keeps its last decision) and the server goes on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from archai_aml.runner.queue import DONE_STATUSES, Capabilities, items_for_row
from archai_aml.store.base import Entity, Store
from archai_aml.store.leases import lease_state, utcnow

__all__ = ["MetricsServer", "QueueMetrics", "queue_counts", "render_prometheus"]

log = logging.getLogger(__name__)

PREFIX = "archai_aml_"
HELP = {
    "rows_waiting_quantization": "Open rows not converted and quantized yet, with no live lease",
    "rows_quantizing": "Open rows not converted yet whose lease is live",
    "quantization_backlog": "Rows waiting for quantization or being quantized (the scaling metric)",
    "rows_waiting_no_device_work": "Open rows with conversion or f1_onnx work and no live lease",
    "rows_open": "Rows neither complete nor in error",
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


def render_prometheus(values: dict[str, float], experiment: str) -> str:
    """Prometheus text exposition (version 0.0.4) of ``values``."""
    lines = []
    for key, value in values.items():
        name = PREFIX + key
        lines.append(f"# HELP {name} {HELP.get(key, key)} (experiment {experiment})")
        lines.append(f"# TYPE {name} gauge")
        lines.append(f"{name} {float(value):g}")
    return "\n".join(lines) + "\n"


class QueueMetrics:
    """What the endpoints answer: queue gauges of ``experiment`` (cached ``cache_s``) and the runner's health.

    ``heartbeat``: returns the ``time.monotonic()`` of the runner's last heartbeat (None: no runner here).
    """

    def __init__(
        self,
        store: Store,
        experiment: str,
        *,
        heartbeat: Callable[[], float | None] | None = None,
        max_heartbeat_age_s: float = 180.0,
        cache_s: float = 5.0,
    ) -> None:
        self.store = store
        self.experiment = experiment
        self.heartbeat = heartbeat
        self.max_heartbeat_age_s = max_heartbeat_age_s
        self.cache_s = cache_s
        self.queries = 0
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, float]] | None = None

    def counts(self) -> dict[str, float]:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.cache_s:
                return dict(self._cached[1])
            rows = self.store.query(self.experiment, status_not=DONE_STATUSES)
            self.queries += 1
            counts = queue_counts(rows)
            self._cached = (time.monotonic(), counts)
            return dict(counts)

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


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("metrics %s: " + format, self.address_string(), *args)

    def _send(self, code: int, body: str, content_type: str) -> None:
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        metrics = self.server.metrics
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            ok, why = metrics.healthy()
            self._send(200 if ok else 503, json.dumps({"ok": ok, "detail": why}), "application/json")
            return
        if path not in ("/metrics", "/queue"):
            self._send(404, "not found: /metrics, /queue, /healthz\n", "text/plain; charset=utf-8")
            return
        try:
            values = metrics.values()
        except Exception as exc:  # a store outage: say so, keep serving
            log.warning("metrics: the store query failed: %s", exc)
            self._send(503, f"store query failed: {type(exc).__name__}\n", "text/plain; charset=utf-8")
            return
        if path == "/metrics":
            body = render_prometheus(values, metrics.experiment)
            self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(200, json.dumps({"experiment": metrics.experiment, **values}), "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], metrics: QueueMetrics) -> None:
        self.metrics = metrics
        super().__init__(address, _Handler)


class MetricsServer:
    """Serves :class:`QueueMetrics` on ``host:port`` (port 0: a free one, see :attr:`port`) on a daemon thread."""

    def __init__(self, metrics: QueueMetrics, host: str = "0.0.0.0", port: int = 9100) -> None:
        self.metrics = metrics
        self._server = _Server((host, port), metrics)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        log.warning(
            "queue metrics of %s on port %d: /metrics /queue /healthz", self.metrics.experiment, self.port
        )
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


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
