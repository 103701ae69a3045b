"""After the search: the Pareto front, its full training, F1 on the target, export to ONNX."""

from archai_aml.pareto.front import ParetoModel, front_from_output, front_from_store, load_front, pareto_front

__all__ = [
    "ParetoModel",
    "front_from_output",
    "front_from_store",
    "load_front",
    "pareto_front",
]
