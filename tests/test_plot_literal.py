"""Names from stored data that hold ``$...$`` (matplotlib's math text) are drawn as written: the F1 step's
PR-curve PNG and ``archai-aml plot`` (which exited 2 drawing nothing, on a ``ParseException``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from archai_aml.cli import main as cli_main
from archai_aml.config import StoreConfig
from archai_aml.plots import figure_iteration, from_store
from archai_aml.scoring import pr_curve, save_pr_curve_png
from archai_aml.store import open_store
from tests.plot_helpers import write_search
from tests.test_plot_search import valid_png

EXP = "ex$x^{$"  # an unbalanced math expression: matplotlib cannot parse it
PREFIX = "id_$a_"


def _rename_rows(store_path: Path) -> None:
    with open_store(StoreConfig(path=store_path)) as store:
        for partition in (EXP, f"{EXP}-latency"):
            for row in store.query(partition):
                values = {
                    k: v for k, v in row.items() if k not in ("partition", "name") and not k.startswith("_")
                }
                store.create(partition, PREFIX + row["name"][3:], values)
                store.delete(partition, row["name"])


def test_archai_aml_plot_draws_math_text_names_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(StoreConfig(path=tmp_path / "store")) as s:
        write_search(s, EXP)
    _rename_rows(tmp_path / "store")
    monkeypatch.setenv("ARCHAI_AML_STORE", str(tmp_path / "store"))
    assert cli_main(["plot", EXP, "--output", str(tmp_path / "plots")]) == 0
    written = [Path(p) for p in capsys.readouterr().out.split()]
    assert {p.name for p in written} >= {"search.gif", "pareto.gif", "full_training.png", "target_f1.png"}
    for png in (p for p in written if p.suffix == ".png"):
        valid_png(png)
    # the texts hold the names as written
    with open_store(StoreConfig(path=tmp_path / "store")) as s:
        fig, _ = figure_iteration(from_store(s, EXP), 3)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert any(EXP in t for t in texts) and any(t.startswith("$a_") for t in texts)


def test_the_f1_steps_pr_curve_takes_a_math_text_model_id(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (8, 8))
    curve = pr_curve(labels, rng.random((2, 8, 8)))
    png = save_pr_curve_png({"class $1": curve}, tmp_path / "pr.png", title=f"{PREFIX}$ f1_onnx")
    valid_png(png, min_colors=5)
