"""The environment carries a wheel of the checkout: its build context holds the wheel, its version is a
content hash (a one-line change in the library gives a new one, an unchanged copy the same), workspace setup
and the training pipeline name the same version. MLClient is real, faked at its operations (test_workspace)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from archai_aml import cli
from archai_aml.config import AzureMLConfig, EnvironmentConfig, StoreConfig, WorkspaceConfig, load_config
from archai_aml.pipelines import build_training_pipeline
from archai_aml.runner.azureml import submit_runner_job
from archai_aml.testing.mlclient import FakeWorkspace as Workspace
from archai_aml.workspace import cli as workspace_cli
from archai_aml.workspace import environment_reference, prepare_environment, setup_workspace
from archai_aml.workspace.environment import project_root, wheel_digest
from tests.pipeline_helpers import make_config as make_training_config
from tests.test_workspace import make_config

ROOT = project_root()


def copy_checkout(dest: Path) -> Path:
    assert ROOT is not None, "the tests run from a checkout"
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "archai_aml", dest / "archai_aml", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def change_one_line(root: Path) -> None:
    path = root / "archai_aml" / "errors.py"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "\n# one more line\n", encoding="utf-8")


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("checkouts")
    same_a, same_b, changed = (copy_checkout(base / n) for n in ("a", "b", "changed"))
    change_one_line(changed)
    conda = base / "conda.yaml"
    conda.write_text(
        "name: t\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - archai==1.0.0\n      - archai-aml[azure]\n"
    )
    return {"a": same_a, "b": same_b, "changed": changed, "conda": conda}


def env_config(conda: Path | None, image: str = "img:1") -> EnvironmentConfig:
    return EnvironmentConfig(name="archai-env", image=image, conda_file=conda)


def test_build_context_holds_the_wheel_and_the_conda_file_without_archai_aml(
    checkouts: dict[str, Path],
) -> None:
    build = prepare_environment(env_config(checkouts["conda"]), root=checkouts["a"])
    files = sorted(p.name for p in build.context.iterdir())
    assert files == sorted(["Dockerfile", "conda.yaml", build.wheel])
    assert build.wheel.startswith("archai_aml-") and build.wheel.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(build.context / build.wheel) as zf:
        names = zf.namelist()
        assert "archai_aml/workspace/environment.py" in names and "archai_aml/py.typed" in names
        assert zf.read("archai_aml/errors.py") == (checkouts["a"] / "archai_aml" / "errors.py").read_bytes()
    conda = yaml.safe_load((build.context / "conda.yaml").read_text())
    assert conda["dependencies"][2]["pip"] == ["archai==1.0.0"]  # archai-aml comes from the wheel
    docker = (build.context / "Dockerfile").read_text().splitlines()
    assert docker[0] == "FROM img:1" and f"COPY {build.wheel} /tmp/archai_aml_env/{build.wheel}" in docker
    assert any(
        f'pip install --no-cache-dir "/tmp/archai_aml_env/{build.wheel}[azure]"' in line for line in docker
    )
    entity = build.entity()
    assert entity.image is None and Path(entity.build.path) == build.context
    assert entity.build.dockerfile_path == "Dockerfile" and (entity.name, entity.version) == (
        "archai-env",
        build.version,
    )


def test_version_follows_the_content_only(checkouts: dict[str, Path], tmp_path: Path) -> None:
    env = env_config(checkouts["conda"])
    a = prepare_environment(env, root=checkouts["a"])
    b = prepare_environment(env, root=checkouts["b"])  # another copy, another wheel build: same files
    changed = prepare_environment(env, root=checkouts["changed"])
    assert a.version == b.version and a.context == b.context
    assert (a.context / a.wheel).read_bytes() != b"" and len(a.version) == 16
    assert wheel_digest(a.context / a.wheel) != wheel_digest(changed.context / changed.wheel)
    assert changed.version != a.version
    assert (
        prepare_environment(env_config(checkouts["conda"], "img:2"), root=checkouts["a"]).version != a.version
    )
    assert prepare_environment(env_config(None), root=checkouts["a"]).version != a.version
    other_conda = tmp_path / "conda.yaml"
    other_conda.write_text("name: t\ndependencies:\n  - python=3.10\n")
    assert prepare_environment(env_config(other_conda), root=checkouts["a"]).version != a.version
    pinned = EnvironmentConfig(name="archai-env", version="7")
    assert environment_reference(pinned) == "archai-env:7"


def test_setup_creates_the_hashed_version_once_and_a_new_one_after_a_change(
    checkouts: dict[str, Path], tmp_path: Path
) -> None:
    env = env_config(checkouts["conda"])
    config = make_config(tmp_path, environment=env)
    ws = Workspace()
    first = setup_workspace(ws.client, config, progress=False, poll_interval_s=0, project=checkouts["a"])
    (created,) = ws.environments.created
    version = prepare_environment(env, root=checkouts["a"]).version
    assert first.environment == f"archai-env:{version}" and created.version == version
    assert created.image is None and any(p.name.endswith(".whl") for p in Path(created.build.path).iterdir())
    again = setup_workspace(ws.client, config, progress=False, project=checkouts["b"])
    assert again.environment == first.environment and len(ws.environments.created) == 1
    assert again.plan[2].action == "exists"
    third = setup_workspace(ws.client, config, progress=False, project=checkouts["changed"])
    assert len(ws.environments.created) == 2 and third.environment != first.environment
    assert third.plan[2].action == "create"


def test_pipeline_runner_job_and_setup_name_the_same_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_training_config(tmp_path, StoreConfig(backend="azure", account_name="acct"))
    cfg.aml = AzureMLConfig(
        workspace=WorkspaceConfig(subscription_id="s", resource_group="g", workspace_name="w")
    )
    reference = environment_reference(cfg.aml.environment)
    job = build_training_pipeline("d", cfg, cfg.store, ["id_a", "id_b"], 1, "b1")
    assert [n.environment for n in job.jobs.values()] == [reference, reference]
    ws = Workspace()
    res = setup_workspace(ws.client, cfg, progress=False, poll_interval_s=0)
    assert res.environment == reference and ws.environments.created[0].version == reference.split(":")[1]
    runner_cfg = load_config(
        {
            "experiment_name": "exp",
            "store": {"backend": "azure", "account_name": "acct"},
            "aml": {"workspace": {"subscription_id": "s", "resource_group": "g", "workspace_name": "w"}},
        }
    )

    jobs_ws = Workspace()
    runner_job = submit_runner_job(runner_cfg, instances=1, ml_client=jobs_ws.client)
    assert runner_job.environment == reference and jobs_ws.jobs.submitted[0][0].environment == reference
    # --dry-run prints what would be built
    monkeypatch.setattr(workspace_cli, "make_ml_client", lambda aml: Workspace().client)
    path = tmp_path / "config.yaml"
    data = make_config(tmp_path, environment=EnvironmentConfig(name="archai-env")).model_dump(
        mode="json", exclude_none=True
    )
    data["store"]["connection_string"] = "AccountName=acct1;AccountKey=a2V5"
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["--config", str(path), "workspace", "setup", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"environment: {reference.replace('archai-aml', 'archai-env')}" in out
    assert "FROM mcr.microsoft.com/azureml/" in out and ".whl" in out and "Dockerfile" in out
