"""For the dashboard's tests and benchmark: :func:`seed_experiment` writes an experiment (training rows, its
latency partition, runner heartbeats, device usage) through the store protocol (any backend), and
:class:`DashboardProcess` runs ``archai-aml dashboard`` as a child process and reads the address it prints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType

from archai_aml.runner.settings import runners_store
from archai_aml.runner.usage import record_usage, usage_store
from archai_aml.store.base import Store

#: What a hostile row holds in its id and error: markup, an event attribute and a javascript: URL. Each
#: would set ``window.__pwned`` (and the title) if it ran.
#: (A row id cannot hold "/", so its script tag stays open; the img and svg handlers would run at once.)
HOSTILE_ID = (
    "<script>window.__pwned=1;document.title='pwned'<img src=x onerror=window.__pwned=2>"
    "<svg onload=window.__pwned=8>javascript:window.__pwned=9"
)
HOSTILE_ERROR = (
    "convert: <img src=x onerror=\"window.__pwned=3;document.title='pwned'\"> "
    '<a href="javascript:window.__pwned=4">javascript:window.__pwned=4</a> <script>window.__pwned=5</script>'
)


def seed_experiment(store: Store, experiment: str, models: int, *, iterations: int = 2) -> list[str]:
    """``models`` trained rows (``val_iou``, ``iteration``) in ``experiment`` and their latency rows
    (``mean``) in ``<experiment>-latency``; every fifth latency row is simulated, one row is in error,
    one latency row is leased by a live runner and one by a runner whose heartbeat is old. Returns the ids."""
    now = datetime.now(timezone.utc)
    names = [f"id_{i:04d}" for i in range(models)]
    latency = f"{experiment}-latency"
    for i, name in enumerate(names):
        iteration = 1 + i * iterations // max(1, models)
        store.create(
            experiment,
            name,
            {"status": "complete", "val_iou": 0.3 + 0.6 * ((i * 37) % 101) / 100, "iteration": iteration,
             "epochs": 1.0, "batch": f"train_{iteration}", "node": "hostA"},
        )  # fmt: skip
        values: dict[str, object] = {
            "status": "complete",
            "mean": 1.0 + (i * 53) % 97 / 10,
            "benchmark_only": True,
            "node": "hostA",
            "sources": json.dumps({"mean": "cpu target: onnxruntime 1.x on x86-64"}),
        }
        if i % 5 == 4:
            values["latency_simulated"] = True
        store.create(latency, name, values)
    if models >= 3:
        store.merge(latency, names[1], {"status": "error", "error": "benchmark 1: the model did not load"})
        store.merge(
            latency,
            names[2],
            {"status": "running benchmark", "lease_owner": "hostA:1:aaaa", "lease_token": "t0ken",
             "lease_expires": now + timedelta(seconds=40)},
        )  # fmt: skip
    runners = runners_store(store)
    runners.merge(
        latency, "hostA:1:aaaa",
        {"node": "hostA", "device": "cpu@hostA", "target": "cpu", "state": "working", "item": names[2] if
         models >= 3 else "", "last_seen": now},
    )  # fmt: skip
    runners.merge(
        latency, "hostB:7:bbbb",
        {"node": "hostB", "device": "cpu@hostB", "target": "cpu", "state": "working", "item": "",
         "last_seen": now - timedelta(hours=2)},
    )  # fmt: skip
    start = now - timedelta(minutes=30)
    record_usage(
        usage_store(store), device="cpu@hostA", node="hostA", start=start, end=start + timedelta(minutes=6),
        row=names[0] if names else "", experiment=latency, item="benchmark",
    )  # fmt: skip
    return names


class DashboardProcess:
    """``python -m archai_aml.cli [--log-level L] dashboard ARGS`` in a child process (``--port 0``
    unless given): :attr:`url` is the address it printed (with ``?token=`` when it generated one),
    :attr:`stderr` what it logged. Stopped by SIGINT (uvicorn's graceful stop) when the block ends."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        *,
        log_level: str = "INFO",
        start_timeout: float = 60.0,
    ) -> None:
        self.args = list(args) if "--port" in args else [*args, "--port", "0"]
        self.env = dict(env)
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.url = ""
        self.stdout = ""
        self.stderr = ""
        self.process: subprocess.Popen[str] | None = None
        self._err: list[str] = []
        self._drain: threading.Thread | None = None

    def __enter__(self) -> DashboardProcess:
        root = str(Path(__file__).resolve().parents[2])
        env = {**self.env, "PYTHONPATH": os.pathsep.join(p for p in (root, self.env.get("PYTHONPATH")) if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "archai_aml.cli", "--log-level", self.log_level, "dashboard", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert self.process.stdout is not None and self.process.stderr is not None
        self._drain = threading.Thread(target=lambda: self._err.extend(self.process.stderr), daemon=True)  # type: ignore[union-attr,arg-type]
        self._drain.start()
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.start_timeout)
        first = line[0] if line else ""
        if "http://" not in first:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the dashboard did not start: {first!r} {self.stderr[-2000:]}")
        self.stdout = first
        self.url = first.split("archai-aml dashboard: ", 1)[1].split()[0]
        return self

    @property
    def base(self) -> str:
        """The address without its query (no token)."""
        return self.url.split("?", 1)[0]

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        rest = self.process.stdout.read() if self.process.stdout else ""
        self.stdout += rest
        if self._drain is not None:
            self._drain.join(timeout=5)
        self.stderr = "".join(self._err)
