"""Rows of tiny real ONNX models for the runner tests, and the fixed-cost target's journal."""

from __future__ import annotations

import json
from typing import Any

from archai_aml.store import Store
from archai_aml.testing.fixed_cost import tiny_model_bytes


def add_rows(
    store: Store,
    experiment: str,
    count: int,
    *,
    size: int = 16,
    model: bytes | None = None,
    **columns: Any,
) -> list[str]:
    """Upload a model and create a ``new`` row for each of ``count`` models; returns their names."""
    data = model if model is not None else tiny_model_bytes(size=size)
    names = []
    for i in range(count):
        name = f"id_{i:03d}"
        store.upload_bytes(experiment, name, "model.onnx", data)
        values = {"status": "new", "shape": json.dumps([1, 3, size, size])}
        values.update(columns)
        store.create(experiment, name, values)
        names.append(name)
    return names


def journal(path: Any, *, finished: bool = True) -> list[dict[str, Any]]:
    """The fixed-cost target's journal lines: finished calls (or only the start lines)."""
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        return []
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [j for j in lines if (j["end"] is not None) == finished]


def legacy_row(store: Store, store_config: Any, experiment: str, name: str, values: dict[str, Any]) -> None:
    """Write a row the way a store from before the key rules could hold it (any name, ``..`` included),
    below the store's own checks: SQLite directly on the embedded backend, the table SDK on Azure."""
    from archai_aml.store.azure import AzureStore
    from archai_aml.store.embedded import EmbeddedStore
    from archai_aml.store.embedded.codec import _encode_columns

    if isinstance(store, EmbeddedStore):
        import sqlite3

        conn = sqlite3.connect(store.db_path)
        with conn:
            conn.execute("UPDATE version_counter SET value = value + 1 WHERE id = 0")
            version = conn.execute("SELECT value FROM version_counter WHERE id = 0").fetchone()[0]
            conn.execute(
                "INSERT INTO entities (tbl, partition, name, data, version, ts) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    store.table_name,
                    experiment,
                    name,
                    _encode_columns(values),
                    version,
                    "2026-01-01T00:00:00.000000",
                ),
            )
        conn.close()
        return
    assert isinstance(store, AzureStore)
    from azure.data.tables import TableClient

    secret = store_config.connection_string.get_secret_value()
    with TableClient.from_connection_string(secret, table_name=store.table_name) as table:
        table.create_entity({"PartitionKey": experiment, "RowKey": name, **values})
