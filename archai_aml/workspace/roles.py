"""Who needs which Azure role: the data roles job identities need on the storage account, and the workspace
roles that may create each resource :func:`~archai_aml.workspace.setup.setup_workspace` creates."""

from __future__ import annotations

from urllib.parse import urlparse

from archai_aml.config import AzureMLConfig, StoreConfig
from archai_aml.store.azure.settings import AzureStoreConfig
from archai_aml.store.connection import DEV_ACCOUNT, parse_connection_string

__all__ = ["BLOB_ROLE", "CREATE_ROLES", "TABLE_ROLE", "role_instructions", "storage_account"]

#: Azure RBAC roles the job identity needs on the storage account (blobs: models, data; tables: status).
BLOB_ROLE = "Storage Blob Data Contributor"
TABLE_ROLE = "Storage Table Data Contributor"
#: Built-in workspace roles that may create each kind of resource ("Manage access to Azure Machine Learning
#: workspaces", https://learn.microsoft.com/azure/machine-learning/how-to-assign-roles: AzureML Data Scientist
#: "can perform all actions within an Azure Machine Learning workspace, except for creating or deleting
#: compute resources"; AzureML Compute Operator "can create, manage, delete, and access compute resources").
CREATE_ROLES = {
    "compute": "Owner, Contributor or AzureML Compute Operator (AzureML Data Scientist cannot create compute)",
    "environment": "Owner, Contributor or AzureML Data Scientist",
    "datastore": "Owner, Contributor or AzureML Data Scientist",
}


def storage_account(store_config: StoreConfig | None) -> tuple[str, str] | None:
    """(account name, endpoint suffix) of an Azure store, read from its non-secret parts; None if unknown.

    The suffix is ``core.windows.net`` unless the blob URL or connection string says otherwise (sovereign
    clouds). Azurite / development storage has no Azure account and yields None.
    """
    if not isinstance(store_config, AzureStoreConfig):
        return None
    suffix = "core.windows.net"
    account = store_config.account_name
    blob_url = store_config.blob_url
    if not account and not blob_url and store_config.connection_string is not None:
        settings = parse_connection_string(store_config.connection_string.get_secret_value())
        if settings.account_name == DEV_ACCOUNT:
            return None
        account, blob_url = settings.account_name, settings.blob_url
    if blob_url:
        host = urlparse(blob_url).hostname or ""
        head, sep, rest = host.partition(".blob.")
        if sep and head:
            account = account or head
            suffix = rest
    return (account, suffix) if account else None


def role_instructions(aml: AzureMLConfig, store_config: StoreConfig | None) -> str:
    """Text telling which identity needs which roles on the storage account (never run, only shown)."""
    account = storage_account(store_config)
    name = account[0] if account else "<storage-account>"
    who = (
        f"the user-assigned identity {aml.identity_client_id}"
        if aml.identity_client_id
        else "every user who submits jobs (jobs run with the submitting user's identity)"
    )
    assignee = f"--assignee {aml.identity_client_id or '<user-or-identity-object-id>'}"
    if aml.identity_resource_id:  # by object id: a just-created identity may not be found by client id yet
        principal = f"$(az identity show --ids {aml.identity_resource_id} --query principalId -o tsv)"
        assignee = f"--assignee-object-id {principal} --assignee-principal-type ServicePrincipal"
    scope = (
        f"$(az storage account show -n {name} --query id -o tsv)"
        if account
        else "<storage account resource id>"
    )
    lines = [
        f"Jobs reach storage with their identity: grant {who} these roles on storage account {name}:",
        f"  {BLOB_ROLE} (models and data containers)",
        f"  {TABLE_ROLE} (the status table)",
    ]
    for role in (BLOB_ROLE, TABLE_ROLE):
        lines.append(f'  az role assignment create {assignee} --role "{role}" --scope {scope}')
    return "\n".join(lines)
