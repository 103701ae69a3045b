"""docs/pipeline-steps.md's quickstart, run as a new user would: the commands of its first ``bash`` block,
taken verbatim from the Markdown, run one after the other from the root of a temporary copy of the repository
with no archai-aml or MLflow variable set (only ``PYTHONPATH``, standing for the install)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mlflow import MlflowClient

from archai_aml.steps.launch import absolute_tracking_uri, launch_environment

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "pipeline-steps.md"


def page_commands(text: str) -> list[str]:
    """The commands of the page's first ``bash`` block, continuation lines joined."""
    block = re.findall(r"```bash\n(.*?)```", text, flags=re.S)[0]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def copy_repo(target: Path) -> Path:
    """The files a fresh clone has (tracked and not ignored), copied to ``target``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_launch_environment_resolves_relative_defaults_at_the_launch_folder(tmp_path: Path) -> None:
    env = launch_environment({}, cwd=tmp_path)
    assert env["ARCHAI_AML_STORE"] == str(tmp_path / ".archai_aml" / "store")
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/.archai_aml/mlflow/mlflow.db"
    rel = launch_environment(
        {
            "ARCHAI_AML_STORE": "st",
            "MLFLOW_TRACKING_URI": "sqlite:///m/x.db",
            "ARCHAI_AML_DATASTORE_FOLDER": "d",
        },
        cwd=tmp_path,
    )
    assert (rel["ARCHAI_AML_STORE"], rel["ARCHAI_AML_DATASTORE_FOLDER"]) == (
        str(tmp_path / "st"),
        str(tmp_path / "d"),
    )
    assert rel["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/m/x.db"
    assert absolute_tracking_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"
    assert absolute_tracking_uri("runs", tmp_path) == (tmp_path / "runs").as_uri()


def test_the_pages_install_line_names_the_detection_extra() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert 'pip install "archai-aml[azure,detection]"' in text
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    extra = re.search(r"^detection = \[(.*)\]$", pyproject, flags=re.M)
    assert extra is not None and "mlflow" in extra.group(1) and "pycocotools" in extra.group(1)


def test_quickstart_runs_verbatim_from_a_fresh_copy_with_no_variable_set(tmp_path: Path) -> None:
    commands = page_commands(PAGE.read_text(encoding="utf-8"))
    assert len(commands) == 3 and commands[2].startswith("python examples/symbol_detection/pipeline.py")
    root = copy_repo(tmp_path / "clone")
    examples_before = tree(root / "examples")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ARCHAI_AML", "MLFLOW", "AZURE", "AML_", "INPUT_", "TRAIN"))
    }
    env["PYTHONPATH"] = str(root)  # stands for `pip install`: the copy's package, not the checkout's
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")  # `python` is this interpreter
    started = time.monotonic()
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=root, env=env, capture_output=True, text=True, timeout=600
        )
        logs = {p.name: p.read_text()[-2000:] for p in (root / ".archai_aml" / "jobs").glob("*/*.log")}
        assert done.returncode == 0, (command, done.stderr[-2000:], logs)
    wall = time.monotonic() - started
    assert tree(root / "examples") == examples_before  # nothing written into the source tree
    db = root / ".archai_aml" / "mlflow" / "mlflow.db"
    assert db.is_file() and (root / ".archai_aml" / "store" / "blobs").is_dir()
    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    (version,) = client.search_model_versions("name='symbol-detection'")
    assert float(version.tags["mean_average_precision"]) > 0.3
    assert int(client.get_model_version_by_alias("symbol-detection", "champion").version) == int(
        version.version
    )
    print(f"quickstart wall time from a fresh copy: {wall:.1f} s")
