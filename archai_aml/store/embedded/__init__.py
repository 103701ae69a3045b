"""The embedded store backend: SQLite (WAL) for the status table, a files folder for the blobs."""

from archai_aml.store.embedded.store import EmbeddedStore

__all__ = ["EmbeddedStore"]
