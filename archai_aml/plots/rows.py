"""Rows of several store answers joined by name: shared by :mod:`~archai_aml.plots.data` and
:mod:`~archai_aml.plots.pareto` (which :mod:`~archai_aml.plots.data` imports)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from archai_aml.store.base import Entity

__all__ = ["join_rows"]


def join_rows(answers: Iterable[Iterable[Entity]]) -> dict[str, dict[str, Any]]:
    """The rows of several query answers joined by name (the first answer's columns win), in first-seen
    order: the training rows of an experiment with the latency rows of ``<experiment>-latency``."""
    joined: dict[str, dict[str, Any]] = {}
    for answer in answers:
        for row in answer:
            merged = joined.setdefault(str(row["name"]), {})
            for key, value in row.items():
                merged.setdefault(key, value)
    return joined
