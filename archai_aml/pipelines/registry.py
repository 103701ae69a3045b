"""Job runners by name: ``job_runner: {name: ...}`` in the configuration, registered like targets and
stores (:mod:`archai_aml.plugins`: the ``archai_aml.job_runners`` entry points, or
:func:`register_job_runner`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archai_aml.plugins import JOB_RUNNERS

if TYPE_CHECKING:
    from archai_aml.config import ArchaiAmlConfig, JobRunnerConfig, StoreConfig
    from archai_aml.pipelines.base import JobRunner

__all__ = ["available_job_runners", "get_job_runner", "register_job_runner"]


def register_job_runner(
    name: str,
    factory: str | Callable[..., Any] | None = None,
    *,
    settings: type[JobRunnerConfig] | None = None,
) -> None:
    """Register a job runner under ``name``: its ``factory`` (called with ``config=`` the whole
    configuration and ``store_config=`` the store the jobs reach, unless ``settings`` overrides
    :meth:`~archai_aml.config.JobRunnerConfig.factory_kwargs`) and/or its ``settings`` model."""
    JOB_RUNNERS.register(name, factory, settings=settings)


def available_job_runners() -> list[str]:
    return JOB_RUNNERS.names()


def get_job_runner(config: ArchaiAmlConfig, store_config: StoreConfig | None = None) -> JobRunner:
    """The job runner ``config.job_runner`` names, for jobs that reach ``store_config`` (default
    ``config.store``)."""
    runner: JobRunner = config.job_runner.create(config=config, store_config=store_config or config.store)
    return runner
