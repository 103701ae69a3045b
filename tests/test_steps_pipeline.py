"""The example symbol-detection pipeline end to end on LocalJobRunner (real subprocesses, real MLflow, the
embedded store), on a small generated data set; and the runner's handling of node-to-node bindings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from azure.ai.ml import Input, Output, command, dsl
from mlflow import MlflowClient

from archai_aml.config import StoreConfig
from archai_aml.pipelines.local import LocalJobRunner
from archai_aml.steps.data_loader import DataLoaderSettings, load_archive
from archai_aml.steps.registry import MlflowRegistry
from archai_aml.store import open_store

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples" / "symbol_detection"))
from make_dataset import make_archive  # noqa: E402
from pipeline import PipelineSettings, build_pipeline  # noqa: E402


def test_symbol_detection_pipeline_runs_end_to_end_locally(tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    loader = DataLoaderSettings.load({"archive": make_archive(tmp_path / "sym.zip", images=36)}, env={})
    with open_store(StoreConfig(path=store_path)) as store:
        loaded = load_archive(loader, store)
    tracking = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    settings = PipelineSettings.load(
        {
            "input_image_data_path": loaded.image_folder,
            "input_label_data_path": loaded.label_folder,
            "input_images_string_absolute_path": loaded.image_uri,
            "mandatory_train_filenames": "img_0005.jpg",
            "mandatory_val_filenames": "img_0006.jpg",
            "stratified_split_n_fold": 3,
            "epochs": 30,
        },
        env={},
    )
    job = build_pipeline(settings)
    env = {"PYTHONPATH": str(REPO), "MLFLOW_TRACKING_URI": tracking, "ARCHAI_AML_STORE": str(store_path)}
    runner = LocalJobRunner(tmp_path / "jobs", max_parallel=2, gpus=[], env=env)
    name = runner.submit(job, experiment_name="symbols").name
    status = runner.wait(name, timeout=400)
    logs = {n: runner.logs(name, n) for n in runner.node_statuses(name)}
    assert status == "Completed", {n: text[-1500:] for n, text in logs.items()}
    records = {r.name: r for r in runner.records(name)}
    order = ["aggregate", "split", "register_data", "train", "register_model", "tag_model"]
    assert list(records) == order
    for upstream, downstream in [("aggregate", "split"), ("split", "register_data"), ("split", "train"),
                                 ("train", "register_model"), ("register_data", "register_model"), ("register_model", "tag_model")]:  # fmt: skip
        assert records[downstream].started >= records[upstream].ended, (upstream, downstream)  # type: ignore[operator]
    outputs = tmp_path / "jobs" / name / "outputs"
    train_names = (outputs / "split" / "train" / "annotations.jsonl").read_text()
    val_names = (outputs / "split" / "val" / "annotations.jsonl").read_text()
    assert "img_0005.jpg" in train_names and "img_0006.jpg" in val_names and "img_0006.jpg" not in train_names
    version = json.loads((outputs / "register_data" / "dataset_version" / "dataset_version.json").read_text())
    assert version["train"]["uri"] == "models:/symbol-detection-data/1"
    meta = json.loads((outputs / "register_model" / "model_metadata" / "model_metadata.json").read_text())
    best = json.loads(
        (outputs / "tag_model" / "best_model_metadata" / "best_model_metadata.json").read_text()
    )
    assert (meta["name"], meta["version"], meta["train_data"]) == (
        "symbol-detection",
        1,
        "models:/symbol-detection-data/1",
    )
    assert (best["version"], best["changed"], best["mean_average_precision"]) == (
        1,
        True,
        meta["mean_average_precision"],
    )
    run = MlflowClient(tracking).get_run(meta["run_id"])
    assert {k: run.data.metrics[k] for k in ("mean_average_precision", "precision", "recall")} == {
        k: meta[k] for k in ("mean_average_precision", "precision", "recall")
    }
    assert meta["mean_average_precision"] > 0.3, meta  # a real detector trained for 30 epochs on 24 images
    (version_1,) = MlflowRegistry(tracking).model_versions("symbol-detection")
    assert version_1.version == 1 and MlflowRegistry(tracking).best_version("symbol-detection") == 1
    print(
        f"pipeline wall time per node: { {n: round(r.wall_s or 0, 1) for n, r in records.items()} }; metrics {meta}"
    )


def test_local_runner_passes_outputs_downstream_and_cancels_after_a_failed_upstream(tmp_path: Path) -> None:
    produce = command(
        command="echo hello-$GREETING > ${{outputs.out}}/x.txt && test ${{inputs.fail}} = no",
        inputs={"fail": Input(type="string")},
        outputs={"out": Output(type="uri_folder")},
        environment_variables={"GREETING": "world"},
        environment="env@latest",
    )
    consume = command(
        command="cat ${{inputs.data}}/x.txt > ${{outputs.copy}}/y.txt && echo ${{inputs.word}} >> ${{outputs.copy}}/y.txt",
        inputs={"data": Input(type="uri_folder"), "word": Input(type="string")},
        outputs={"copy": Output(type="uri_folder")},
        environment="env@latest",
    )

    @dsl.pipeline(name="chain")  # type: ignore[call-overload]
    def chain(word, fail):  # type: ignore[no-untyped-def]
        first = produce(fail=fail)
        first.name = "first"
        second = consume(data=first.outputs.out, word=word)
        second.name = "second"

    (tmp_path / "jobs").mkdir()  # the nodes have no code folder: they run in the runner's folder
    runner = LocalJobRunner(tmp_path / "jobs", max_parallel=2, gpus=[])
    ok = runner.submit(chain(word="bye", fail="no"), experiment_name="t").name
    assert runner.wait(ok, timeout=60) == "Completed"
    copied = tmp_path / "jobs" / ok / "outputs" / "second" / "copy" / "y.txt"
    assert copied.read_text() == "hello-world\nbye\n"  # a pipeline string input reaches the node too
    job = chain(word="bye", fail="yes")
    job.name = "chain_fails"
    runner.submit(job, experiment_name="t")
    assert runner.wait("chain_fails", timeout=60) == "Failed"
    assert runner.node_statuses("chain_fails") == {"first": "Failed", "second": "Canceled"}
    assert {r.name: r.pid for r in runner.records("chain_fails")}["second"] is None  # never started
