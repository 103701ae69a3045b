"""The ``aihub`` target on a qai-hub client faked at its boundary (archai_aml.testing.aihub.FakeHub): real
qai_hub Device/JobStatus objects and profile dicts, onnxruntime computing every output; and a runner
taking a row to completion on the embedded store."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from archai_aml.aihub import AiHubTarget, hub_client
from archai_aml.config import StoreConfig
from archai_aml.errors import TargetError
from archai_aml.runner import Runner, RunnerSettings
from archai_aml.store import open_store
from archai_aml.targets import get_target
from archai_aml.testing.aihub import FakeHub
from archai_aml.testing.fixed_cost import tiny_model_bytes
from tests.runner_models import add_rows


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_model_bytes(classes=7, size=8))
    return path


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 8, 8)).astype(np.float32)


def _reference(model: Path, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])


def test_compile_quantize_profile_and_infer(model: Path, tmp_path: Path) -> None:
    hub = FakeHub(profile_runs=7)
    target = get_target("aihub", device="Snapdragon X Elite CRD", client=hub)
    assert isinstance(target, AiHubTarget)
    conv = target.convert(model, tmp_path / "conv")
    quant = target.quantize(model, [_images(1, seed=i) for i in range(4)], tmp_path / "q")
    with zipfile.ZipFile(quant) as z:
        meta = json.loads(z.read("meta.json"))
    assert meta["input"] == "input" and meta["device"] == "Snapdragon X Elite CRD"
    assert set(meta["jobs"]) == {"quantize", "compile"} and all(j in hub.jobs for j in meta["jobs"].values())
    info = target.info(quant, tmp_path / "info")
    assert (info.macs, info.params) == (7 * 3 * 8 * 8, 7 * 3)
    x = _images(5, seed=3)
    ref = _reference(model, x)
    np.testing.assert_allclose(target.run_batch(conv, x), ref, rtol=1e-5, atol=1e-5)
    yq = target.run_batch(quant, x)
    assert yq.shape == ref.shape and 0 < np.abs(yq - ref).max() < 0.2 * np.abs(ref).max()
    result = target.benchmark(quant, iterations=9)
    # the profile's all_inference_times are microseconds: 9 iterations, reported in ms
    assert len(result.samples_ms) == 9 and result.mean_ms > 0 and result.stdev_ms >= 0
    profile_job = list(hub.jobs.values())[-1]
    summary = profile_job.download_profile()["execution_summary"]
    assert result.samples_ms == [t / 1000 for t in summary["all_inference_times"]]
    assert len(hub.models) == 2 + 1 + 2  # 2 compiled + 1 QDQ + 2 uploads (each bundle uploaded once)


def test_failed_compile_names_the_job(model: Path, tmp_path: Path) -> None:
    hub = FakeHub(fail_compile="Failed to compile: op Hardmax is not supported on the HTP")
    target = AiHubTarget(client=hub)
    with pytest.raises(
        TargetError,
        match=r"AI Hub compile job j[0-9a-f]+ on Samsung Galaxy S24 \(Family\) ended FAILED: .*Hardmax",
    ):
        target.convert(model, tmp_path / "conv")


def test_timed_out_profile_names_the_job(model: Path, tmp_path: Path) -> None:
    hub = FakeHub(stuck={"profile"})
    target = AiHubTarget(client=hub, timeout_s=2)
    conv = target.convert(model, tmp_path / "conv")
    with pytest.raises(
        TargetError, match=r"AI Hub profile job (j[0-9a-f]+) .* did not finish in 2 s.*jobs/j"
    ):
        target.benchmark(conv, iterations=3)
    # inference (not profiling) still works on the same client
    assert target.run_batch(conv, _images(2)).shape == (2, 7, 8, 8)
    inference = list(hub.jobs)[-1]
    # the row names the jobs of its own step and model only: not the timed-out profile job
    assert (
        target.source("f1", conv) == f"Qualcomm AI Hub inference job(s) {inference} on {target.device_name}"
    )
    other = tmp_path / "other.onnx"
    other.write_bytes(model.read_bytes())
    assert target.source("benchmark", other).endswith("job(s) (none) on " + target.device_name)


def test_unknown_device_and_token_handling(model: Path, tmp_path: Path, monkeypatch, caplog) -> None:
    import qai_hub

    with pytest.raises(qai_hub.UserError, match="not available"):
        AiHubTarget(device="Nokia 3310", client=FakeHub()).convert(model, tmp_path / "c")
    secret = "tok-" + "x" * 20
    monkeypatch.setenv("QAI_HUB_API_TOKEN", secret)
    with caplog.at_level(logging.DEBUG):
        client = hub_client()
    assert isinstance(client, qai_hub.Client) and client.config.api_token == secret
    assert secret not in caplog.text
    monkeypatch.delenv("QAI_HUB_API_TOKEN")
    assert hub_client() is qai_hub  # the module: its global client reads ~/.qai_hub/client.ini


def test_runner_takes_a_row_to_complete_on_aihub(tmp_path: Path) -> None:
    config = StoreConfig(backend="embedded", path=tmp_path / "store", table_name="aihub")
    settings = RunnerSettings(
        experiment="hub", max_benchmark_runs=2, working=tmp_path / "work", lock_dir=tmp_path / "lock",
        lease_ttl=5.0, poll_interval=0.05, benchmark_iterations=4, calibration_images=2,
        f1_onnx_images=6, f1_1k_images=6, f1_10k_images=6, seed=0,
    )  # fmt: skip
    with open_store(config) as store:
        (name,) = add_rows(store, "hub", 1, size=16)
        runner = Runner(store, AiHubTarget(client=FakeHub()), settings)
        assert runner.run(once=True) == 1 + 2 + 4
        row = store.get("hub", name)
    assert row is not None and row["status"] == "complete", row
    assert row["quantized_model"] == "quantized/model.quant.aihub.zip"
    assert (row["macs"], row["params"]) == (7 * 3 * 16 * 16, 21)
    runs = json.loads(row["total_inference_avg"])
    assert len(runs) == 2 and all(r > 0 for r in runs) and row["stdev"] >= 0
    for col in ("f1_onnx", "f1_1k", "f1_1k_f", "f1_10k"):
        assert 0.0 <= row[col] <= 1.0
    assert row["f1_1k_f"] == pytest.approx(row["f1_onnx"], abs=1e-9)  # same float model, same images
    sources = json.loads(row["sources"])  # where each figure came from: the Hub jobs by id
    assert sources["mean"].startswith("Qualcomm AI Hub profile job(s) ") and "(none)" not in sources["mean"]
    for col in ("f1_1k", "f1_1k_f", "f1_10k"):
        assert sources[col].startswith("Qualcomm AI Hub inference job(s) ") and "(none)" not in sources[col]
    assert len({sources["f1_1k"], sources["f1_10k"]}) == 2  # each run names its own jobs
    assert "CPUExecutionProvider" in sources["f1_onnx"] and "ONNX graph" in sources["macs"]


def test_missing_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "qai_hub", None)  # as if qai-hub were not installed
    with pytest.raises(TargetError, match=r"pip install 'archai-aml\[aihub\]'"):
        get_target("aihub")
    monkeypatch.setitem(sys.modules, "archai_aml.aihub.target", None)
    with pytest.raises(
        TargetError, match=r"target 'aihub' needs archai_aml.aihub.target.*archai-aml\[aihub\]"
    ):
        get_target("aihub")


def test_target_options_come_from_config_and_command_line(tmp_path: Path) -> None:
    import argparse

    from archai_aml.config import load_config
    from archai_aml.errors import ConfigError
    from archai_aml.runner.cli import runner_target_settings

    # each backend validates its own section: snpe's sdk_root in an aihub section fails, naming both
    with pytest.raises(ConfigError, match=r"target\.sdk_root: .*target 'aihub' has no such setting"):
        load_config({"target": {"name": "aihub", "hub_device": "X", "sdk_root": str(tmp_path)}})
    aihub = load_config({"target": {"name": "aihub", "hub_device": "Snapdragon X Elite CRD"}})
    snpe = load_config({"target": {"name": "snpe", "sdk_root": str(tmp_path), "htp_socs": "sm8650"}})
    args = argparse.Namespace(target=None, target_option=[], qnn_option=[], sdk_root=None, hub_device=None)
    assert runner_target_settings(aihub, args).factory_kwargs() == {"device": "Snapdragon X Elite CRD"}
    assert runner_target_settings(snpe, args).factory_kwargs(device="SER") == {
        "sdk_root": tmp_path,
        "device": "SER",
        "htp_socs": "sm8650",
    }
    args.hub_device = "Samsung Galaxy S23 (Family)"
    assert runner_target_settings(aihub, args).factory_kwargs() == {"device": "Samsung Galaxy S23 (Family)"}
    args.hub_device, args.sdk_root = None, tmp_path / "other"
    assert runner_target_settings(snpe, args).factory_kwargs()["sdk_root"] == tmp_path / "other"
    with pytest.raises(ConfigError, match=r"sdk_root \(target 'aihub'\)"):
        runner_target_settings(aihub, args)  # --sdk-root is snpe's
    args.sdk_root, args.target = None, "cpu"
    assert runner_target_settings(aihub, args).factory_kwargs() == {}  # common fields carry over, no others


def test_docs_yaml_of_the_snpe_and_aihub_sections_validate(tmp_path: Path) -> None:
    import re

    from archai_aml.config import load_config

    text = (Path(__file__).resolve().parents[1] / "docs" / "qualcomm.md").read_text(encoding="utf-8")
    names = []
    for section in ("## snpe", "## aihub"):
        body = text.split(section + "\n", 1)[1].split("\n## ", 1)[0]
        (yaml_block,) = re.findall(r"```yaml\n(.*?)```", body, flags=re.S)
        path = tmp_path / "c.yaml"
        path.write_text(yaml_block, encoding="utf-8")
        names.append(load_config(path, env={"SNPE_ROOT": str(tmp_path)}).target)
    assert (names[0].name, names[0].sdk_root, names[0].htp_socs) == ("snpe", tmp_path, "sm8650")
    assert (names[1].name, names[1].hub_device) == ("aihub", "Samsung Galaxy S24 (Family)")
