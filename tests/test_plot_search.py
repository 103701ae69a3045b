"""The search's plots from a real store (both backends) and from output folders: rows and iterations, the
front after each iteration, fading, the GIFs' frame counts, full-training and F1 plots, labels inside the
figure, and ``archai-aml plot``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from archai_aml.cli import main as cli_main
from archai_aml.plots import (
    SearchRows,
    figure_full_training,
    figure_iteration,
    figure_target_f1,
    from_output,
    from_records,
    from_store,
    plot_search,
    spearman,
)
from archai_aml.store import Store
from tests.plot_helpers import FINAL, FRONTS, MODELS, write_search

EXP = "plotexp"


def valid_png(path: Path, min_colors: int = 30) -> None:
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.verify()
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > min_colors, path  # a drawing, not a blank page


def gif_frames(path: Path) -> int:
    with Image.open(path) as img:
        assert img.format == "GIF" and img.is_animated in (True, False)
        frames = img.n_frames
        for i in range(frames):  # every frame decodes
            img.seek(i)
            img.convert("RGB")
    return int(frames)


def names(rows: list[dict[str, object]]) -> list[str]:
    return [str(r["name"]) for r in rows]


def test_from_store_joins_partitions_and_fronts_per_iteration(store: Store) -> None:
    write_search(store, EXP)
    data = from_store(store, EXP)
    assert data.iterations == [1, 2, 3] and data.x == "mean" and data.y == "val_iou"
    assert sorted(names(data.rows)) == sorted(MODELS)  # no orphan latency row, no row still training
    for it, front in FRONTS.items():
        assert names(data.front(it)) == front
    by_name = {r["name"]: r for r in data.rows}
    assert by_name["id_b1"]["iteration"] == 2 and by_name["id_b1"]["mean"] == 1.8
    assert sorted(names(data.with_full_training())) == sorted(FINAL)
    assert sorted(names(data.with_target())) == sorted(FINAL)


def test_iterations_from_training_batches_when_rows_lack_them(store: Store) -> None:
    write_search(store, EXP, iterations=False)
    data = from_store(store, EXP)
    assert {r["name"]: r["iteration"] for r in data.rows} == {n: m[0] for n, m in MODELS.items()}


def test_plot_search_from_the_store_writes_every_image(store: Store, tmp_path: Path) -> None:
    write_search(store, EXP)
    written = plot_search(from_store(store, EXP), tmp_path / "plots")
    expected = ["iteration_1.png", "iteration_2.png", "iteration_3.png", "search.gif", "pareto.gif"]
    assert [p.name for p in written] == [*expected, "full_training.png", "target_f1.png"]
    for p in written:
        if p.suffix == ".png":
            valid_png(p)
        else:
            assert gif_frames(p) == 3
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(
        p.name for p in written
    )  # no temp


def test_search_without_after_search_results_draws_no_results_plots(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (folder / "search").mkdir(parents=True)
    for last in (1, 2):  # Archai writes search_state_<i>.csv with every model so far after each iteration
        with open(folder / "search" / f"search_state_{last}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, ["archid", "latency_ms", "val_iou", "iteration_num"])
            w.writeheader()
            for name, (it, iou, mean, _) in MODELS.items():
                if it <= last:
                    w.writerow(
                        {"archid": name[3:], "latency_ms": mean, "val_iou": iou, "iteration_num": it - 1}
                    )
    data = from_output(folder)
    assert data.iterations == [1, 2] and names(data.front(2)) == [n[3:] for n in FRONTS[2]]
    written = plot_search(folder, tmp_path / "plots")
    assert [p.name for p in written] == ["iteration_1.png", "iteration_2.png", "search.gif", "pareto.gif"]
    assert gif_frames(tmp_path / "plots" / "pareto.gif") == 2
    # the finished search's results.csv is read when the search folder is gone
    rows = [{"archid": "a", "iteration": 1, "val_iou": 0.5, "latency_ms": 1.0}]
    (tmp_path / "r").mkdir()
    with open(tmp_path / "r" / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert names(from_output(tmp_path / "r").front()) == ["a"]
    with pytest.raises(FileNotFoundError, match="search output"):
        from_output(tmp_path / "nothing")


def alphas(fig: Figure, label_part: str) -> list[float]:
    ax = fig.axes[0]
    for coll in ax.collections:
        if label_part in str(coll.get_label()):
            return [float(c[3]) for c in coll.get_facecolors()]
    raise AssertionError(f"no collection labeled {label_part!r}")


def test_earlier_models_fade_and_the_front_is_highlighted() -> None:
    data = from_records(
        [{"name": n, "iteration": m[0], "latency_ms": m[2], "val_iou": m[1]} for n, m in MODELS.items()]
    )
    fig, front = figure_iteration(data, 3)
    assert names(front) == FRONTS[3]
    earlier = alphas(fig, "earlier")
    by_iteration = dict(zip([n for n, m in MODELS.items() if m[0] < 3], earlier, strict=True))
    assert by_iteration["id_a1"] < by_iteration["id_b1"] < 1.0  # older is fainter
    assert alphas(fig, "iteration 3")[0] == 1.0
    assert "Pareto front: 4" in [t.get_text() for t in fig.legends[0].get_texts()]
    assert fig.axes[0].get_xscale() == "linear"  # latencies 0.8 to 5 ms


def test_latencies_over_orders_of_magnitude_get_a_log_axis() -> None:
    rows = [
        {"name": f"m{i}", "iteration": 1, "latency_ms": lat, "val_iou": 0.1 * i}
        for i, lat in enumerate([0.2, 1, 30])
    ]
    fig, front = figure_iteration(from_records(rows), 1)
    assert fig.axes[0].get_xscale() == "log" and names(front) == ["m0", "m1", "m2"]
    assert labels_inside(fig) > 5


def labels_inside(fig: Figure) -> int:
    """Every visible text of the figure lies inside it; returns how many texts were checked."""
    canvas = FigureCanvasAgg(fig)  # attaches an Agg canvas to the figure
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    undrawn = set()  # labels of ticks outside the axis limits: matplotlib keeps them but does not draw them
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
                    undrawn.update({id(tick.label1), id(tick.label2)})
    checked = 0
    for text in fig.findobj(Text):
        if id(text) in undrawn or not text.get_visible() or not text.get_text().strip():
            continue
        ext = text.get_window_extent(renderer)
        assert ext.x0 >= box.x0 - 0.5 and ext.x1 <= box.x1 + 0.5, text.get_text()
        assert ext.y0 >= box.y0 - 0.5 and ext.y1 <= box.y1 + 0.5, text.get_text()
        checked += 1
    return checked


def test_labels_never_leave_the_figure(store: Store) -> None:
    write_search(store, EXP)
    data = from_store(store, EXP, title="a search with a rather long name to push the title to the edge")
    for it in data.iterations:
        assert labels_inside(figure_iteration(data, it)[0]) > 8
    fig, rows = figure_full_training(data)
    assert sorted(names(rows)) == sorted(FINAL) and labels_inside(fig) > 8
    fig, front = figure_target_f1(data)
    assert labels_inside(fig) > 8


def test_target_f1_grays_the_models_that_left_the_front(store: Store) -> None:
    write_search(store, EXP)
    data = from_store(store, EXP)
    fig, front = figure_target_f1(data)
    # F1 on the target: c1 0.70 @0.8, b1 0.80 @1.8, b3 0.78 @3.5 (dominated by b1), c2 0.86 @5.0
    assert names(front) == ["id_c1", "id_b1", "id_c2"]
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["on the front (3)", "left the front (1)"]
    gray = [c for c in ax.containers if "left" in str(c.get_label())][0]
    assert tuple(gray.lines[0].get_color()) == ("0.6",) or gray.lines[0].get_color() == "0.6"
    # error bars: stdev is a percentage of the mean
    b3 = MODELS["id_b3"]
    segs = gray.lines[2][0].get_segments()
    (x0, _), (x1, _) = segs[0]
    assert x1 - x0 == pytest.approx(2 * b3[2] * b3[3] / 100)


def test_full_training_and_rank_correlation(store: Store) -> None:
    write_search(store, EXP)
    fig, rows = figure_full_training(from_store(store, EXP))
    title = " ".join(fig.axes[0].get_title().split())  # wrapped to fit the figure
    # partial 0.32 0.45 0.50 0.55 -> full 0.60 0.75 0.70 0.85: one swapped pair
    assert "4 models" in title and "rank correlation 0.80" in title
    assert "Kendall tau: cannot be judged on 4 models" in title  # 5 are needed
    assert "30 epochs" in " ".join(fig.axes[0].get_ylabel().split())
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)
    assert spearman([1.0], [2.0]) is None and spearman([1, 1], [1, 2]) is None
    with pytest.raises(ValueError, match="final_val_iou"):
        figure_full_training(SearchRows([{"name": "a", "iteration": 1, "val_iou": 0.3}]))


def test_cli_plot_draws_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from archai_aml.config import StoreConfig
    from archai_aml.store import open_store

    with open_store(StoreConfig(path=tmp_path / "store")) as s:
        write_search(s, EXP)
    monkeypatch.setenv("ARCHAI_AML_STORE", str(tmp_path / "store"))
    assert cli_main(["plot", EXP, "--output", str(tmp_path / "plots")]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed][-2:] == ["full_training.png", "target_f1.png"]
    assert gif_frames(tmp_path / "plots" / "search.gif") == 3
    assert cli_main(["plot", "nothing-here", "--output", str(tmp_path / "none")]) == 1
    assert "nothing drawn" in capsys.readouterr().err
