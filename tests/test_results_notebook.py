"""examples/face_segmentation/results.ipynb runs top to bottom in a real Jupyter kernel (nbclient) against
a small embedded store made here, and shows every plot: PNGs and both GIFs, full training and F1."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from archai_aml.config import StoreConfig
from archai_aml.store import open_store
from tests.plot_helpers import MODELS, write_search

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "face_segmentation" / "results.ipynb"


@pytest.mark.slow
def test_results_notebook_shows_every_plot_from_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(StoreConfig(path=tmp_path / "store")) as store:
        write_search(store, "nbexp")
    # the kernel inherits this environment (PYTHONPATH included: it imports this checkout's archai_aml)
    monkeypatch.setenv("ARCHAI_AML_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("ARCHAI_AML_EXPERIMENT", "nbexp")
    monkeypatch.setenv("ARCHAI_AML_PLOTS", str(tmp_path / "plots"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the notebook without outputs"
    )
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"{len(MODELS)} models in 3 iterations" in text
    assert "not drawn yet" not in text
    # the front's 4 fully trained models: too few to judge the rank agreement, and the notebook says so
    assert "val_iou vs final_val_iou: 4 model(s), cannot be judged" in text
    images = [o["data"] for o in outputs if o.output_type == "display_data"]
    pngs = [base64.b64decode(d["image/png"]) for d in images if "image/png" in d]
    gifs = [base64.b64decode(d["image/gif"]) for d in images if "image/gif" in d]
    assert len(pngs) == 3 and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)  # last iteration, full, F1
    assert len(gifs) == 2 and all(g[:6] == b"GIF89a" for g in gifs)
    assert sorted(p.name for p in (tmp_path / "plots" / "nbexp").iterdir()) == [
        "full_training.png", "iteration_1.png", "iteration_2.png", "iteration_3.png", "pareto.gif",
        "search.gif", "target_f1.png",
    ]  # fmt: skip
    tables = [
        o["data"]["text/html"]
        for o in outputs
        if o.output_type == "execute_result" and "text/html" in o["data"]
    ]
    assert len(tables) == 2 and "id_c2" in tables[1]  # the models, then the front
