"""The pipeline rerun on new data through one schedule definition: published to Azure ML as a pipeline
component + JobSchedule (a real MLClient whose components/schedules operations are autospec'd stand-ins),
printed by ``--dry-run``, and run here once on demand, three times: first data, the same data again (nothing
registered, and the logs say so), then with images appended (new data version, new model version, the
best-model alias moved only if the mAP improved)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import pytest
import yaml
from azure.ai.ml import MLClient
from azure.ai.ml.entities import CronTrigger, JobSchedule, PipelineComponent, PipelineJob, RecurrenceTrigger
from azure.ai.ml.operations import ComponentOperations

from archai_aml.config import StoreConfig
from archai_aml.errors import ConfigError
from archai_aml.steps.data_loader import DataLoaderSettings, load_archive
from archai_aml.steps.registry import MlflowRegistry
from archai_aml.steps.schedule import load_definition, publish, run_once
from archai_aml.store import open_store
from archai_aml.testing.mlclient_online import NeverUsedCredential, fake_schedule_operations

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "symbol_detection"))
from make_dataset import make_archive  # noqa: E402

IMAGES = "azureml://datastores/workspaceblobstore/paths/data/images"
LABELS = "azureml://datastores/workspaceblobstore/paths/data/labels"


def definition_file(folder: Path, trigger: dict[str, Any]) -> Path:
    path = folder / "schedule.yaml"
    path.write_text(yaml.safe_dump({
        "name": "symbols-nightly", "pipeline": str(REPO / "examples" / "symbol_detection" / "pipeline.py"),
        "settings": {"input_image_data_path": IMAGES, "input_label_data_path": LABELS, "stratified_split_n_fold": 2,
                     "epochs": 6, "environment": "symbol-env@latest"},
        "trigger": trigger,
    }))  # fmt: skip
    return path


def test_publish_registers_the_pipeline_component_and_a_job_schedule(tmp_path: Path) -> None:
    definition = load_definition(definition_file(tmp_path, {"cron": "0 2 * * *", "time_zone": "UTC"}))
    dry = publish(definition, dry_run=True)
    printed = yaml.safe_load(dry["yaml"])
    assert printed["schedule"]["name"] == "symbols-nightly"
    assert printed["schedule"]["trigger"]["expression"] == "0 2 * * *"
    assert printed["schedule"]["create_job"]["inputs"]["images"]["path"] == IMAGES
    assert set(printed["component"]["jobs"]) == {
        "aggregate",
        "split",
        "register_data",
        "train",
        "register_model",
        "tag_model",
    }
    calls: list[tuple[str, Any]] = []
    ml = MLClient(
        credential=NeverUsedCredential(), subscription_id="s", resource_group_name="rg", workspace_name="ws"
    )
    components = create_autospec(ComponentOperations, instance=True)

    def register(component: Any, version: str | None = None, **kwargs: Any) -> Any:
        calls.append(("components.create_or_update", component))
        component.version = "3"  # the service numbers it
        return component

    components.create_or_update.side_effect = register
    ml._components = components
    ml._schedules = fake_schedule_operations(calls)
    result = publish(definition, ml)
    assert result == {"dry_run": False, "component": "symbol_detection:3", "schedule": "symbols-nightly"}
    (kind, component), (kind2, schedule) = calls
    assert (kind, kind2) == ("components.create_or_update", "schedules.begin_create_or_update")
    assert isinstance(component, PipelineComponent) and set(component.jobs) >= {"train", "tag_model"}
    assert isinstance(schedule, JobSchedule) and isinstance(schedule.trigger, CronTrigger)
    assert (schedule.name, schedule.trigger.expression, schedule.trigger.time_zone) == (
        "symbols-nightly",
        "0 2 * * *",
        "UTC",
    )
    assert (
        isinstance(schedule.create_job, PipelineJob)
        and schedule.create_job.component == "azureml:symbol_detection:3"
    )
    assert schedule.create_job.inputs["images"].path == IMAGES
    assert schedule.create_job.settings.continue_on_step_failure is False
    recurrence = load_definition(
        definition_file(tmp_path, {"frequency": "day", "interval": 1, "hours": [2], "minutes": [30]})
    )
    trigger = publish(recurrence, ml) and calls[-1][1].trigger
    assert isinstance(trigger, RecurrenceTrigger) and (trigger.frequency, trigger.schedule.hours) == (
        "day",
        [2],
    )
    with pytest.raises(ConfigError, match="trigger: Value error, give either cron"):
        load_definition(definition_file(tmp_path, {"cron": "0 2 * * *", "frequency": "day"}))


def test_dry_run_cli_prints_the_schedule(tmp_path: Path) -> None:
    path = definition_file(tmp_path, {"cron": "0 3 * * 1"})
    done = subprocess.run([sys.executable, "-m", "archai_aml.cli", "schedule", "publish", str(path), "--dry-run"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["schedule"]["trigger"]["expression"] == "0 3 * * 1"


def load(root: Path, images: int) -> None:
    archive = make_archive(
        root / f"sym{images}.zip", images=images
    )  # same seed: the first images are the same
    with open_store(StoreConfig(path=root / ".archai_aml" / "store")) as store:
        load_archive(DataLoaderSettings.load({"archive": archive}, env={}), store)


def test_rerun_registers_nothing_on_unchanged_data_and_picks_up_appended_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("ARCHAI_AML_STORE", "MLFLOW_TRACKING_URI", "ARCHAI_AML_DATASTORE_FOLDER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # the defaults resolve here, as for a user
    definition = load_definition(definition_file(tmp_path, {"cron": "0 2 * * *"}))
    registry = MlflowRegistry(f"sqlite:///{tmp_path / '.archai_aml' / 'mlflow' / 'mlflow.db'}")
    env = {"PYTHONPATH": str(REPO)}

    def rerun() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
        out = Path(run_once(definition, env=env, timeout=600)["outputs"])
        read = lambda node, port, file: json.loads((out / node / port / file).read_text())  # noqa: E731
        logs = (out.parent / "register_data.log").read_text() + (
            out.parent / "register_model.log"
        ).read_text()
        return (read("register_data", "dataset_version", "dataset_version.json"),
                read("register_model", "model_metadata", "model_metadata.json"),
                read("tag_model", "best_model_metadata", "best_model_metadata.json"), logs)  # fmt: skip

    load(tmp_path, 24)
    data1, model1, best1, _ = rerun()
    assert (data1["train"]["version"], data1["changed"], model1["version"], best1["version"]) == (
        1,
        True,
        1,
        1,
    )
    data2, model2, best2, logs = rerun()  # nothing new
    assert (data2["train"], data2["changed"], data2["content_hash"]) == (
        data1["train"],
        False,
        data1["content_hash"],
    )
    assert (model2["version"], model2["registered"], best2["changed"]) == (1, False, False)
    assert (
        "train data unchanged (sha256:" in logs
        and "nothing registered, symbol-detection-data version 1" in logs
    )
    assert (
        "data models:/symbol-detection-data/1 unchanged: nothing registered, model symbol-detection version 1"
        in logs
    )
    assert [v.version for v in registry.model_versions("symbol-detection-data")] == [1]
    assert [v.version for v in registry.model_versions("symbol-detection")] == [1]
    load(tmp_path, 36)  # 12 images appended to the data folders
    data3, model3, best3, _ = rerun()
    assert (data3["train"]["version"], data3["changed"], model3["version"], model3["train_data"]) == (
        2, True, 2, "models:/symbol-detection-data/2")  # fmt: skip
    improved = model3["mean_average_precision"] > model1["mean_average_precision"]
    assert registry.best_version("symbol-detection") == best3["version"] == (2 if improved else 1)
    assert best3["changed"] is improved
    print(
        f"mAP v1 {model1['mean_average_precision']:.3f} -> v2 {model3['mean_average_precision']:.3f}; best v{best3['version']}"
    )


def test_the_pages_schedule_definition_loads_and_dry_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    page = (REPO / "docs" / "pipeline-steps.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", page, flags=re.S)
    (tmp_path / "schedule.yaml").write_text(block)
    monkeypatch.chdir(REPO)  # the page's pipeline path is relative to the clone's root
    definition = load_definition(tmp_path / "schedule.yaml")
    printed = yaml.safe_load(publish(definition, dry_run=True)["yaml"])
    assert printed["schedule"]["name"] == "symbol-detection-nightly"
    assert printed["schedule"]["trigger"]["expression"] == "0 2 * * *"
