"""examples/custom_target: a user's target in a package of its own, pip-installed into this environment and
found through its entry point by a runner started from the command line, as docs/architecture.md shows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from archai_aml.store import open_store
from archai_aml.store.embedded.settings import EmbeddedStoreConfig
from tests.runner_models import add_rows

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom_target"
DIST = "archai-aml-fixed-threads-target"
SIZE = 16


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The example installed into the running environment (from a copy: the build leaves files behind),
    uninstalled afterwards."""
    source = tmp_path_factory.mktemp("custom_target") / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    try:
        yield
    finally:
        subprocess.run([*pip, "uninstall", "-y", DIST], capture_output=True, text=True, timeout=120)


def _config(tmp_path: Path, target: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""experiment_name: custom
store: {{backend: embedded, path: {tmp_path / "store"}}}
target:
{target}
  input_shape: [1, 3, {SIZE}, {SIZE}]
  max_benchmark_runs: 1
  benchmark_iterations: 3
  calibration_images: 4
  f1_onnx_images: 4
  f1_1k_images: 4
  f1_10k_images: 4
runner: {{lease_ttl_s: 30, poll_interval_s: 0.1, working: {tmp_path / "work"}, lock_dir: {tmp_path / "lock"}}}
""",
        encoding="utf-8",
    )
    return path


def _runner(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("archai-aml")
    cmd = [str(cli)] if cli.is_file() else [sys.executable, "-m", "archai_aml.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*cmd, "--config", str(config), "runner", "--once", *args],
        env=env, cwd=config.parent, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _completed(tmp_path: Path, name: str) -> dict[str, object]:
    with open_store(EmbeddedStoreConfig(path=tmp_path / "store")) as store:
        row = store.get("custom", name)
    assert row is not None and row["status"] == "complete" and not row.get("error"), row
    for column in ("f1_onnx", "f1_1k", "f1_1k_f", "f1_10k"):
        assert 0.0 <= float(row[column]) <= 1.0, (column, row[column])
    assert float(row["mean"]) > 0 and int(row["macs"]) > 0 and int(row["params"]) > 0
    return dict(row)


def test_a_config_naming_the_installed_target_completes_a_row(installed: None, tmp_path: Path) -> None:
    config = _config(tmp_path, "  name: ort-fixed-threads\n  threads: 2")
    with open_store(EmbeddedStoreConfig(path=tmp_path / "store")) as store:
        add_rows(store, "custom", 1, size=SIZE)
    done = _runner(config)
    assert done.returncode == 0, done.stderr[-3000:]
    row = _completed(tmp_path, "id_000")
    sources = json.loads(str(row["sources"]))
    assert sources["mean"].endswith("CPU, 2 threads (ort-fixed-threads)")  # its own setting reached it
    assert sources["f1_onnx"].startswith("onnxruntime")  # f1_onnx: the cpu target, through the registry


def test_runner_target_names_the_installed_target(installed: None, tmp_path: Path) -> None:
    config = _config(tmp_path, "  name: cpu")  # the configuration names another target
    with open_store(EmbeddedStoreConfig(path=tmp_path / "store")) as store:
        add_rows(store, "custom", 1, size=SIZE)
    bad = _runner(config, "--target", "ort-fixed-threads", "--target-option", "threads=0")
    assert bad.returncode != 0 and "threads" in bad.stderr and "ort-fixed-threads" in bad.stderr, bad.stderr
    done = _runner(config, "--target", "ort-fixed-threads", "--target-option", "threads=3")
    assert done.returncode == 0, done.stderr[-3000:]
    sources = json.loads(str(_completed(tmp_path, "id_000")["sources"]))
    assert sources["benchmark" if "benchmark" in sources else "mean"].endswith(
        "CPU, 3 threads (ort-fixed-threads)"
    )


def test_the_example_target_is_short_and_registered_by_entry_point() -> None:
    target = (EXAMPLE / "fixed_threads_target" / "target.py").read_text(encoding="utf-8")
    assert len(target.splitlines()) <= 65
    pyproject = (EXAMPLE / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.entry-points."archai_aml.targets"]' in pyproject
    assert 'ort-fixed-threads = "fixed_threads_target.settings:FixedThreadsTargetConfig"' in pyproject


def test_architecture_extending_shows_the_example_as_it_is() -> None:
    import re

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Extending", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(toml|python)\n(.*?)```", section, flags=re.S)
    assert [kind for kind, _ in blocks] == ["toml", "python"]
    assert blocks[0][1] in (EXAMPLE / "pyproject.toml").read_text(encoding="utf-8")
    assert blocks[1][1] in (EXAMPLE / "fixed_threads_target" / "settings.py").read_text(encoding="utf-8")
