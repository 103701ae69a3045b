"""Archai evaluators backed by archai-aml: partial training in pipelines, remote benchmarking."""

from archai_aml.evaluators.aml_training import AmlPartialTrainingEvaluator

__all__ = ["AmlPartialTrainingEvaluator"]
