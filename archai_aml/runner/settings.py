"""How a runner works (:class:`RunnerSettings`) and the table where runners write their heartbeats."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from archai_aml.config import ArchaiAmlConfig
from archai_aml.store.base import Entity, Store
from archai_aml.store.leases import utcnow

__all__ = ["RunnerSettings", "alive_runners", "runner_alive", "runners_store"]


def runners_store(store: Store) -> Store:
    """The table where runners write their heartbeats (``<status table>runners``)."""
    return store.with_table(f"{store.table_name}runners")


def alive_runners(store: Store, experiment: str, *, within: float) -> list[Entity]:
    """Runners of ``experiment`` whose heartbeat is more recent than ``within`` seconds."""
    now = utcnow()
    return [row for row in runners_store(store).query(experiment) if runner_alive(row, now, within=within)]


def runner_alive(row: Entity, now: datetime, *, within: float) -> bool:
    """Whether a heartbeat row (of :func:`runners_store`) says its runner is alive: it beat less than
    ``within`` seconds before ``now`` and did not say it stopped."""
    seen = row.get("last_seen")
    return (
        isinstance(seen, datetime)
        and (now - seen).total_seconds() <= within
        and row.get("state") != "stopped"
    )


@dataclass
class RunnerSettings:
    """How a runner works. ``lease_ttl`` and ``poll_interval`` are seconds; F1 sizes are image counts."""

    experiment: str
    device: str | None = None
    benchmark_only: bool = False
    max_benchmark_runs: int = 5
    subset: frozenset[str] | None = None
    no_quantization: bool = False
    no_device_work: bool = False
    working: Path = field(default_factory=lambda: Path(".archai_aml/runner"))
    lock_dir: Path | None = None
    lease_ttl: float = 60.0
    poll_interval: float = 10.0
    benchmark_iterations: int = 50
    calibration_images: int = 32
    f1_onnx_images: int = 10000
    f1_1k_images: int = 1000
    f1_10k_images: int = 10000
    dataset: str | None = None
    node: str | None = None
    seed: int | None = None
    #: longest wait between polls while the store does not answer (the backoff doubles from 0.5 s)
    outage_backoff_max: float = 30.0
    #: seconds between full scans of the open rows that rebuild the queue index (one runner of the fleet
    #: per period; see :mod:`archai_aml.runner.queue_reader`)
    queue_rescan: float = 300.0

    @classmethod
    def from_config(cls, config: ArchaiAmlConfig, **overrides: Any) -> RunnerSettings:
        """Settings from the ``target:``/``runner:`` sections of a configuration; an override that is None
        keeps the configured value (so command-line options that were not given can be passed as they are)."""
        tc, rc = config.target, config.runner
        values: dict[str, Any] = {
            "experiment": config.experiment_name,
            "device": tc.device,
            "max_benchmark_runs": tc.max_benchmark_runs,
            "working": rc.working,
            "lock_dir": rc.lock_dir,
            "lease_ttl": rc.lease_ttl_s,
            "poll_interval": rc.poll_interval_s,
            "benchmark_iterations": tc.benchmark_iterations,
            "calibration_images": tc.calibration_images,
            "f1_onnx_images": tc.f1_onnx_images,
            "f1_1k_images": tc.f1_1k_images,
            "f1_10k_images": tc.f1_10k_images,
            "dataset": tc.dataset,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
