"""The aihub target against qai-hub 0.56's real download and profile behaviour (issue 16, defects 5 and 8),
on the fake client (archai_aml.testing.aihub) checked against the client's own code."""

from __future__ import annotations

import json
import statistics
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from archai_aml.aihub import AiHubTarget
from archai_aml.testing.aihub import FakeHub, FakeModel
from archai_aml.testing.fixed_cost import tiny_model_bytes


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_model_bytes(classes=7, size=8))
    return path


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("server_name", ["model.onnx.zip", "model.dlc", "model.bin"])
def test_fake_download_path_is_the_clients(server_name: str, tmp_path: Path, model: Path) -> None:
    """Where the fake writes is where qai-hub 0.56's own ``_verify_download_path`` says the client writes."""
    from qai_hub.api_utils import _verify_download_path

    fake = FakeModel("m1", model.read_bytes(), server_name=server_name)
    for wanted in (tmp_path / "model.qdq.onnx", tmp_path / "compiled.dlc", tmp_path):
        _, expected = _verify_download_path(server_name, str(wanted), False)
        got = fake.download(str(wanted))
        assert got == expected and Path(got).is_file()


def test_quantize_keeps_the_onnx_it_downloads_and_compiles_to_a_dlc(model: Path, tmp_path: Path) -> None:
    target = AiHubTarget(device="Snapdragon X Elite CRD", client=FakeHub())  # runtime qnn_dlc
    bundle = target.quantize(model, [_images(1, seed=i) for i in range(3)], tmp_path / "q")
    qdq = tmp_path / "q" / "model.qdq.onnx"
    ops = {n.op_type for n in onnx.load(str(qdq)).graph.node}  # an ONNX model, not the .onnx.zip
    assert "QuantizeLinear" in ops and not list((tmp_path / "q").glob("*.onnx.zip"))
    with zipfile.ZipFile(bundle) as z:
        meta = json.loads(z.read("meta.json"))
        compiled = z.read("compiled.dlc")
        onnx.load_from_string(z.read("source.onnx"))  # the QDQ model, loadable
    assert meta["extension"] == ".dlc" and compiled[:2] == b"PK"  # the fake's DLC, not the ONNX itself
    info = target.info(bundle, tmp_path / "info")
    assert (info.macs, info.params) == (7 * 3 * 8 * 8, 7 * 3)
    assert target.run_batch(bundle, _images(2)).shape == (2, 7, 8, 8)


def test_onnx_runtime_bundle_unpacks_the_zipped_download(model: Path, tmp_path: Path) -> None:
    target = AiHubTarget(client=FakeHub(), runtime="onnx")
    bundle = target.convert(model, tmp_path / "c")
    with zipfile.ZipFile(bundle) as z:
        onnx.load_from_string(z.read("compiled.onnx"))


def test_benchmark_mean_is_the_hubs_estimate(model: Path, tmp_path: Path) -> None:
    hub = FakeHub()
    target = AiHubTarget(client=hub)
    conv = target.convert(model, tmp_path / "c")
    result = target.benchmark(conv, iterations=9)
    summary = list(hub.jobs.values())[-1].download_profile()["execution_summary"]
    assert result.mean_ms == summary["estimated_inference_time"] / 1000
    runs = [t / 1000 for t in summary["all_inference_times"]]
    assert result.samples_ms == runs and result.median_ms == statistics.median(runs)
    assert result.stdev_ms == pytest.approx(statistics.stdev(runs))
    source = target.source("benchmark", conv)
    assert "mean = estimated_inference_time" in source and "all_inference_times (9 runs)" in source
