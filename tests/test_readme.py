"""The README's snippets stay true: its YAML loads and validates, its Python builds both evaluators."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archai_aml.config import dump_config, load_config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(lang: str, index: int = 0) -> str:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)[index]


def test_readme_opens_with_the_two_commands() -> None:
    first = block("bash", 0)
    assert first.splitlines()[0].startswith("make demo") and first.splitlines()[1].startswith("make test")


def test_readme_yaml_loads_and_masks_its_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0LWtleS12YWx1ZQ=="
    monkeypatch.setenv("MODEL_STORAGE_CONNECTION_STRING", secret)
    for var in ("AZURE_SUBSCRIPTION_ID", "AML_RESOURCE_GROUP", "AML_WORKSPACE_NAME"):
        monkeypatch.setenv(var, var.lower())
    path = tmp_path / "c.yaml"
    path.write_text(block("yaml"), encoding="utf-8")
    config = load_config(path)
    assert config.store.backend == "azure" and config.aml is not None
    assert config.aml.workspace.workspace_name == "aml_workspace_name"
    assert config.aml.training_cluster.max_instances == 8
    assert "${{inputs.data}}" in config.training.command
    assert "c2VjcmV0LWtleS12YWx1ZQ" not in dump_config(config) + repr(config)


def test_readme_python_builds_both_evaluators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code = block("python").replace('"out/training"', repr(str(tmp_path / "training")))
    config_text = (ROOT / "examples/face_segmentation/config.yaml").read_text(encoding="utf-8")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        config_text.replace(".archai_aml/store", str(tmp_path / "store")), encoding="utf-8"
    )
    code = code.replace('"examples/face_segmentation/config.yaml"', repr(str(config_path)))
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README, not stored data
    training, latency = namespace["training"], namespace["latency"]
    assert type(training).__name__ == "AmlPartialTrainingEvaluator"
    assert type(latency).__name__ == "RemoteAzureBenchmarkEvaluator"
    assert (tmp_path / "store").exists()


def test_readme_first_screen_shows_a_real_plot_and_the_gif() -> None:
    from PIL import Image

    first_screen = README.split("archai-aml extends", 1)[0]
    images = re.findall(r'<img src="([^"]+)"', first_screen)
    assert [Path(i).suffix for i in images] == [".png", ".gif"]
    for image in images:
        path = ROOT / image
        assert path.stat().st_size < 200_000, f"{image}: keep committed images small"
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.size[0] >= 400 and getattr(img, "n_frames", 1) == (4 if path.suffix == ".gif" else 1)
    assert re.search(r"\d+ min \d+ s wall", first_screen)  # how long it took, measured
