"""Azure ML workspace setup: the clusters, environment and identity-based datastores pipelines use."""

from archai_aml.workspace.setup import (
    BLOB_ROLE,
    TABLE_ROLE,
    ResourcePlan,
    WorkspaceResources,
    plan_workspace,
    role_instructions,
    setup_workspace,
    storage_account,
    upload_dataset,
)

__all__ = [
    "BLOB_ROLE",
    "TABLE_ROLE",
    "ResourcePlan",
    "WorkspaceResources",
    "plan_workspace",
    "role_instructions",
    "setup_workspace",
    "storage_account",
    "upload_dataset",
]
