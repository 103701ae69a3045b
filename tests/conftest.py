"""Shared fixtures: a store of each backend (embedded SQLite, and Azure on a real Azurite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from archai_aml.config import StoreConfig
from archai_aml.store import Store, open_store

pytest_plugins = ["tests.azurite"]

BACKENDS = ["embedded", pytest.param("azure", marks=pytest.mark.azure)]


def unique_table() -> str:
    return "t" + uuid.uuid4().hex[:16]


@pytest.fixture(params=BACKENDS)
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> StoreConfig:
    """A StoreConfig for a fresh table (and container) of each backend; picklable, for child processes."""
    if request.param == "embedded":
        return StoreConfig(backend="embedded", path=tmp_path / "store", table_name=unique_table())
    azurite = request.getfixturevalue("azurite")
    return azurite.store_config(table_name=unique_table(), container_name="c" + uuid.uuid4().hex[:16])


@pytest.fixture
def store(store_config: StoreConfig) -> Iterator[Store]:
    with open_store(store_config) as s:
        yield s
