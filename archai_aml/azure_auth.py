"""Authenticating to Azure and reaching an Azure ML workspace, shared by the job runner, the runner job,
``archai-aml workspace`` and the pipeline steps' model registry.

Credentials (:func:`azure_credential`): inside an Azure ML job that runs with the user's identity
(``OBO_ENDPOINT`` is set, or the Spark OBO token provider), :class:`azure.ai.ml.identity.AzureMLOnBehalfOfCredential`;
everywhere else :class:`azure.identity.DefaultAzureCredential` (environment, managed identity, Azure CLI...),
with ``identity_client_id`` naming a user-assigned managed identity.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from archai_aml._optional import require

if TYPE_CHECKING:
    from archai_aml.config import AzureMLConfig

__all__ = ["azure_credential", "inside_azureml_job", "ml_client"]

log = logging.getLogger(__name__)


def inside_azureml_job(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs inside an Azure ML job that may use the on-behalf-of credential."""
    env = os.environ if env is None else env
    return bool(env.get("AZUREML_RUN_ID")) and bool(
        env.get("OBO_ENDPOINT") or env.get("AZUREML_DATAPREP_TOKEN_PROVIDER") == "sparkobo"
    )


def azure_credential(client_id: str | None = None, env: Mapping[str, str] | None = None) -> Any:
    """``AzureMLOnBehalfOfCredential`` inside an Azure ML job run as the user, else ``DefaultAzureCredential``."""
    if inside_azureml_job(env):
        require("azure.ai.ml", feature="authenticating to Azure")
        from azure.ai.ml.identity import AzureMLOnBehalfOfCredential

        log.info("using AzureMLOnBehalfOfCredential (inside an Azure ML job)")
        return AzureMLOnBehalfOfCredential()
    require("azure.identity", feature="authenticating to Azure")
    from azure.identity import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(managed_identity_client_id=client_id)
    return DefaultAzureCredential()


def ml_client(aml: AzureMLConfig, credential: Any = None, *, feature: str = "an Azure ML workspace") -> Any:
    """The ``MLClient`` of the ``aml:`` section's workspace (the ``azure`` extra)."""
    require("azure.ai.ml", feature=feature)
    from azure.ai.ml import MLClient

    ws = aml.workspace
    return MLClient(
        credential=credential or azure_credential(aml.identity_client_id),
        subscription_id=ws.subscription_id,
        resource_group_name=ws.resource_group,
        workspace_name=ws.workspace_name,
    )
