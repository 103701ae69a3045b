"""Helpers shared by the pipeline tests: a tiny training script, configs and Archai models."""

from __future__ import annotations

import sys
import zlib
from pathlib import Path
from typing import Any

from archai_aml.config import ArchaiAmlConfig, StoreConfig, TrainingConfig

# A real training script in miniature: it goes through the job helper (row -> training -> complete/failed),
# downloads its ArchConfig from the store and reports a metric computed from its model id.
STUB_TRAIN = """
import argparse, json, os, sys, time, zlib
from pathlib import Path
from archai_aml.training.job import TrainingJob

p = argparse.ArgumentParser()
p.add_argument("--data")
p.add_argument("--output")
p.add_argument("--model-id")
p.add_argument("--epochs", type=float)
a = p.parse_args()
names = lambda key: set(filter(None, os.environ.get(key, "").split(",")))
if a.model_id in names("STUB_NEVER_START"):
    sys.exit(3)
with TrainingJob.from_env(model_id=a.model_id, output_dir=a.output, use_mlflow=False) as job:
    arch = json.loads(job.download_arch(a.output).read_text())
    time.sleep(float(os.environ.get("STUB_SLEEP", "0")))
    if a.model_id in names("STUB_FAIL"):
        raise RuntimeError("stub training crashed for " + a.model_id)
    job.report({"val_iou": (zlib.crc32(a.model_id.encode()) % 1000) / 1000.0})
    Path(a.output, "arch_seen.json").write_text(json.dumps(arch))
    Path(a.output, "data_seen.txt").write_text(a.data + " " + os.environ.get("AZUREML_RUN_ID", ""))
"""

STUB_COMMAND = (
    f"{sys.executable} train_stub.py --data ${{{{inputs.data}}}} --output ${{{{outputs.output}}}} "
    "--model-id {model_id} --epochs {epochs}"
)


def expected_metric(model_id: str) -> float:
    return (zlib.crc32(model_id.encode()) % 1000) / 1000.0


def make_config(
    tmp_path: Path, store_config: StoreConfig, *, env: dict[str, str] | None = None, **training: Any
) -> ArchaiAmlConfig:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "train_stub.py").write_text(STUB_TRAIN)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "sample.txt").write_text("x")
    values: dict[str, Any] = {
        "code_dir": code,
        "data": str(data),
        "command": STUB_COMMAND,
        "local_root": tmp_path / "jobs",
        "poll_interval_min_s": 0.02,
        "poll_interval_max_s": 0.5,
        "max_parallel": 2,
        "gpus": [],
        "environment_variables": env or {},
    }
    values.update(training)
    return ArchaiAmlConfig(experiment_name="exp", store=store_config, training=TrainingConfig(**values))


def make_models(n: int, prefix: str = "m") -> list[Any]:
    import torch
    from archai.discrete_search.api.archai_model import ArchaiModel
    from archai.discrete_search.search_spaces.config import ArchConfig

    return [
        ArchaiModel(
            arch=torch.nn.Identity(),
            archid=f"{prefix}{i:03d}",
            metadata={"config": ArchConfig({"width": 8 * (i + 1), "depth": i % 3 + 1})},
        )
        for i in range(n)
    ]
