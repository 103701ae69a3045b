"""Continued training: a promoted model trains the missing epochs only, from its stored checkpoint; a crash
between budgets resumes from the last checkpoint stored. Real LocalJobRunner jobs on the embedded store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from archai_aml.config import StoreConfig
from archai_aml.evaluators import AmlPartialTrainingEvaluator
from archai_aml.pipelines import LocalJobRunner
from archai_aml.store import open_store
from tests.pipeline_helpers import make_config, make_models

# A training script in miniature whose "weights" are the epochs trained so far: it continues from the
# checkpoint the job names, trains --epochs more, and reports val_iou = 1 - 0.5 ** epochs in all.
CONTINUING_TRAIN = """
import argparse, json, os, sys
from pathlib import Path
from archai_aml.training.job import TrainingJob

p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--output"); p.add_argument("--model-id"); p.add_argument("--epochs", type=float)
a = p.parse_args()
with TrainingJob.from_env(model_id=a.model_id, output_dir=a.output, use_mlflow=False) as job:
    start = 0.0
    ckpt = job.resume_checkpoint(a.output)
    if ckpt is not None:
        start = json.loads(Path(ckpt).read_text())["epochs"]
    with open(os.environ["LOG_FILE"], "a") as f:
        f.write(json.dumps({"model": a.model_id, "from": start, "trained": a.epochs}) + "\\n")
    if a.model_id in os.environ.get("CRASH", "").split(","):
        raise RuntimeError("crashed mid-training")
    total = start + a.epochs
    out = Path(a.output, "weights.json")
    out.write_text(json.dumps({"epochs": total}))
    job.save_checkpoint(out, total)
    job.report({"val_iou": 1 - 0.5 ** total})
"""

COMMAND = (
    f"{sys.executable} train_cont.py --data ${{{{inputs.data}}}} --output ${{{{outputs.output}}}} "
    "--model-id {model_id} --epochs {epochs}"
)


def make_evaluator(
    tmp_path: Path, env: dict[str, str], tr_epochs: float = 1.0
) -> AmlPartialTrainingEvaluator:
    cfg = make_config(
        tmp_path,
        StoreConfig(path=tmp_path / "store", table_name="cont"),
        env=env,
        command=COMMAND,
        max_parallel=2,
    )
    (tmp_path / "code" / "train_cont.py").write_text(CONTINUING_TRAIN)
    store = open_store(cfg.store)
    runner = LocalJobRunner.from_config(cfg, store.config)
    return AmlPartialTrainingEvaluator(
        cfg, tmp_path / "out", tr_epochs=tr_epochs, job_runner=runner, store=store, progress=False
    )


def log_lines(path: Path) -> list[dict[str, float | str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_promoted_models_train_the_missing_epochs_only(tmp_path: Path) -> None:
    log_file = tmp_path / "train.log"
    ev = make_evaluator(tmp_path, {"LOG_FILE": str(log_file)})
    models = make_models(2)
    for m in models:
        ev.send(m, 1)
    assert ev.fetch_all() == [0.5, 0.5]
    for m in models:
        ev.send(m, 2)  # a successive-halving promotion: budget 2
    assert ev.fetch_all() == [0.75, 0.75]
    for m in models[:1]:
        ev.send(m, 4)
    assert ev.fetch_all() == [1 - 0.5**4]
    runs = log_lines(log_file)
    m0 = [(r["from"], r["trained"]) for r in runs if r["model"] == "id_m000"]
    assert m0 == [(0.0, 1.0), (1.0, 1.0), (2.0, 2.0)]  # continued each time, for the missing epochs only
    row = ev.store.get("exp", "id_m000")
    assert row is not None and row["epochs"] == 4.0 and row["epochs_spent"] == 4.0
    assert (row["val_iou_at_1"], row["val_iou_at_2"], row["val_iou_at_4"]) == (0.5, 0.75, 1 - 0.5**4)
    assert row["checkpoint"] == "checkpoint_e4.pt" and row["checkpoint_epochs"] == 4.0
    assert {"checkpoint_e1.pt", "checkpoint_e2.pt", "checkpoint_e4.pt"} <= set(
        ev.store.list_blobs("exp", "id_m000")
    )
    m1 = ev.store.get("exp", "id_m001")
    assert m1 is not None and m1["epochs_spent"] == 2.0 and "val_iou_at_4" not in m1
    # without continuation, the same promotion trains from scratch (what Archai's search did)
    ev.continue_training = False
    ev.send(models[1], 3)
    ev.fetch_all()
    assert log_lines(log_file)[-1] == {"model": "id_m001", "from": 0.0, "trained": 3.0}


def test_a_crash_between_budgets_resumes_from_the_last_checkpoint(tmp_path: Path) -> None:
    log_file = tmp_path / "train.log"
    ev = make_evaluator(tmp_path, {"LOG_FILE": str(log_file)})
    m = make_models(1)[0]
    ev.send(m, 1)
    ev.fetch_all()
    # budget 2 crashes mid-training: the row fails, the checkpoint of epoch 1 stays the one named
    crashing = make_evaluator(tmp_path, {"LOG_FILE": str(log_file), "CRASH": "id_m000"})
    crashing.send(m, 2)
    try:
        crashing.fetch_all()
    except Exception:  # too many failures of the batch: a TrainingFailedError, as a search would see
        pass
    row = crashing.store.get("exp", "id_m000")
    assert row is not None and row["status"] == "failed" and row["checkpoint"] == "checkpoint_e1.pt"
    # the rerun (a new process: a new evaluator on the same store) continues from epoch 1
    rerun = make_evaluator(tmp_path, {"LOG_FILE": str(log_file)})
    rerun.send(m, 2)
    assert rerun.fetch_all() == [0.75]
    assert [(r["from"], r["trained"]) for r in log_lines(log_file)] == [(0.0, 1.0), (1.0, 1.0), (1.0, 1.0)]
    row = rerun.store.get("exp", "id_m000")
    assert row is not None and row["epochs_spent"] == 2.0 and row["checkpoint_epochs"] == 2.0


def test_azure_ml_pipeline_nodes_carry_the_continuation(tmp_path: Path) -> None:
    """The Azure ML pipeline (real azure-ai-ml objects) of a promotion: the continued node trains the
    missing epochs and its environment names the checkpoint blob; the other trains from scratch."""
    from archai_aml.config import AzureMLConfig, WorkspaceConfig
    from archai_aml.pipelines.training import build_training_pipeline
    from archai_aml.training.checkpoint import Resume

    cfg = make_config(
        tmp_path, StoreConfig(backend="azure", account_name="acct", managed_identity_client_id="cid")
    )
    cfg.aml = AzureMLConfig(
        workspace=WorkspaceConfig(subscription_id="s", resource_group="g", workspace_name="w")
    )
    resume = {"id_a": Resume("checkpoint_e1.pt", 1.0)}
    job = build_training_pipeline("d", cfg, cfg.store, ["id_a", "id_b"], 4, "train_exp_2", resume)
    a, b = job.jobs["id_a"], job.jobs["id_b"]
    assert a.command.endswith("--model-id id_a --epochs 3") and b.command.endswith(
        "--model-id id_b --epochs 4"
    )
    assert a.environment_variables["ARCHAI_AML_RESUME_CHECKPOINT"] == "checkpoint_e1.pt"
    assert a.environment_variables["ARCHAI_AML_EPOCHS_DONE"] == "1"
    assert (
        a.environment_variables["ARCHAI_AML_TOTAL_EPOCHS"]
        == b.environment_variables["ARCHAI_AML_TOTAL_EPOCHS"]
        == "4"
    )
    assert "ARCHAI_AML_RESUME_CHECKPOINT" not in b.environment_variables


def test_example_train_script_continues_from_its_checkpoint(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """examples/face_segmentation/train.py for real: 0.5 epochs, then 0.5 more from the stored weights."""
    import torch

    from archai_aml.store import open_store as _open
    from tests.test_face_segmentation import TINY_ARCH, _run_train

    config = StoreConfig(backend="embedded", path=tmp_path / "store", table_name="contjobs")
    with _open(config) as store:
        store.create("exp", "m1", {"status": "preparing", "epochs": 0.5})
        store.upload_bytes("exp", "m1", "m1.json", json.dumps(TINY_ARCH).encode())
    monkeypatch.setenv("ARCHAI_AML_TOTAL_EPOCHS", "0.5")
    first = _run_train(tmp_path, config, "m1")
    assert first.returncode == 0, first.stderr[-3000:]
    with _open(config) as store:
        row = store.get("exp", "m1")
        assert row is not None and row["checkpoint"] == "checkpoint_e0_5.pt" and row["epochs_spent"] == 0.5
        half = torch.load(
            store.download("exp", "m1", tmp_path / "w", blob_names=["checkpoint_e0_5.pt"])[0],
            weights_only=True,
        )
    monkeypatch.setenv("ARCHAI_AML_TOTAL_EPOCHS", "1")
    monkeypatch.setenv("ARCHAI_AML_EPOCHS_DONE", "0.5")
    monkeypatch.setenv("ARCHAI_AML_RESUME_CHECKPOINT", "checkpoint_e0_5.pt")
    second = _run_train(tmp_path, config, "m1")  # --epochs 0.5: the missing half
    assert second.returncode == 0, second.stderr[-3000:]
    assert "continues from 0.5 epochs for 0.5 more" in second.stderr
    with _open(config) as store:
        row = store.get("exp", "m1")
        assert row is not None and row["status"] == "complete"
        assert row["epochs"] == 1.0 and row["epochs_spent"] == 1.0 and row["checkpoint_epochs"] == 1.0
        assert "val_iou_at_0_5" in row and row["val_iou_at_1"] == row["val_iou"]
        full = torch.load(
            store.download("exp", "m1", tmp_path / "w1", blob_names=["checkpoint_e1.pt"])[0],
            weights_only=True,
        )
    assert set(full) == set(half) and any(not torch.equal(full[k], half[k]) for k in full)
