"""Azure storage connection strings, parsed without the Azure SDK (so light modules can read them)."""

from __future__ import annotations

from dataclasses import dataclass

from archai_aml.errors import ConfigError

__all__ = ["DEV_ACCOUNT", "DEV_ACCOUNT_KEY", "ConnectionSettings", "parse_connection_string"]

#: Azurite's (the emulator's) well-known account and key: public, documented, nobody's secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


# ------------------------------------------------------------------------------------ connection strings
@dataclass(frozen=True)
class ConnectionSettings:
    """What a connection string says: endpoints plus an account key or a SAS (``repr`` hides both)."""

    table_url: str
    blob_url: str
    account_name: str | None
    account_key: str | None = None
    sas_token: str | None = None

    def __repr__(self) -> str:
        auth = "account key" if self.account_key else "SAS" if self.sas_token else "no secret"
        return f"ConnectionSettings(table_url={self.table_url!r}, blob_url={self.blob_url!r}, {auth})"


def parse_connection_string(connection_string: str) -> ConnectionSettings:
    """Endpoints and credentials of an Azure storage connection string (Azurite's shortcut included).

    Raises :class:`ConfigError` (naming the missing part, never echoing the string) when it is incomplete.
    """
    parts: dict[str, str] = {}
    for item in connection_string.strip().split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError("store.connection_string: every part must be Key=Value (separated by ';')")
        parts[key.strip().lower()] = value.strip()
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        proxy = parts.get("developmentstorageproxyuri", "http://127.0.0.1").rstrip("/")
        return ConnectionSettings(
            table_url=f"{proxy}:10002/{DEV_ACCOUNT}",
            blob_url=f"{proxy}:10000/{DEV_ACCOUNT}",
            account_name=DEV_ACCOUNT,
            account_key=DEV_ACCOUNT_KEY,
        )
    account = parts.get("accountname")
    protocol = parts.get("defaultendpointsprotocol", "https")
    suffix = parts.get("endpointsuffix", "core.windows.net")
    table_url = parts.get("tableendpoint") or (f"{protocol}://{account}.table.{suffix}" if account else None)
    blob_url = parts.get("blobendpoint") or (f"{protocol}://{account}.blob.{suffix}" if account else None)
    if not table_url or not blob_url:
        raise ConfigError(
            "store.connection_string: give AccountName (with EndpointSuffix) or both TableEndpoint and "
            "BlobEndpoint"
        )
    account_key = parts.get("accountkey") or None
    sas = parts.get("sharedaccesssignature") or None
    if account_key is None and sas is None:
        raise ConfigError("store.connection_string: give AccountKey or SharedAccessSignature")
    if account_key is not None and account is None:
        raise ConfigError("store.connection_string: AccountKey needs AccountName")
    return ConnectionSettings(
        table_url=table_url.rstrip("/"),
        blob_url=blob_url.rstrip("/"),
        account_name=account,
        account_key=account_key,
        sas_token=sas.lstrip("?") if sas else None,
    )
