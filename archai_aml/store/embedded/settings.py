"""Settings of the ``embedded`` store (SQLite + files, the default), the registry's entry point for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from archai_aml.config import StoreConfig

__all__ = ["EmbeddedStoreConfig"]


class EmbeddedStoreConfig(StoreConfig):
    """``embedded``: a SQLite database and a files folder under ``path``
    (:class:`archai_aml.store.embedded.EmbeddedStore`)."""

    factory = "archai_aml.store.embedded.store:EmbeddedStore"

    backend: Literal["embedded"] = "embedded"
    path: Path = Path(".archai_aml/store")

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        return {
            "path": self.path,
            "table_name": self.table_name,
            "container_name": self.container_name,
            "max_concurrency": self.max_concurrency,
            **{"progress": self.progress, **context},
        }

    def job_environment(self, include_secrets: bool) -> dict[str, str]:
        from archai_aml.store import ENV_STORE

        return {ENV_STORE: str(Path(self.path).resolve())}
