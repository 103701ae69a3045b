"""The embedded store backend: SQLite (WAL) for the status table, a files folder for the blobs. Names are
imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archai_aml._lazy import lazy_attributes

__all__ = [
    "EmbeddedStore",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "EmbeddedStore": "archai_aml.store.embedded.store",
    },
)

if TYPE_CHECKING:
    from archai_aml.store.embedded.store import EmbeddedStore
