"""The status row's one definition (archai_aml.status_row): the sets derived from it, docs/store.md's
column table, and rows with columns archai-aml does not know round-tripping through both stores."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from archai_aml.evaluators import remote_benchmark
from archai_aml.pareto.target_scores import TARGET_F1
from archai_aml.plots.data import F1_COLUMNS as PLOT_F1
from archai_aml.runner.queue import F1_COLUMNS as QUEUE_F1
from archai_aml.status_row import F1_COLUMNS, RESET_COLUMNS, StatusRow, columns_table, status_columns
from archai_aml.store import Store
from archai_aml.store.cli import table_columns

ROOT = Path(__file__).resolve().parents[1]


def test_the_derived_sets_are_the_ones_the_modules_use() -> None:
    # the sets the modules spelled out by hand before, now taken from the model
    assert set(RESET_COLUMNS) == {
        "mean", "stdev", "total_inference_avg", "macs", "params", "quantized", "f1_onnx", "f1_1k",
        "f1_1k_f", "f1_10k", "error", "completed", "priority", "converted_model", "quantized_model",
        "latency_simulated", "median", "min", "total_inference_median",
    }  # fmt: skip
    assert remote_benchmark.RESET_COLUMNS == RESET_COLUMNS
    assert QUEUE_F1 == F1_COLUMNS == ("f1_onnx", "f1_1k", "f1_1k_f", "f1_10k")
    assert PLOT_F1 == ("f1_1k", "f1_10k", "f1_1k_f", "f1_onnx")  # the plots' preference
    assert TARGET_F1 == ("f1_1k", "f1_10k", "f1_1k_f")
    for column in RESET_COLUMNS:  # every reset column is a declared one
        assert column in StatusRow.model_fields


def test_the_status_command_orders_known_columns_by_the_model_and_keeps_unknown_ones() -> None:
    rows = [
        {"my_metric": 1.0, "f1_1k": 0.5, "name": "a", "status": "complete", "mean": 2.0, "lease_token": "t"}
    ]
    assert table_columns(rows) == status_columns(rows) == ["name", "status", "mean", "f1_1k", "my_metric"]
    assert table_columns(rows, ["lease_token"]) == ["lease_token"]  # hidden columns on request


def test_docs_store_md_holds_the_generated_column_table() -> None:
    text = (ROOT / "docs" / "store.md").read_text(encoding="utf-8")
    table = text.split("<!-- status-row:", 1)[1].split("-->\n", 1)[1].split("<!-- /status-row -->", 1)[0]
    assert table == columns_table(), "docs/store.md: paste archai_aml.status_row.columns_table() again"
    assert "| `f1_1k_f` | float | benchmark | runners | cleared |" in table


def test_unknown_columns_round_trip_through_the_store(store: Store) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    written = StatusRow(status="complete", mean=3, f1_1k=0.75, completed=when, my_target_power_mw=412.5)
    assert written.values()["mean"] == 3 and isinstance(written.values()["mean"], int)  # not made a float
    store.create("exp", "id_001", {**written.values(), "my_flag": True, "my_note": "board 7"})
    entity = store.get("exp", "id_001")
    assert entity is not None
    row = StatusRow.from_entity(entity)
    assert row.f1_1k == 0.75 and row.completed == when and row.name == "id_001" and row.version
    assert row.model_extra == {"my_target_power_mw": 412.5, "my_flag": True, "my_note": "board 7"}
    back = {k: v for k, v in row.values().items() if not k.startswith("_") and k not in ("partition", "name")}
    store.replace("exp", "id_001", back)
    again = store.get("exp", "id_001")
    assert again is not None
    assert {k: v for k, v in again.items() if not k.startswith("_")} == {
        k: v for k, v in entity.items() if not k.startswith("_")
    }
