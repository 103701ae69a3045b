"""The Azure store backend: an Azure Table for the status rows, a blob container for the files (the
``azure`` extra: azure-data-tables and azure-storage-blob). Names are imported on first use
(:mod:`archai_aml.store.azure.settings`, what the registry loads, needs no Azure SDK)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archai_aml._lazy import lazy_attributes

__all__ = [
    "AzureStore",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "AzureStore": "archai_aml.store.azure.store",
    },
)

if TYPE_CHECKING:
    from archai_aml.store.azure.store import AzureStore
