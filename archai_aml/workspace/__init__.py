"""Azure ML workspace setup: the clusters, environment (a wheel of this checkout) and identity-based
datastores pipelines use."""

from archai_aml.workspace.environment import (
    EnvironmentBuild,
    environment_reference,
    prepare_environment,
)
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
    "EnvironmentBuild",
    "TABLE_ROLE",
    "ResourcePlan",
    "WorkspaceResources",
    "environment_reference",
    "plan_workspace",
    "prepare_environment",
    "role_instructions",
    "setup_workspace",
    "storage_account",
    "upload_dataset",
]
