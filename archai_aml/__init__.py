"""archai-aml: Azure ML partial training and hardware benchmarking for Archai neural architecture search."""

from __future__ import annotations

__version__ = "0.1.0"
