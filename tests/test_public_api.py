"""The top-level API: every public name imports from ``archai_aml``; ``import archai_aml`` loads neither
torch, archai nor the Azure SDK (a fresh interpreter says so); without the Azure SDK everything imports and
only the parts that use Azure fail, naming the extra to install."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import archai_aml

ROOT = Path(__file__).resolve().parents[1]


def test_design_names_import_from_the_top_level() -> None:
    from archai_aml import (  # noqa: F401 - the import is the test
        AmlPartialTrainingEvaluator,
        AzureMLJobRunner,
        LocalJobRunner,
        RemoteAzureBenchmarkEvaluator,
        get_target,
        load_config,
        open_store,
        start_training_pipeline,
    )
    from archai_aml.evaluators import AmlPartialTrainingEvaluator as Defined

    assert AmlPartialTrainingEvaluator is Defined
    assert start_training_pipeline.__module__ == "archai_aml.pipelines.training"


@pytest.mark.parametrize("name", archai_aml.__all__)
def test_each_public_name(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from archai_aml import {name}", namespace)  # noqa: S102 - a name from our own __all__
    value = namespace[name]
    assert value is getattr(archai_aml, name)
    module = archai_aml._LAZY.get(name)
    if module is not None:  # the object its defining module holds, not a copy
        assert value is getattr(importlib.import_module(module), name)
    assert name in dir(archai_aml)


def test_all_lists_the_lazy_names_and_unknown_names_fail() -> None:
    assert set(archai_aml.__all__) == set(archai_aml._LAZY) | {
        "ArchaiAmlError",
        "MissingDependencyError",
        "__version__",
    }
    assert len(archai_aml.__all__) == len(set(archai_aml.__all__))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        archai_aml.nope  # noqa: B018


def run_python(code: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


IMPORT_ONLY = """
import json, sys, time
t = time.perf_counter()
import archai_aml
elapsed = time.perf_counter() - t
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "azure", "archai", "matplotlib", "onnxruntime", "pydantic"})
print(json.dumps({"seconds": elapsed, "heavy": heavy, "version": archai_aml.__version__}))
"""


def test_import_archai_aml_is_light_and_fast() -> None:
    out = run_python(IMPORT_ONLY)
    assert out["heavy"] == [], out
    assert out["version"] == archai_aml.__version__
    # measured here: about 3 ms (errors + _optional only); the bound leaves room for a loaded machine
    assert float(out["seconds"]) < 1.0, out  # type: ignore[arg-type]


WITHOUT_AZURE = """
import json, sys
sys.modules["azure"] = None  # as if the azure extra were not installed: every `import azure.x` fails
import archai_aml
from archai_aml import *  # every public name imports without the Azure SDK
from archai_aml import AzureMLJobRunner, MissingDependencyError, StoreConfig, build_training_pipeline, open_store
from archai_aml.config import AzureMLConfig, WorkspaceConfig
out = {}
def attempt(key, call):
    try:
        call()
        out[key] = "ok"
    except MissingDependencyError as exc:
        out[key] = str(exc)
attempt("embedded", lambda: open_store(StoreConfig(path=sys.argv[1] if len(sys.argv) > 1 else "st")).close())
attempt("azure_store", lambda: open_store(StoreConfig(backend="azure", account_name="acct")))
aml = AzureMLConfig(workspace=WorkspaceConfig(subscription_id="s", resource_group="g", workspace_name="w"))
attempt("aml_runner", lambda: AzureMLJobRunner.from_config(aml))
attempt("pipeline", lambda: build_training_pipeline("d", archai_aml.ArchaiAmlConfig(), StoreConfig(), ["id_a"], 1.0, "b"))
out["torch"] = "torch" in sys.modules
print(json.dumps(out))
"""


def test_without_the_azure_extra_only_azure_fails(tmp_path: Path) -> None:
    out = run_python(WITHOUT_AZURE.replace('"st"', repr(str(tmp_path / "store"))))
    assert out["embedded"] == "ok"
    for key in ("azure_store", "aml_runner", "pipeline"):
        assert "pip install 'archai-aml[azure]'" in str(out[key]), out
    assert "azure store backend" in str(out["azure_store"])
    assert "AzureMLJobRunner" in str(out["aml_runner"])
