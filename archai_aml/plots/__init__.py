"""Plots of a search: Pareto fronts, the search iteration by iteration (PNGs and GIFs), full-training and
on-target results, from a search's output folder or a live status table (either store backend).

    from archai_aml.plots import from_store, plot_search
    plot_search(from_store(store, "facesyn"), "plots/")     # iteration_<i>.png, search.gif, pareto.gif, ...

matplotlib is imported on the first drawing call, not by ``import archai_aml.plots``.
"""

from archai_aml.plots.data import F1_COLUMNS, SearchRows, from_output, from_records, from_store
from archai_aml.plots.iterations import animate_iterations, animate_pareto, figure_iteration, plot_iterations
from archai_aml.plots.pareto import numeric, pareto_front, plot_experiment, plot_pareto
from archai_aml.plots.report import plot_search
from archai_aml.plots.results import (
    figure_full_training,
    figure_target_f1,
    plot_full_training,
    plot_target_f1,
    spearman,
)

__all__ = [
    "F1_COLUMNS",
    "SearchRows",
    "animate_iterations",
    "animate_pareto",
    "figure_full_training",
    "figure_iteration",
    "figure_target_f1",
    "from_output",
    "from_records",
    "from_store",
    "numeric",
    "pareto_front",
    "plot_experiment",
    "plot_full_training",
    "plot_iterations",
    "plot_pareto",
    "plot_search",
    "plot_target_f1",
    "spearman",
]
