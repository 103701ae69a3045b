"""The search example end to end: examples/face_segmentation/search.py as a subprocess with a tiny
configuration (real training by train.py under the LocalJobRunner, real latency runs by an in-process
runner on the onnxruntime CPU target, the embedded store under the output folder). A second run of the
same search trains and measures nothing again: every result comes back from the store."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from archai_aml.config import StoreConfig
from archai_aml.store import open_store
from archai_aml.testing.azurite import Azurite

ROOT = Path(__file__).resolve().parents[1]
SEARCH = ROOT / "examples" / "face_segmentation" / "search.py"

CONFIG = """
experiment_name: tiny
store:
  path: ${ARCHAI_AML_OUTPUT}/store
training:
  code_dir: ${ARCHAI_AML_EXAMPLE_DIR}
  command: >-
    python train.py --data ${{inputs.data}} --output ${{outputs.output}}
    --model-id {model_id} --experiment {experiment} --epochs {epochs}
    --image-size 32 --train-length 16 --val-length 8 --batch-size 8 --threads 1 --no-mlflow --no-progress
  data: ${ARCHAI_AML_OUTPUT}/data
  epochs: 0.5
  max_parallel: 2
  gpus: []
  environment_variables: {OMP_NUM_THREADS: "1"}
  timeout_seconds: 300
  poll_interval_max_s: 1.0
  local_root: ${ARCHAI_AML_OUTPUT}/jobs
target:
  input_shape: [1, 3, 32, 32]
  max_benchmark_runs: 1
  benchmark_iterations: 5
  calibration_images: 2
runner:
  poll_interval_s: 0.2
  lease_ttl_s: 30
  working: ${ARCHAI_AML_OUTPUT}/runner
  lock_dir: ${ARCHAI_AML_OUTPUT}/locks
search:
  iterations: 3
  init_num_models: 2
  max_unseen_population: 2
  num_random_mix: 1
  num_crossovers: 0
  seed: 5
  space: {depths: [2], channels: [8, 16]}
  local_runners: 1
  latency_poll_interval_s: 0.2
  latency_max_retries: 300
"""


def run_search(config: Path, output: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHAI_AML_")}
    env.update(extra_env)
    proc = subprocess.run(
        [sys.executable, str(SEARCH), "--config", str(config), "--output", str(output), "--iterations", "1",
         "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def read_results(output: Path) -> list[dict[str, str]]:
    with open(output / "results.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_search_example_writes_results_and_reuses_the_store(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "out"

    first = run_search(config, out)
    rows = read_results(out)
    assert len(rows) == 2  # --iterations 1 overrides the configuration's 3
    assert {r["iteration"] for r in rows} == {"1"}
    for r in rows:
        assert 0.0 <= float(r["val_iou"]) <= 1.0, r
        assert float(r["latency_ms"]) > 0.0 and int(r["params"]) > 0, r
    # the numbers are the ones the store holds: training rows and latency rows of the same model
    with open_store(StoreConfig(path=out / "store")) as store:
        for r in rows:
            trained = store.get("tiny", "id_" + r["archid"])
            measured = store.get("tiny-latency", "id_" + r["archid"])
            assert trained is not None and trained["status"] == "complete"
            assert measured is not None and measured["status"] == "complete" and measured["benchmark_only"]
            assert float(r["val_iou"]) == pytest.approx(trained["val_iou"])
            assert float(r["latency_ms"]) == pytest.approx(measured["mean"])
    pareto = json.loads((out / "pareto.json").read_text())["models"]
    assert pareto and {m["archid"] for m in pareto} == {r["archid"] for r in rows if r["is_pareto"] == "True"}
    for m in pareto:  # the configuration's narrowed space: depth 2, channels 8/16
        down = m["arch_config"]["down"]
        assert down["_repeat_times"] == 2
        assert {b["channels"] for b in down["_configs"].values()} <= {8, 16}
    png = (out / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    summary = json.loads((out / "run.json").read_text())
    assert len(summary["training_pipelines"]) == 1 and summary["runner_items"] >= 2
    pipelines = sorted(p.name for p in (out / "jobs").iterdir() if p.name.startswith("train_"))
    assert len(pipelines) == 1
    assert "Pareto front" in first.stderr and "stopped 1 runner thread" in first.stderr

    # the same search again: every model is reused, no training job and no latency run
    run_search(config, out)
    again = json.loads((out / "run.json").read_text())
    assert again["training_pipelines"] == [] and again["runner_items"] == 0
    assert sorted(p.name for p in (out / "jobs").iterdir() if p.name.startswith("train_")) == pipelines
    assert read_results(out) == rows


@pytest.mark.slow
@pytest.mark.azure
def test_search_example_on_the_azure_store(tmp_path: Path, azurite: Azurite) -> None:
    """``store: backend: azure`` (Azurite, connection string from ``${AZ_CONN}``): the same search, rows and
    blobs in the storage account, jobs reaching it through the runner's environment; the key appears in no
    file of the output and in no log line, and a second run reuses everything."""
    table = "t" + uuid.uuid4().hex[:12]
    azure_store = f"store:\n  backend: azure\n  connection_string: ${{AZ_CONN}}\n  table_name: {table}\n"
    config = tmp_path / "tiny-azure.yaml"
    config.write_text(
        CONFIG.replace("store:\n  path: ${ARCHAI_AML_OUTPUT}/store\n", azure_store), encoding="utf-8"
    )
    assert "backend: azure" in config.read_text()
    out = tmp_path / "out"
    first = run_search(config, out, AZ_CONN=azurite.connection_string)
    assert "store azure" in first.stderr
    rows = read_results(out)
    assert len(rows) == 2 and all(float(r["latency_ms"]) > 0 and r["val_iou"] != "" for r in rows)
    assert not (out / "store").exists()
    with open_store(azurite.store_config(table_name=table)) as store:
        for r in rows:
            row = store.get("tiny", "id_" + r["archid"])
            assert row is not None and float(r["val_iou"]) == pytest.approx(row["val_iou"])
    second = run_search(config, out, AZ_CONN=azurite.connection_string)
    assert json.loads((out / "run.json").read_text())["training_pipelines"] == []
    assert read_results(out) == rows
    key = azurite.account_key
    for path in out.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    assert key not in first.stdout + first.stderr + second.stdout + second.stderr


def image_frames(path: Path) -> tuple[str, int]:
    """(format, frame count) of a valid image; every frame decodes."""
    from PIL import Image

    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        frames = getattr(img, "n_frames", 1)
        for i in range(frames):
            img.seek(i)
            assert img.convert("RGB").size == img.size
        return str(img.format), int(frames)


@pytest.mark.slow
def test_search_writes_plots_each_iteration_and_archai_aml_plot_redraws_them(tmp_path: Path) -> None:
    """A reduced search of 2 iterations: plots/ holds one PNG per iteration and two GIFs of 2 frames each;
    the iteration is recorded in the store, so ``archai-aml plot`` draws the same set from the store."""
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHAI_AML_")}
    proc = subprocess.run(
        [sys.executable, str(SEARCH), "--config", str(config), "--output", str(out), "--iterations", "2",
         "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    plots = out / "plots"
    assert sorted(p.name for p in plots.iterdir()) == [
        "iteration_1.png", "iteration_2.png", "pareto.gif", "search.gif",
    ]  # fmt: skip
    assert image_frames(plots / "iteration_1.png") == ("PNG", 1)
    assert image_frames(plots / "iteration_2.png") == ("PNG", 1)
    assert image_frames(plots / "search.gif") == ("GIF", 2)
    assert image_frames(plots / "pareto.gif") == ("GIF", 2)
    assert "iteration 1: 3 plots" in proc.stderr and "iteration 2: 3 plots" in proc.stderr

    rows = read_results(out)
    with open_store(StoreConfig(path=out / "store")) as store:
        for r in rows:
            row = store.get("tiny", "id_" + r["archid"])
            assert row is not None and row["iteration"] == int(r["iteration"])

    drawn = tmp_path / "drawn"
    cli = subprocess.run(
        [sys.executable, "-m", "archai_aml.cli", "plot", "tiny", "--output", str(drawn)],
        cwd=ROOT, env={**env, "ARCHAI_AML_STORE": str(out / "store")}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert sorted(p.name for p in drawn.iterdir()) == sorted(p.name for p in plots.iterdir())
    assert image_frames(drawn / "search.gif") == ("GIF", 2)
