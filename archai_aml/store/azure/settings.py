"""Settings of the ``azure`` store (an Azure storage account, the ``azure`` extra), the registry's entry
point for it. Importing it needs no Azure SDK."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr, model_validator

from archai_aml.config import StoreConfig
from archai_aml.errors import ConfigError

__all__ = ["AzureStoreConfig"]


class AzureStoreConfig(StoreConfig):
    """``azure``: an Azure Table and a blob container (:class:`archai_aml.store.azure.AzureStore`). A full
    ``connection_string`` (Azurite's ``UseDevelopmentStorage=true`` too), or ``account_name``/``table_url``/
    ``blob_url`` with a ``sas_token``, or with an Azure AD identity (``DefaultAzureCredential``;
    ``managed_identity_client_id`` picks a user-assigned identity)."""

    factory = "archai_aml.store.azure.store:AzureStore.from_config"
    extra = "azure"

    backend: Literal["azure"] = "azure"
    connection_string: SecretStr | None = None
    account_name: str | None = None
    table_url: str | None = None
    blob_url: str | None = None
    sas_token: SecretStr | None = None
    managed_identity_client_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, data: Any) -> Any:
        # ``${VAR:-}`` with VAR unset (a job that reaches the store with its identity) means "not given"
        if isinstance(data, dict):
            return {
                k: None if k in ("connection_string", "sas_token") and v == "" else v for k, v in data.items()
            }
        return data

    @model_validator(mode="after")
    def _check_azure(self) -> AzureStoreConfig:
        if not (
            self.connection_string is not None or self.account_name or (self.table_url and self.blob_url)
        ):
            raise ValueError(
                "backend 'azure' needs connection_string, or account_name, or table_url and blob_url"
            )
        return self

    def resolved_urls(self) -> tuple[str, str]:
        """(table endpoint, blob endpoint) for the account-URL forms of the azure backend."""
        table = self.table_url or (
            f"https://{self.account_name}.table.core.windows.net" if self.account_name else None
        )
        blob = self.blob_url or (
            f"https://{self.account_name}.blob.core.windows.net" if self.account_name else None
        )
        if not table or not blob:
            raise ConfigError("store: set account_name, or both table_url and blob_url")
        return table, blob

    def job_environment(self, include_secrets: bool) -> dict[str, str]:
        from archai_aml.store import ENV_BLOB_URL, ENV_CLIENT_ID, ENV_STORE, ENV_TABLE_URL

        env: dict[str, str] = {}
        if include_secrets and self.connection_string is not None:
            env[ENV_STORE] = self.connection_string.get_secret_value()
            return env
        if self.account_name or (self.table_url and self.blob_url):
            table_url, blob_url = self.resolved_urls()
            env[ENV_TABLE_URL] = table_url
            env[ENV_BLOB_URL] = blob_url
            if self.managed_identity_client_id:
                env[ENV_CLIENT_ID] = self.managed_identity_client_id
        return env

    def http_counter(self) -> Any:
        from archai_aml.store.azure.http_counter import HttpCounter

        return HttpCounter()

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        counter = context.pop("http_counter", None)
        if counter is not None:
            context["per_call_policies"] = [*context.get("per_call_policies", []), counter]
        return {"config": self, **context}
