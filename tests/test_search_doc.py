"""docs/search.md's "Spending less per candidate" code block runs as shown (on an empty embedded store: the
predictor has no rows yet and refuses to predict, the search is built with the budget on val_iou only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archai_aml.config import StoreConfig
from archai_aml.errors import PredictorError
from archai_aml.store import open_store
from tests.pipeline_helpers import make_config
from tests.test_cost_search import GridSpace

ROOT = Path(__file__).resolve().parents[1]


def test_cost_aware_search_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "docs" / "search.md").read_text(encoding="utf-8")
    section = text[text.index("## Spending less per candidate") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    config = make_config(tmp_path, StoreConfig(path=tmp_path / "store", table_name="doc"))
    with open_store(config.store) as store:
        namespace = {"store": store, "config": config, "space": GridSpace()}
        exec(compile(code.group(1), "docs/search.md", "exec"), namespace)  # noqa: S102 - our own docs
        search = namespace["search"]
        assert search.budget_objectives == ["val_iou"] and search.init_budget == 0.25
        predictor = namespace["predictor"]
        assert predictor.rows == 0 and predictor.target == "cpu"
        with pytest.raises(PredictorError, match="needs 12"):
            predictor.predict({})
