"""The training side: the helper that training scripts use inside their jobs."""

from __future__ import annotations

from archai_aml.training.job import TrainingJob, error_text

__all__ = ["TrainingJob", "error_text"]
