"""Pytest plugin: a session-scoped Azurite on free loopback ports (fixture ``azurite``).

The binary comes from ``AZURITE_BIN``, ``.azurite/node_modules/.bin/azurite`` or ``PATH``; when none is found
the tests that need it fail (they are never skipped) with a message saying to run ``make azurite``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from archai_aml.testing.azurite import Azurite, AzuriteError, run_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A running in-memory Azurite: ``.connection_string``, ``.table_url``, ``.blob_url``, ``.store_config()``."""
    try:
        manager = run_azurite()
        instance = manager.__enter__()
    except AzuriteError as exc:
        pytest.fail(f"{exc} (the azure tests need it: run `make azurite`)", pytrace=False)
    try:
        yield instance
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture
def persisted(tmp_path: Path) -> Iterator[Azurite]:
    """An Azurite of the test's own, persisted under ``tmp_path`` so that ``stop()`` / ``start()`` (or
    ``outage(seconds)``) keep its data and ports: a storage outage."""
    try:
        manager = run_azurite(location=tmp_path / "azurite")
        instance = manager.__enter__()
    except AzuriteError as exc:
        pytest.fail(f"{exc} (the azure tests need it: run `make azurite`)", pytrace=False)
    try:
        yield instance
    finally:
        manager.__exit__(None, None, None)
