"""The Azure store backend: an Azure Table for the status rows, a blob container for the files (the
``azure`` extra: azure-data-tables and azure-storage-blob)."""

from archai_aml.store.azure.store import AzureStore

__all__ = ["AzureStore"]
