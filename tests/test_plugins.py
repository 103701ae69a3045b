"""One way to plug in (archai_aml.plugins): every configuration of the repo still loads, a user's store and
job runner are chosen from YAML like the built-in ones, and a wrong field fails at load time naming the
field and the backend."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import tomllib
import yaml

from archai_aml.config import ArchaiAmlConfig, JobRunnerConfig, StoreConfig, load_config
from archai_aml.errors import ConfigError, TargetError
from archai_aml.pipelines import LocalJobRunner, register_job_runner
from archai_aml.plugins import BUILTIN_ENTRY_POINTS, JOB_RUNNERS, STORES, TARGETS
from archai_aml.store import Store, open_store, register_store
from archai_aml.store.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parents[1]
#: Doc blocks that are parts of a configuration, not one (the page completes them in the next blocks).
FRAGMENTS = {"docs/azure-store.md block 1"}


@pytest.fixture(autouse=True)
def _restore_registries() -> Iterator[None]:
    registries = (TARGETS, STORES, JOB_RUNNERS)
    saved = {r: (r.names(), dict(r._entries))[1] for r in registries}  # scanned first, then copied
    yield
    for registry, entries in saved.items():
        registry._entries.clear()
        registry._entries.update(entries)


# ------------------------------------------------------------------------------- every YAML of the repo
def _config_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every archai-aml configuration in the repository: the tracked YAML files and the ```yaml blocks of
    the docs whose top-level keys are all configuration sections."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    docs: list[tuple[str, str]] = []
    for name in files.split():
        path = ROOT / name
        if name.endswith((".yaml", ".yml")):
            docs.append((name, path.read_text(encoding="utf-8")))
        elif name.endswith(".md"):
            for i, block in enumerate(
                re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.S)
            ):
                docs.append((f"{name} block {i + 1}", block))
    sections = set(ArchaiAmlConfig.model_fields)
    out = []
    for where, text in docs:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue  # not YAML a loader could read (a fragment with placeholders)
        if isinstance(data, dict) and data and set(data) <= sections and where not in FRAGMENTS:
            out.append((where, data))
    return out


def _env_for(data: Any) -> dict[str, str]:
    names = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}", yaml.safe_dump(data))
    return {name: "/tmp/archai-aml-yaml-check" for name in names} | {"AML_SUBSCRIPTION_ID": "sub"}


def test_every_configuration_in_the_repo_loads_unchanged() -> None:
    documents = _config_documents()
    names = [where for where, _ in documents]
    # the check cannot pass by finding nothing: the examples' configurations are among them
    assert {"examples/face_segmentation/config.yaml", "examples/face_segmentation/demo.yaml"} <= set(names)
    assert "examples/face_segmentation/demo_qnn.yaml" in names and len(documents) >= 5, names
    for where, data in documents:
        env = _env_for(data)
        try:
            config = load_config(data, env=env)
        except ConfigError as exc:
            raise AssertionError(f"{where} no longer loads: {exc}") from None
        # nothing the file says is dropped or changed: each section's values come back as written
        for section in ("store", "target", "job_runner"):
            written = data.get(section) or {}
            loaded = getattr(config, section).model_dump(mode="json")
            for key, value in written.items():
                if isinstance(value, str) and "${" in value:
                    continue
                assert loaded[key] == value or (
                    isinstance(value, dict) and value.items() <= loaded[key].items()
                ), f"{where}: {section}.{key} = {value!r} loaded as {loaded[key]!r}"


# ------------------------------------------------------------------------------- registering by code
class FolderStoreConfig(StoreConfig):
    """A user's store: the embedded store under a folder of its own, with a setting of its own."""

    factory = "tests.test_plugins:open_folder_store"

    backend: Literal["folder"] = "folder"
    folder: Path
    read_only_label: str = "unlabelled"


class LabelledStore(EmbeddedStore):
    label = ""


def open_folder_store(config: FolderStoreConfig, **kwargs: Any) -> Store:
    store = LabelledStore(
        config.folder / "db", table_name=config.table_name, container_name=config.container_name
    )
    store.label = config.read_only_label
    return store


class RecordingJobRunner(LocalJobRunner):
    """A user's job runner: local subprocesses, tagged with the queue name its settings give."""

    queue = ""


class RecordingJobRunnerConfig(JobRunnerConfig):
    factory = "tests.test_plugins:build_recording_runner"

    name: Literal["recording"] = "recording"
    queue: str


def build_recording_runner(config: ArchaiAmlConfig, store_config: StoreConfig) -> RecordingJobRunner:
    settings = config.job_runner
    assert isinstance(settings, RecordingJobRunnerConfig)
    runner = RecordingJobRunner(config.training.local_root)
    runner.queue = settings.queue
    return runner


def test_a_user_store_and_job_runner_are_chosen_from_yaml(tmp_path: Path) -> None:
    register_store("folder", settings=FolderStoreConfig)
    register_job_runner("recording", settings=RecordingJobRunnerConfig)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"store:\n  backend: folder\n  folder: {tmp_path}\n  read_only_label: mine\n  table_name: userstore\n"
        f"job_runner:\n  name: recording\n  queue: gpu-night\n"
        f"training:\n  local_root: {tmp_path / 'jobs'}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert isinstance(config.store, FolderStoreConfig) and isinstance(
        config.job_runner, RecordingJobRunnerConfig
    )
    with open_store(config.store) as store:
        assert isinstance(store, LabelledStore) and store.label == "mine"
        store.create("exp", "m1", {"status": "new"})
        row = store.get("exp", "m1")
        assert row is not None and row["status"] == "new"
        assert (tmp_path / "db").is_dir()  # the user's own setting placed it

        from archai_aml.evaluators.aml_training import AmlPartialTrainingEvaluator

        evaluator = AmlPartialTrainingEvaluator(
            config, tmp_path / "out", store=store
        )  # the registry picks it
        assert (
            isinstance(evaluator.job_runner, RecordingJobRunner) and evaluator.job_runner.queue == "gpu-night"
        )


def test_a_user_backend_registered_with_a_factory_alone_takes_the_common_settings(tmp_path: Path) -> None:
    made: list[dict[str, Any]] = []

    def factory(**kwargs: Any) -> Store:
        made.append(kwargs)
        return EmbeddedStore(tmp_path / "plain")

    register_store("plain", factory)
    config = load_config({"store": {"backend": "plain", "table_name": "plainrows"}})
    with open_store(config.store) as store:
        assert isinstance(store, EmbeddedStore)
    assert made[0]["config"].table_name == "plainrows"
    with pytest.raises(
        ConfigError, match=r"store\.path: Extra inputs .*the plain store backend|store 'plain'"
    ):
        load_config({"store": {"backend": "plain", "path": "x"}})


def test_built_in_default_job_runner_follows_the_aml_section() -> None:
    assert load_config({}).job_runner.name == "local"
    aml = {"workspace": {"subscription_id": "s", "resource_group": "g", "workspace_name": "w"}}
    assert load_config({"aml": aml}).job_runner.name == "azureml"
    assert load_config({"aml": aml, "job_runner": {"name": "local"}}).job_runner.name == "local"


# ------------------------------------------------------------------------------------------ errors
def test_a_wrong_field_names_the_field_and_the_backend(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("target:\n  name: cpu\n  sdk_root: /opt/snpe\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "target.sdk_root: Extra inputs are not permitted" in message
    assert "target 'cpu' has no such setting" in message
    # the same field is the snpe backend's own
    path.write_text("target:\n  name: snpe\n  sdk_root: /opt/snpe\n", encoding="utf-8")
    assert str(load_config(path).target.sdk_root) == "/opt/snpe"  # type: ignore[attr-defined]
    # a backend's own field is validated by its model, at load time
    with pytest.raises(ConfigError, match=r"target\.qnn\.workers: .*(target 'qnn')"):
        load_config({"target": {"name": "qnn", "qnn": {"workers": 0}}})
    with pytest.raises(ConfigError, match=r"store\.path: Extra inputs.*store 'azure' has no such setting"):
        load_config({"store": {"backend": "azure", "account_name": "acct", "path": "x"}})


def test_an_unknown_name_lists_the_registered_ones() -> None:
    register_store("folder", settings=FolderStoreConfig)
    with pytest.raises(ConfigError) as info:
        load_config({"store": {"backend": "flodler"}})
    assert "store.backend: Value error, unknown store 'flodler'" in str(info.value)
    assert "['azure', 'embedded', 'folder']" in str(info.value)
    with pytest.raises(ConfigError, match=r"target\.name: .*unknown target 'tpu'.*'cpu'.*'snpe'"):
        load_config({"target": {"name": "tpu"}})
    with pytest.raises(
        ConfigError, match=r"job_runner\.name: .*unknown job_runner 'slurm'.*'azureml', 'local'"
    ):
        load_config({"job_runner": {"name": "slurm"}})


def test_a_missing_sdk_fails_only_its_backend_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qai_hub", None)  # what an environment without the aihub extra imports
    monkeypatch.delitem(sys.modules, "archai_aml.aihub.target", raising=False)
    config = load_config({"target": {"name": "aihub", "hub_device": "Snapdragon X Elite CRD"}})  # loads
    from archai_aml.targets import get_target, target_from_config

    assert get_target("cpu").name == "cpu"  # the others still work
    with pytest.raises(TargetError, match=r"aihub.*pip install 'archai-aml\[aihub\]'"):
        target_from_config(config.target)


def test_the_built_in_entry_points_are_the_ones_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]
    assert {g: declared[g] for g in BUILTIN_ENTRY_POINTS} == BUILTIN_ENTRY_POINTS
    for group, names in BUILTIN_ENTRY_POINTS.items():
        registry = next(r for r in (TARGETS, STORES, JOB_RUNNERS) if r.group == group)
        for name in names:
            model = registry.settings_model(name)
            assert model.model_fields[registry.key].default == name  # the model selects its own name


def test_loading_a_configuration_imports_no_backend_sdk() -> None:
    # only the chosen backends' light settings modules are imported: no SDK, no onnxruntime
    code = (
        "import sys, json\n"
        "from archai_aml.config import load_config\n"
        "load_config({'target': {'name': 'qnn'}, 'store': {'backend': 'azure', 'account_name': 'a'},"
        " 'aml': {'workspace': {'subscription_id': 's', 'resource_group': 'g', 'workspace_name': 'w'}}})\n"
        "heavy = ('onnxruntime', 'onnx', 'torch', 'azure.data.tables', 'azure.ai.ml', 'onnxruntime_qnn', 'qai_hub')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
