"""archai-aml: Azure ML partial training and hardware benchmarking for Archai neural architecture search.

The public API, importable from the top level::

    from archai_aml import (
        AmlPartialTrainingEvaluator, RemoteAzureBenchmarkEvaluator, start_training_pipeline,
        load_config, open_store, LocalJobRunner, AzureMLJobRunner, get_target,
    )

Every name but the errors and ``__version__`` is imported on first use (PEP 562 module ``__getattr__``):
``import archai_aml`` loads neither torch, archai nor the Azure SDK. The Azure SDK (the ``azure`` extra) is
needed only where Azure is used: the Azure store backend, ``AzureMLJobRunner.from_config`` and building
Azure ML pipeline objects; without it those fail with :class:`MissingDependencyError` naming
``pip install 'archai-aml[azure]'``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from archai_aml._optional import MissingDependencyError
from archai_aml.errors import ArchaiAmlError

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    # the design's three names
    "AmlPartialTrainingEvaluator": "archai_aml.evaluators.aml_training",
    "RemoteAzureBenchmarkEvaluator": "archai_aml.evaluators.remote_benchmark",
    "start_training_pipeline": "archai_aml.pipelines.training",
    # configuration
    "ArchaiAmlConfig": "archai_aml.config",
    "StoreConfig": "archai_aml.config",
    "dump_config": "archai_aml.config",
    "load_config": "archai_aml.config",
    # the status store
    "Store": "archai_aml.store.base",
    "open_store": "archai_aml.store",
    # where training jobs run, and waiting for them
    "JobRunner": "archai_aml.pipelines.base",
    "LocalJobRunner": "archai_aml.pipelines.local",
    "AzureMLJobRunner": "archai_aml.pipelines.azureml",
    "CompletionMonitor": "archai_aml.pipelines.monitor",
    "build_training_pipeline": "archai_aml.pipelines.training",
    # targets and the runners that measure on them
    "Target": "archai_aml.targets.base",
    "available_targets": "archai_aml.targets",
    "get_target": "archai_aml.targets",
    "register_target": "archai_aml.targets",
    "Runner": "archai_aml.runner.worker",
    "RunnerSettings": "archai_aml.runner.worker",
    # inside a training job
    "TrainingJob": "archai_aml.training.job",
    # spending less per candidate (issue 23): predicted latency, successive halving that continues training
    "LatencyPredictor": "archai_aml.predict.predictor",
    "PredictedLatencyEvaluator": "archai_aml.predict.evaluator",
    "ContinuingSuccessiveHalving": "archai_aml.search.halving",
    # results
    "pareto_front": "archai_aml.plots",
    "plot_search": "archai_aml.plots",
}

#: every name but the errors and __version__ is one of _LAZY's (a test checks it)
__all__ = [
    "AmlPartialTrainingEvaluator",
    "ArchaiAmlConfig",
    "ArchaiAmlError",
    "AzureMLJobRunner",
    "CompletionMonitor",
    "ContinuingSuccessiveHalving",
    "JobRunner",
    "LatencyPredictor",
    "LocalJobRunner",
    "MissingDependencyError",
    "PredictedLatencyEvaluator",
    "RemoteAzureBenchmarkEvaluator",
    "Runner",
    "RunnerSettings",
    "Store",
    "StoreConfig",
    "Target",
    "TrainingJob",
    "__version__",
    "available_targets",
    "build_training_pipeline",
    "dump_config",
    "get_target",
    "load_config",
    "open_store",
    "pareto_front",
    "plot_search",
    "register_target",
    "start_training_pipeline",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archai_aml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names come from __getattr__
    from archai_aml.config import ArchaiAmlConfig, StoreConfig, dump_config, load_config
    from archai_aml.evaluators.aml_training import AmlPartialTrainingEvaluator
    from archai_aml.evaluators.remote_benchmark import RemoteAzureBenchmarkEvaluator
    from archai_aml.pipelines.azureml import AzureMLJobRunner
    from archai_aml.pipelines.base import JobRunner
    from archai_aml.pipelines.local import LocalJobRunner
    from archai_aml.pipelines.monitor import CompletionMonitor
    from archai_aml.pipelines.training import build_training_pipeline, start_training_pipeline
    from archai_aml.plots import pareto_front, plot_search
    from archai_aml.predict.evaluator import PredictedLatencyEvaluator
    from archai_aml.predict.predictor import LatencyPredictor
    from archai_aml.runner.worker import Runner, RunnerSettings
    from archai_aml.search.halving import ContinuingSuccessiveHalving
    from archai_aml.store import open_store
    from archai_aml.store.base import Store
    from archai_aml.targets import available_targets, get_target, register_target
    from archai_aml.targets.base import Target
    from archai_aml.training.job import TrainingJob
