"""Create, once, the Azure ML resources that training pipelines and runner jobs use.

:func:`setup_workspace` is idempotent: each resource is looked up first (``get``) and created only when the
workspace answers ``ResourceNotFoundError``; a resource that exists is never recreated, and one that exists
with other settings is reported (a cluster of another VM size, an environment version with another image)
rather than silently replaced.

- clusters ``aml.training_cluster`` and ``aml.cpu_cluster``: ``AmlCompute`` with the configured size, scale
  settings and tier, carrying the user-assigned identity ``aml.identity_resource_id`` when one is set; a size
  on the retirement list of :mod:`archai_aml.workspace.vm_sizes` is warned about (``ResourcePlan.warnings``);
- environment ``aml.environment``: a Docker build context with a wheel of this checkout, the conda file and
  the image, versioned by a content hash (:mod:`archai_aml.workspace.environment`), referenced by pipelines
  as ``name:version``;
- datastores ``aml.datastores.models`` (the store's blob container, where pipelines write models) and
  ``aml.datastores.data`` (``data_container`` in the same account), both **identity-based**: created
  without account key or SAS, so Azure ML holds no secret and jobs reach storage with their own identity.

No secret of the store configuration (connection string, account key, SAS token) ever reaches an Azure ML
object or a log line: only the account name and endpoint suffix are read from it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from archai_aml.config import ArchaiAmlConfig, AzureMLConfig, ClusterConfig, StoreConfig
from archai_aml.errors import ConfigError, WorkspaceError
from archai_aml.workspace.environment import plan_environment
from archai_aml.workspace.plan import ResourcePlan, lookup
from archai_aml.workspace.roles import BLOB_ROLE, CREATE_ROLES, TABLE_ROLE, role_instructions, storage_account
from archai_aml.workspace.vm_sizes import retirement_warning

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

log = logging.getLogger(__name__)


@dataclass
class WorkspaceResources:
    """The names pipelines and runner jobs use, and what setup did."""

    training_cluster: str
    cpu_cluster: str
    environment: str
    models_datastore: str
    data_datastore: str
    plan: list[ResourcePlan]
    created: list[str]
    dry_run: bool

    def models_uri(self, experiment: str) -> str:
        """Where pipelines write an experiment's models (``azureml://datastores/<models>/paths/<exp>``)."""
        return f"azureml://datastores/{self.models_datastore}/paths/{experiment}"


def _cluster_identity(aml: AzureMLConfig) -> Any:
    if not aml.identity_resource_id:
        return None
    from azure.ai.ml.entities import IdentityConfiguration, ManagedIdentityConfiguration

    return IdentityConfiguration(
        type="user_assigned",
        user_assigned_identities=[ManagedIdentityConfiguration(resource_id=aml.identity_resource_id)],
    )


def _identity_ids(identity: Any) -> set[str]:
    ids = getattr(identity, "user_assigned_identities", None) or []
    return {str(getattr(i, "resource_id", "") or "").lower() for i in ids}


# ------------------------------------------------------------------------------------------- planning
def plan_cluster(ml_client: Any, cluster: ClusterConfig, aml: AzureMLConfig) -> ResourcePlan:
    from azure.ai.ml.entities import AmlCompute

    existing = lookup(ml_client.compute.get, f"compute cluster {cluster.name!r}", cluster.name)
    warnings = [w for w in [retirement_warning(cluster.size, what=f"compute {cluster.name}")] if w]
    if existing is None:
        entity = AmlCompute(
            name=cluster.name,
            size=cluster.size,
            min_instances=cluster.min_instances,
            max_instances=cluster.max_instances,
            idle_time_before_scale_down=cluster.idle_time_before_scale_down,
            tier=cluster.tier,
            identity=_cluster_identity(aml),
        )
        detail = (
            f"{cluster.size}, {cluster.min_instances}-{cluster.max_instances} nodes, {cluster.tier}, "
            f"scale down after {cluster.idle_time_before_scale_down}s idle"
        )
        if aml.identity_resource_id:
            detail += ", user-assigned identity"
        return ResourcePlan("compute", cluster.name, "create", detail, entity, cluster.name, warnings)
    differences = []
    size = getattr(existing, "size", None)
    if size and str(size).lower() != cluster.size.lower():
        differences.append(f"size is {size}, config says {cluster.size}")
        note = retirement_warning(str(size), what=f"the existing compute {cluster.name}")
        warnings += [note] if note else []
    if getattr(existing, "type", "amlcompute") not in (None, "amlcompute"):
        differences.append(f"type is {existing.type}, not amlcompute")
    for attr in ("min_instances", "max_instances"):
        have = getattr(existing, attr, None)
        if have is not None and have != getattr(cluster, attr):
            differences.append(f"{attr} is {have}, config says {getattr(cluster, attr)}")
    if aml.identity_resource_id and aml.identity_resource_id.lower() not in _identity_ids(
        getattr(existing, "identity", None)
    ):
        differences.append("the user-assigned identity aml.identity_resource_id is not attached")
    if differences:
        return ResourcePlan(
            "compute", cluster.name, "differs", "; ".join(differences), None, cluster.name, warnings
        )
    return ResourcePlan("compute", cluster.name, "exists", f"{size}", None, cluster.name, warnings)


def plan_datastore(
    ml_client: Any, name: str, account: tuple[str, str] | None, container: str, purpose: str
) -> ResourcePlan:
    from azure.ai.ml.entities import AzureBlobDatastore

    existing = lookup(ml_client.datastores.get, f"datastore {name!r}", name)
    if existing is None:
        if account is None:
            return ResourcePlan(
                "datastore",
                name,
                "blocked",
                f"{purpose}: the store has no Azure storage account (set store.backend: azure with "
                "store.account_name or store.blob_url)",
            )
        entity = AzureBlobDatastore(
            name=name,
            account_name=account[0],
            container_name=container,
            endpoint=account[1],
            description=f"archai-aml {purpose} (identity-based access, no stored credential)",
            credentials=None,
        )
        detail = f"{purpose}: {account[0]}/{container}, identity-based"
        return ResourcePlan("datastore", name, "create", detail, entity, name)
    where = f"{existing.account_name}/{getattr(existing, 'container_name', '?')}"
    if account is not None and (
        existing.account_name != account[0] or getattr(existing, "container_name", None) != container
    ):
        return ResourcePlan(
            "datastore",
            name,
            "conflict",
            f"{purpose}: points at {where}, the store is {account[0]}/{container}; choose another name in "
            "aml.datastores or delete that datastore (az ml datastore delete)",
        )
    credential_kind = type(getattr(existing, "credentials", None)).__name__
    if credential_kind in ("AccountKeyConfiguration", "SasTokenConfiguration"):
        return ResourcePlan(
            "datastore",
            name,
            "differs",
            f"{purpose}: {where} stores a {credential_kind} in the workspace; recreate it identity-based "
            "(az ml datastore delete, then archai-aml workspace setup)",
            None,
            name,
        )
    return ResourcePlan("datastore", name, "exists", f"{purpose}: {where}", None, name)


def plan_workspace(
    ml_client: Any,
    aml: AzureMLConfig,
    store_config: StoreConfig | None = None,
    *,
    project: Path | None = None,
) -> list[ResourcePlan]:
    """What :func:`setup_workspace` would do, from ``get`` calls only (nothing is created).

    ``project``: the checkout whose wheel goes into the environment (default: the one imported).
    """
    account = storage_account(store_config)
    stores = aml.datastores
    container = store_config.container_name if store_config is not None else "models"
    return [
        plan_cluster(ml_client, aml.training_cluster, aml),
        plan_cluster(ml_client, aml.cpu_cluster, aml),
        plan_environment(ml_client, aml.environment, root=project),
        plan_datastore(ml_client, stores.models, account, container, "models"),
        plan_datastore(ml_client, stores.data, account, stores.data_container, "data"),
    ]


# ------------------------------------------------------------------------------------------- creating
def _wait(poller: Any, what: str, *, progress: bool, poll_interval_s: float) -> Any:
    """``poller.result()``, with a progress bar of the elapsed seconds while ``poller.done()`` is False.

    Between checks it blocks in ``poller.wait(poll_interval_s)`` (returns as soon as the operation ends).
    """
    done = getattr(poller, "done", None)
    if callable(done):
        start = time.monotonic()
        wait = getattr(poller, "wait", None)
        with tqdm(desc=f"creating {what}", unit="s", disable=not progress, leave=False) as bar:
            while not done():
                if callable(wait):
                    wait(poll_interval_s)
                else:
                    time.sleep(poll_interval_s)
                bar.update(int(time.monotonic() - start) - bar.n)
    return poller.result()


def _create(ml_client: Any, item: ResourcePlan, *, progress: bool, poll_interval_s: float) -> Any:
    what = f"{item.kind} {item.name!r}"
    try:
        if item.kind == "compute":
            poller = ml_client.compute.begin_create_or_update(item.entity)
            return _wait(poller, what, progress=progress, poll_interval_s=poll_interval_s)
        if item.kind == "environment":
            return ml_client.environments.create_or_update(item.entity)
        if item.kind == "datastore":
            return ml_client.datastores.create_or_update(item.entity)
    except Exception as exc:
        roles = CREATE_ROLES.get(item.kind, "Owner or Contributor")
        quota = " and the VM quota of the cluster size" if item.kind == "compute" else ""
        retired = "".join(f"; {w}" for w in item.warnings)
        raise WorkspaceError(
            f"could not create {what}: {exc}{retired}; check your role on the workspace ({roles}){quota}, "
            "and the names in the aml configuration"
        ) from exc
    raise WorkspaceError(f"unknown resource kind {item.kind!r}")


def setup_workspace(
    ml_client: Any,
    config: ArchaiAmlConfig | AzureMLConfig,
    *,
    store_config: StoreConfig | None = None,
    dry_run: bool = False,
    progress: bool = True,
    poll_interval_s: float = 5.0,
    project: Path | None = None,
) -> WorkspaceResources:
    """Create what is missing among the clusters, environment and datastores; return their names.

    ``config`` is the whole configuration (its ``aml`` and ``store`` sections) or just the ``aml`` section
    with ``store_config`` given. ``dry_run`` only plans (``get`` calls, no create). Nothing is created when
    the plan has a conflict or a blocked item: a :class:`WorkspaceError` lists them first.
    """
    if isinstance(config, ArchaiAmlConfig):
        if config.aml is None:
            raise ConfigError("the configuration has no aml: section (workspace, clusters, environment)")
        aml = config.aml
        store_config = store_config if store_config is not None else config.store
    else:
        aml = config
    plan = plan_workspace(ml_client, aml, store_config, project=project)
    for item in plan:
        if item.action == "differs":
            log.warning("%s %s exists with other settings, left as is: %s", item.kind, item.name, item.detail)
        for warning in item.warnings:
            log.warning("%s", warning)
    problems = [item for item in plan if item.action in ("conflict", "blocked")]
    if problems and not dry_run:
        raise WorkspaceError(
            "workspace setup stopped before creating anything:\n"
            + "\n".join(f"  {p.kind} {p.name}: {p.detail}" for p in problems)
        )
    created: list[str] = []
    for item in plan:
        if item.action != "create":
            continue
        if dry_run:
            log.info("would create %s %s (%s)", item.kind, item.name, item.detail)
            continue
        log.info("creating %s %s (%s)", item.kind, item.name, item.detail)
        result = _create(ml_client, item, progress=progress, poll_interval_s=poll_interval_s)
        if item.kind == "environment" and getattr(result, "version", None):
            item.reference = f"{item.name}:{result.version}"
        created.append(f"{item.kind}:{item.name}")
    if any(item.kind == "datastore" and item.action == "create" for item in plan) and not dry_run:
        log.warning(role_instructions(aml, store_config))
    env_ref = next(item.reference for item in plan if item.kind == "environment")
    return WorkspaceResources(
        training_cluster=aml.training_cluster.name,
        cpu_cluster=aml.cpu_cluster.name,
        environment=env_ref or aml.environment.name,
        models_datastore=aml.datastores.models,
        data_datastore=aml.datastores.data,
        plan=plan,
        created=created,
        dry_run=dry_run,
    )


def upload_dataset(
    ml_client: Any,
    local_folder: str | Path,
    name: str,
    version: str,
    *,
    description: str | None = None,
    dry_run: bool = False,
) -> str:
    """Register ``local_folder`` as the ``uri_folder`` data asset ``name:version`` (uploaded by Azure ML).

    Returns ``azureml:name:version``, usable as ``training.data``. An asset that already exists is kept
    (versions are immutable): register a new version to change the data.
    """
    from azure.ai.ml.entities import Data

    folder = Path(local_folder)
    if not folder.is_dir():
        raise WorkspaceError(f"data folder {folder} does not exist or is not a folder")
    reference = f"azureml:{name}:{version}"
    if lookup(ml_client.data.get, f"data asset {name}:{version}", name=name, version=version) is not None:
        log.info("data asset %s:%s exists, not uploaded again", name, version)
        return reference
    if dry_run:
        log.info("would upload %s as data asset %s:%s", folder, name, version)
        return reference
    asset = Data(
        name=name,
        version=version,
        path=str(folder.resolve()),
        type="uri_folder",
        description=description or f"uploaded by archai-aml from {folder.name}",
    )
    log.info("uploading %s as data asset %s:%s", folder, name, version)
    try:
        ml_client.data.create_or_update(asset)
    except Exception as exc:
        raise WorkspaceError(f"could not register data asset {name}:{version}: {exc}") from exc
    return reference
