"""The search example with its runners on the qnn target (what demo_qnn.yaml does, smaller): the emulated
HTP's latency is refused as the objective until ``search.allow_simulated_latency`` says otherwise; then the
search completes, reusing the latency rows already measured, and results.csv / the Pareto table carry the
float model's f1_onnx and the HTP's f1_1k from the latency rows."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from archai_aml.config import StoreConfig
from archai_aml.store import open_store
from tests.test_search_example import CONFIG, ROOT, SEARCH, read_results, run_search

QNN_CONFIG = CONFIG.replace(
    "target:\n  input_shape: [1, 3, 32, 32]",
    "target:\n  name: qnn\n  input_shape: [1, 3, 32, 32]\n  f1_onnx_images: 3\n  f1_1k_images: 3\n"
    "  f1_10k_images: 3\n  qnn: {htp_performance_mode: burst}",
).replace("  local_runners: 1\n", "  local_runners: 1\n  target_f1: true\n")


@pytest.mark.slow
@pytest.mark.skipif(platform.machine().lower() in ("aarch64", "arm64"), reason="real HTP latency there")
def test_search_on_qnn_refuses_emulated_latency_then_reports_htp_f1(tmp_path: Path) -> None:
    assert "name: qnn" in QNN_CONFIG and "target_f1: true" in QNN_CONFIG
    refusing = tmp_path / "refusing.yaml"
    refusing.write_text(QNN_CONFIG, encoding="utf-8")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHAI_AML_")}
    proc = subprocess.run(
        [sys.executable, str(SEARCH), "--config", str(refusing), "--output", str(out), "--iterations", "1",
         "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "SimulatedLatencyError" in proc.stderr and "allow_simulated_latency" in proc.stderr, proc.stderr[
        -3000:
    ]

    allowing = tmp_path / "allowing.yaml"
    allowing.write_text(QNN_CONFIG + "  allow_simulated_latency: true\n", encoding="utf-8")
    done = run_search(allowing, out)
    rows = read_results(out)
    assert len(rows) == 2
    with open_store(StoreConfig(path=out / "store")) as store:
        for r in rows:
            measured = store.get("tiny-latency", "id_" + r["archid"])
            assert measured is not None and measured["status"] == "complete"
            assert measured["latency_simulated"] is True and not measured["benchmark_only"]
            assert measured["quantized_model"] == "quantized/model_ctx.onnx"
            assert float(r["f1_target"]) == pytest.approx(measured["f1_1k"])
            assert float(r["f1_onnx"]) == pytest.approx(measured["f1_onnx"])
            assert float(r["latency_ms"]) == pytest.approx(measured["mean"])
    assert "f1_onnx   f1_1k" in done.stderr and "Pareto front" in done.stderr
