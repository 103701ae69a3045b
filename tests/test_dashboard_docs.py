"""Every command of docs/dashboard.md, run verbatim (bash, in a folder holding a demo store at
``demo_output/store``): a server is read through the address it prints (with its token when it printed one)
and stopped with Ctrl-C; a block whose next lines are ``# `` comments is a refusal, and they are its stderr."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from archai_aml.config import StoreConfig
from archai_aml.store import open_store
from archai_aml.testing.dashboard import seed_experiment

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "dashboard.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```bash\n(.*?)```", DOC, flags=re.S)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHAI_AML_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the archai-aml script
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    with open_store(StoreConfig(path=folder / "demo_output" / "store")) as store:
        seed_experiment(store, "demo", 4)
    return folder


def test_the_page_shows_commands() -> None:
    assert len(BLOCKS) == 3 and all("archai-aml dashboard" in b for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_command_of_the_page_runs(block: str, demo_folder: Path) -> None:
    lines = block.strip().splitlines()
    command, expected = lines[0], [line[2:] for line in lines[1:] if line.startswith("# ")]
    if expected:  # a refusal: its message, exit status 2, nothing served
        done = subprocess.run(
            ["bash", "-c", command], cwd=demo_folder, env=_env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2 and done.stderr.strip() == "\n".join(expected), done.stderr
        return
    process = subprocess.Popen(
        ["bash", "-c", command], cwd=demo_folder, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(60)
        assert first and "archai-aml dashboard: http://" in first[0], first
        url = first[0].split(": ", 1)[1].split()[0].replace("//0.0.0.0:", "//127.0.0.1:")
        with httpx.Client(timeout=20, follow_redirects=True) as client:
            page = client.get(url)
            assert page.status_code == 200 and "/static/dashboard.js" in page.text
            state = client.get(url.split("?")[0] + "api/state", params={"experiment": "demo"})
            assert state.status_code == 200 and state.json()["data"]["experiment"] == "demo"
            assert len(state.json()["data"]["table"]["rows"]) == 4
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
