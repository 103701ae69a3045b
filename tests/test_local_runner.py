"""LocalJobRunner: real subprocesses from a real azure-ai-ml pipeline job."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml import Input, Output, command, dsl

from archai_aml.errors import JobError
from archai_aml.pipelines import CANCELED, COMPLETED, FAILED, LocalJobRunner


def pipeline(tmp_path: Path, commands: dict[str, str], *, name: str, continue_on_failure: bool = True) -> Any:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)

    @dsl.pipeline(name=name)  # type: ignore[call-overload]
    def p(data):  # type: ignore[no-untyped-def]
        for node_name, text in commands.items():
            c = command(
                name=node_name,
                inputs={"data": Input(type="uri_folder", mode="download")},
                outputs={
                    "out": Output(type="uri_folder", path=f"azureml://datastores/models/paths/e/{node_name}")
                },
                code=str(tmp_path),
                command=text,
                environment_variables={"NODE_VAR": node_name},
            )
            c(data=data).name = node_name

    job = p(data=Input(type="uri_folder", path=str(data)))
    job.name = name
    job.settings.continue_on_step_failure = continue_on_failure
    return job


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that never comes in a container counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def test_runs_nodes_with_bindings_env_and_logs(tmp_path: Path) -> None:
    runner = LocalJobRunner(tmp_path / "root", gpus=[], env={"RUNNER_SECRET": "s3"})
    cmds = {
        "ok": 'echo "$NODE_VAR $RUNNER_SECRET $AZUREML_RUN_ID $AZUREML_ROOT_RUN_ID" > ${{outputs.out}}/o.txt; '
        "ls ${{inputs.data}}; echo logged",
        "bad": "echo failing; exit 7",
    }
    job = runner.submit(pipeline(tmp_path, cmds, name="p1"), experiment_name="e")
    assert job.name == "p1"
    assert runner.wait("p1", timeout=30) == FAILED  # a node failed, after every node ended
    assert runner.node_statuses("p1") == {"ok": COMPLETED, "bad": FAILED}
    out = tmp_path / "root" / "datastores" / "models" / "e" / "ok" / "o.txt"
    assert out.read_text().split() == ["ok", "s3", "p1_ok", "p1"]
    assert "logged" in runner.logs("p1", "ok") and (tmp_path / "root" / "p1" / "bad.log").exists()
    assert "failing" in runner.logs("p1", "bad")
    rec = {r.name: r for r in runner.records("p1")}
    assert rec["bad"].returncode == 7 and rec["ok"].returncode == 0


def test_parallelism_is_bounded(tmp_path: Path) -> None:
    runner = LocalJobRunner(tmp_path / "root", gpus=[], max_parallel=2)
    job = runner.submit(pipeline(tmp_path, {f"n{i}": "sleep 0.4" for i in range(5)}, name="p2"))
    assert runner.wait(job.name, timeout=30) == COMPLETED
    spans = [(r.started, r.ended) for r in runner.records("p2")]
    assert all(s is not None and e is not None for s, e in spans)
    assert max_overlap(spans) == 2  # type: ignore[arg-type]


def test_gpu_slots_pin_jobs(tmp_path: Path) -> None:
    runner = LocalJobRunner(tmp_path / "root", gpus=[0, 1], jobs_per_gpu=2)
    assert runner.slots == 4
    job = runner.submit(
        pipeline(
            tmp_path, {f"n{i}": "echo gpu=$CUDA_VISIBLE_DEVICES; sleep 0.4" for i in range(6)}, name="p3"
        )
    )
    assert runner.wait(job.name, timeout=30) == COMPLETED
    records = runner.records("p3")
    for r in records:
        assert f"gpu={r.gpu}" in runner.logs("p3", r.name)
    for gpu in (0, 1):
        spans = [(r.started, r.ended) for r in records if r.gpu == gpu]
        assert 1 <= max_overlap(spans) <= 2  # type: ignore[arg-type]
    assert max_overlap([(r.started, r.ended) for r in records]) > 2  # type: ignore[misc]


def test_cancel_kills_the_process_group(tmp_path: Path) -> None:
    runner = LocalJobRunner(tmp_path / "root", gpus=[], max_parallel=1, kill_grace_s=2)
    pid_file = tmp_path / "child.pid"
    cmds = {"long": f"sleep 60 & echo $! > {pid_file}; wait", "later": "echo never"}
    runner.submit(pipeline(tmp_path, cmds, name="p4"))
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child = int(pid_file.read_text())
    runner.cancel("p4")
    assert runner.status("p4") == CANCELED
    assert runner.node_statuses("p4") == {"long": CANCELED, "later": CANCELED}
    # the grandchild died with its group: the signal is delivered asynchronously, so a loaded host may show it
    # running for a moment after cancel() returned
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_stop_on_first_failure_when_asked(tmp_path: Path) -> None:
    runner = LocalJobRunner(tmp_path / "root", gpus=[], max_parallel=2)
    cmds = {"slow": "sleep 30", "bad": "exit 1", "queued": "echo never"}
    runner.submit(pipeline(tmp_path, cmds, name="p5", continue_on_failure=False))
    assert runner.wait("p5", timeout=20) == FAILED
    assert runner.node_statuses("p5") == {"slow": CANCELED, "bad": FAILED, "queued": CANCELED}


def test_errors_are_typed(tmp_path: Path) -> None:
    runner = LocalJobRunner(tmp_path / "root", gpus=[])
    with pytest.raises(JobError, match="no pipeline"):
        runner.status("nope")
    job = pipeline(tmp_path, {"a": "echo ${{inputs.missing}}"}, name="p6")
    with pytest.raises(JobError, match="not defined"):
        runner.submit(job)


def test_python_in_commands_is_this_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's ``python`` is the search's interpreter even when another python comes first on PATH."""
    import sys

    other = tmp_path / "other_bin"
    other.mkdir()
    fake = other / "python"
    fake.write_text("#!/bin/sh\necho not-this-python\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{other}:{Path(sys.executable).parent}:/usr/bin:/bin")
    runner = LocalJobRunner(tmp_path / "root", gpus=[])
    cmd = {"py": "python -c 'import sys; print(sys.executable)' > ${{outputs.out}}/exe.txt"}
    runner.submit(pipeline(tmp_path, cmd, name="p9"), experiment_name="e")
    assert runner.wait("p9", timeout=30) == COMPLETED, runner.logs("p9", "py")
    exe = (tmp_path / "root" / "datastores" / "models" / "e" / "py" / "exe.txt").read_text().strip()
    assert Path(exe).parent == Path(sys.executable).parent
