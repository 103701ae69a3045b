"""archai_aml.testing.mlclient refuses what the real azure-ai-ml 1.35.2 refuses and answers with its shapes: the
differences that hand-made fakes had (issue 22: positional ``download``/``list`` arguments accepted,
``begin_cancel`` returning None, ``stream`` never raising, ``create_or_update`` returning the job passed in)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from azure.ai.ml import command
from azure.ai.ml.exceptions import JobException, ValidationException
from azure.ai.ml.operations import (
    ComputeOperations,
    DataOperations,
    DatastoreOperations,
    EnvironmentOperations,
    JobOperations,
    ModelOperations,
)
from azure.core.exceptions import ResourceNotFoundError
from azure.core.polling import LROPoller

from archai_aml.testing.mlclient import FakeWorkspace


def _job(tmp_path: Path, name: str | None = "train_1") -> object:
    return command(command="python t.py", code=str(tmp_path), environment="env:1", compute="gpu", name=name)


def test_keyword_only_arguments_and_unknown_methods_are_refused(tmp_path: Path) -> None:
    ws = FakeWorkspace()
    ws.client.jobs.create_or_update(_job(tmp_path), experiment_name="e")
    ws.jobs.script("train_1", ["Completed"])
    with pytest.raises(TypeError):
        ws.client.jobs.download("train_1", str(tmp_path))  # download_path is keyword-only
    with pytest.raises(TypeError):
        ws.client.jobs.list("train_1")  # parent_job_name is keyword-only
    with pytest.raises(TypeError):
        ws.client.jobs.create_or_update(_job(tmp_path), "e")  # experiment_name is keyword-only
    with pytest.raises(TypeError):
        ws.client.jobs.get("train_1", all=True)  # no such keyword
    with pytest.raises(AttributeError):
        ws.client.jobs.wait_until_done  # noqa: B018  # not a JobOperations method
    with pytest.raises(NotImplementedError, match="JobOperations.archive"):
        ws.client.jobs.archive("train_1")  # real, but not modelled: noticed, not silently accepted
    ws.client.jobs.download("train_1", download_path=str(tmp_path), all=True)
    assert (tmp_path / "artifacts" / "user_logs" / "std_log.txt").is_file()


def test_create_or_update_answers_with_a_new_job_named_by_the_service(tmp_path: Path) -> None:
    ws = FakeWorkspace()
    passed = _job(tmp_path, name=None)
    answer = ws.client.jobs.create_or_update(passed, experiment_name="e")
    assert answer is not passed and answer.name  # the SDK names an unnamed job (to_rest_job_object)
    assert answer.studio_url == ws.jobs.records[answer.name].url
    assert answer.studio_url.startswith(f"https://ml.azure.com/runs/{answer.name}?wsid=/subscriptions/sub/")
    status = answer.status
    assert (
        status == "Starting" and str(status) != "Starting" and status.value == "Starting"
    )  # a JobStatus enum
    assert ws.jobs.submitted == [(passed, {"experiment_name": "e"})] and passed.experiment_name == "e"
    with pytest.raises(ResourceNotFoundError):
        ws.client.jobs.get("nope")


def test_stream_raises_job_exception_on_a_failed_job_and_cancel_returns_a_poller(tmp_path: Path) -> None:
    ws = FakeWorkspace()
    ws.client.jobs.create_or_update(_job(tmp_path))
    ws.jobs.script("train_1", ["Running", "Failed"])
    with pytest.raises(JobException, match="Exception : "):
        ws.client.jobs.stream("train_1")
    ws.client.jobs.create_or_update(_job(tmp_path, "train_2"))
    ws.jobs.script("train_2", ["Running"])
    with pytest.raises(JobException, match="Download is allowed only in states"):
        ws.client.jobs.download("train_2", download_path=str(tmp_path))
    poller = ws.client.jobs.begin_cancel("train_2")
    assert isinstance(poller, LROPoller) and poller.result() is None and poller.done()
    assert [ws.jobs.status("train_2")] == ["Running"] and ws.client.jobs.get("train_2").status == "Running"
    assert ws.client.jobs.get("train_2").status == "CancelRequested"
    assert ws.client.jobs.get("train_2").status == "Canceled"


def test_assets_number_versions_and_need_a_version_or_label() -> None:
    from azure.ai.ml.entities import AmlCompute, Data

    ws = FakeWorkspace()
    first = ws.client.data.create_or_update(Data(name="d", path="/tmp", type="uri_folder"))
    second = ws.client.data.create_or_update(Data(name="d", path="/tmp", type="uri_folder"))
    assert (first.version, second.version) == ("1", "2") and ws.client.data.get(
        "d", label="latest"
    ).version == "2"
    with pytest.raises(ValidationException, match="Must provide either version or label"):
        ws.client.data.get("d")
    with pytest.raises(ResourceNotFoundError):
        ws.client.models.get("m", version="1")
    poller = ws.client.compute.begin_create_or_update(AmlCompute(name="c"))
    assert isinstance(poller, LROPoller) and poller.result().name == "c"


@pytest.mark.parametrize(
    "cls, impl",
    [
        (JobOperations, "jobs"),
        (ComputeOperations, "_Compute"),
        (DatastoreOperations, "_Datastores"),
        (EnvironmentOperations, "_Environments"),
        (DataOperations, "_Data"),
        (ModelOperations, "_Models"),
    ],
)
def test_backing_methods_accept_no_more_than_the_real_ones(cls: type, impl: str) -> None:
    """Each method the fake implements has the real method's parameters (names, kinds), or fewer extras."""
    from archai_aml.testing import mlclient

    backing = FakeWorkspace().jobs if impl == "jobs" else getattr(mlclient, impl)(None)
    for name in dir(cls):
        mine = getattr(backing, name, None)
        if name.startswith("_") or mine is None or not callable(mine):
            continue
        real = [p for p in inspect.signature(getattr(cls, name)).parameters.values() if p.name != "self"]
        ours = list(inspect.signature(mine).parameters.values())
        kinds = {p.name: p.kind for p in ours if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        for p in real:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            assert p.name in kinds, f"{cls.__name__}.{name}: the fake lacks {p.name}"
            if p.kind is p.KEYWORD_ONLY:
                assert kinds[p.name] is p.KEYWORD_ONLY, (
                    f"{cls.__name__}.{name}: {p.name} must be keyword-only"
                )
