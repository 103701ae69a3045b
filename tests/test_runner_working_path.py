"""``archai-aml runner --working w_rel``: a relative working folder is resolved once at start (every row
ended in error: ``'.../w_rel/e/m1/quantized/...' is not in the subpath of 'w_rel/e/m1'``)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from archai_aml.config import StoreConfig
from archai_aml.store import job_environment, open_store
from tests.runner_models import add_rows

ROOT = Path(__file__).resolve().parents[1]


def test_a_relative_working_folder_takes_rows_to_complete(tmp_path: Path) -> None:
    store_config = StoreConfig(
        backend="embedded", path=tmp_path / "store", table_name="t" + uuid.uuid4().hex[:12]
    )
    with open_store(store_config) as store:
        names = add_rows(store, "e", 1, size=16)
    env = {**os.environ, **job_environment(store_config, include_secrets=True), "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "archai_aml.runner", "runner", "--target", "cpu", "--experiment", "e", "--once",
        "--working", "w_rel", "--lock-dir", "locks", "--max-benchmark-runs", "1",
        "--benchmark-iterations", "2", "--f1-sizes", "4,4,4",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open_store(store_config) as store:
        rows = [store.get("e", n) for n in names]
    assert all(r is not None and r["status"] == "complete" and not r.get("error") for r in rows), (
        rows,
        proc.stderr[-3000:],
    )
    assert (tmp_path / "w_rel" / "e").is_dir()
