"""After the search: the Pareto front, its full training, F1 on the target, export to ONNX."""

from archai_aml.pareto.front import (
    ParetoModel,
    front_from_output,
    front_from_store,
    front_of_rows,
    load_front,
)
from archai_aml.plots.pareto import pareto_front  # the one non-dominated set, of points

__all__ = [
    "ParetoModel",
    "front_from_output",
    "front_from_store",
    "front_of_rows",
    "load_front",
    "pareto_front",
]
