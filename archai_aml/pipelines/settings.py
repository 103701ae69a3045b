"""Settings of archai-aml's two job runners, the registry's entry points for them (light: importing this
needs neither azure-ai-ml nor a subprocess)."""

from __future__ import annotations

from typing import Any, Literal

from archai_aml.config import JobRunnerConfig
from archai_aml.errors import ConfigError

__all__ = ["AzureMLJobRunnerConfig", "LocalJobRunnerConfig"]


class LocalJobRunnerConfig(JobRunnerConfig):
    """``local``: each command node a subprocess on this machine
    (:class:`archai_aml.pipelines.local.LocalJobRunner`; parallelism from ``training:``), the default
    without an ``aml:`` section."""

    factory = "archai_aml.pipelines.local:LocalJobRunner.from_config"

    name: Literal["local"] = "local"


class AzureMLJobRunnerConfig(JobRunnerConfig):
    """``azureml``: an ``MLClient`` on the workspace of the ``aml:`` section
    (:class:`archai_aml.pipelines.azureml.AzureMLJobRunner`, the ``azure`` extra), the default with one."""

    factory = "archai_aml.pipelines.azureml:AzureMLJobRunner.from_config"
    extra = "azure"

    name: Literal["azureml"] = "azureml"

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        aml = context["config"].aml
        if aml is None:
            raise ConfigError("job_runner 'azureml' needs the aml: section (the workspace to run on)")
        return {"aml": aml}
