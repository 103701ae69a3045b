"""docs/configuration.md is what archai_aml._config_doc generates from the pydantic models: a field added to
archai_aml/config.py without a meaning, or without regenerating the page, fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from archai_aml._config_doc import MEANINGS, _models, generate
from archai_aml.config import ArchaiAmlConfig, TargetConfig

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "python -m archai_aml._config_doc > docs/configuration.md"


def test_committed_page_is_the_generated_one() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == generate(), f"docs/configuration.md is stale: run `{REGENERATE}`"


def test_every_field_of_every_model_is_on_the_page() -> None:
    page = generate()
    seen = 0
    for model in (ArchaiAmlConfig, TargetConfig):
        for name in model.model_fields:
            assert f"| `{name}` |" in page
            seen += 1
    assert seen > 15 and f"## {TargetConfig.__name__}" in page
    assert "| `max_benchmark_runs` | int (≥ 1) | `5` |" in page


def test_a_field_without_meaning_is_named() -> None:
    class Extra(BaseModel):
        documented: int = Field(default=1, description="has its own description")
        undocumented: str = "x"

    class Root(BaseModel):
        extra: Extra = Extra()

    with pytest.raises(KeyError, match=r"Root\.extra.*Extra\.undocumented"):
        generate(Root, {})
    page = generate(Root, {"Root.extra": "the extra part", "Extra.undocumented": "a string"})
    assert "| `documented` | int | `1` | has its own description |" in page
    assert "At `extra`." in page


def test_no_meaning_of_a_field_that_is_gone() -> None:
    fields = {f"{m.__name__}.{n}" for m, _ in _models(ArchaiAmlConfig) for n in m.model_fields}
    assert sorted(set(MEANINGS) - fields) == []
