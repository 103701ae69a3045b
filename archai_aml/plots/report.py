"""Every plot of a search at once, from whatever the search has produced so far."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from archai_aml.plots.data import SearchRows, from_output
from archai_aml.plots.iterations import animate_iterations, animate_pareto, plot_iterations
from archai_aml.plots.results import plot_full_training, plot_target_f1

__all__ = ["plot_search"]

log = logging.getLogger(__name__)


def plot_search(
    source: SearchRows | str | Path, folder: str | Path, *, iterations: Iterable[int] | None = None
) -> list[Path]:
    """Draw into ``folder`` what ``source`` (rows, or a search's output folder) allows:

    - ``iteration_<i>.png`` for each of ``iterations`` (default: every iteration);
    - ``search.gif`` (every iteration) and ``pareto.gif`` (the Pareto models only);
    - ``full_training.png`` when some models carry the full-training metric (``final_val_iou``);
    - ``target_f1.png`` when some models carry F1 on the target.

    Returns the paths written. A search folder is watched while it runs: each file appears whole.
    """
    data = source if isinstance(source, SearchRows) else from_output(source)
    out = Path(folder)
    if not data.plottable():
        log.info("plot_search: no model of %s has %s and %s yet: nothing drawn", data.title, data.x, data.y)
        return []
    written = plot_iterations(data, out, iterations)
    written.append(animate_iterations(data, out / "search.gif"))
    written.append(animate_pareto(data, out / "pareto.gif"))
    if data.with_full_training():
        written.append(plot_full_training(data, out / "full_training.png"))
    if data.with_target():
        try:
            written.append(plot_target_f1(data, out / "target_f1.png"))
        except ValueError as exc:  # F1 without latency: nothing to put on the x axis
            log.info("plot_search: no target plot: %s", exc)
    log.info("plot_search: wrote %d files to %s", len(written), out)
    return written
