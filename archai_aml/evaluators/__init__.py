"""Archai evaluators backed by archai-aml: partial training in pipelines, remote benchmarking."""

from archai_aml.evaluators.aml_training import AmlPartialTrainingEvaluator
from archai_aml.evaluators.remote_benchmark import RemoteAzureBenchmarkEvaluator

__all__ = ["AmlPartialTrainingEvaluator", "RemoteAzureBenchmarkEvaluator"]
