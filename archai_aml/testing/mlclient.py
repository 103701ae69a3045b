"""A real ``azure.ai.ml.MLClient`` whose operations are **autospecs of the real operation classes**, answering
like an Azure ML workspace would: the one stand-in every Azure ML test uses.

Only the last network hop is replaced. ``MLClient(...)`` is built for real (with a credential that fails if
it is ever asked for a token); its ``jobs``, ``compute``, ``environments``, ``datastores``, ``data`` and
``models`` properties return ``unittest.mock.create_autospec(<the real *Operations class>, instance=True,
spec_set=True)``, so a call the real SDK refuses (a keyword-only argument passed by position, an unknown
keyword, a method that does not exist) raises ``TypeError`` / ``AttributeError`` in the test. Each method the
library uses is backed (``side_effect``) by a small service model with the real return shapes, taken from
azure-ai-ml 1.35.2 (``azure/ai/ml/operations/*.py`` in site-packages):

- ``get`` of an unknown name raises ``azure.core.exceptions.ResourceNotFoundError`` (the service's 404);
- ``compute.begin_create_or_update`` returns an ``LROPoller[Compute]`` (a real ``azure.core.polling.LROPoller``);
- ``environments/datastores/data/models.create_or_update`` return the service's copy (a new object); ``data``
  and ``models`` number an unset version (1 + the highest, the service's auto-increment);
- ``data.get`` / ``models.get`` need a version or a label (``ValidationException`` otherwise, as in
  ``DataOperations.get``), ``label="latest"`` is the highest version;
- ``jobs``: :mod:`archai_aml.testing.mlclient_jobs` (new job objects with ``studio_url`` and the SDK's
  ``JobStatus`` enum as ``status``, ``stream`` raising ``JobException`` on a failed job, ``begin_cancel``
  returning an ``LROPoller``, ``download`` refusing a job that has not ended).

Methods of the real classes that no test needs raise ``NotImplementedError`` naming themselves, so a new call
is noticed. Other operation groups (``online_endpoints``, ``schedules``...) can be added with
:meth:`FakeWorkspace.install`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from archai_aml.testing.mlclient_jobs import FakeJobs

__all__ = ["AssetOps", "FakeJobs", "FakeWorkspace", "NeverUsedCredential", "autospec_ops"]


class NeverUsedCredential:
    """A ``TokenCredential`` that fails the test if anything asks it for a token (nothing may reach Azure)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("the tests must not reach Azure (a token was requested)")


def autospec_ops(cls: type, impl: Any) -> Any:
    """``create_autospec(cls, instance=True, spec_set=True)`` with each public method of ``cls`` backed by the
    method of the same name on ``impl``, or raising ``NotImplementedError`` when ``impl`` has none."""
    from unittest.mock import create_autospec

    ops = create_autospec(cls, instance=True, spec_set=True)
    for name in dir(cls):
        if name.startswith("_") or not callable(getattr(cls, name, None)):
            continue
        backing = getattr(impl, name, None)
        if backing is None:

            def missing(*args: Any, _name: str = name, **kwargs: Any) -> Any:
                raise NotImplementedError(f"the fake workspace does not implement {cls.__name__}.{_name}")

            backing = missing
        getattr(ops, name).side_effect = backing
    return ops


class AssetOps:
    """The service side of one operations group: entities by key, every call, what was created."""

    def __init__(self, kind: str, existing: dict[Any, Any] | None = None, *, versioned: bool = False) -> None:
        self.kind = kind
        self.items: dict[Any, Any] = dict(existing or {})
        self.calls: list[tuple[str, Any]] = []
        self.versioned = versioned
        #: Raised by create calls when set (quota, authorization).
        self.fail_create: BaseException | None = None
        #: Pollers handed out by ``begin_create_or_update`` (compute).
        self.pollers: list[Any] = []
        #: Seconds a ``begin_create_or_update`` poller takes (compute).
        self.create_seconds = 0.0

    @property
    def created(self) -> list[Any]:
        """The entities passed to create calls, in order."""
        return [arg for kind, arg in self.calls if kind == "create"]

    def _not_found(self, key: Any) -> BaseException:
        from azure.core.exceptions import ResourceNotFoundError

        return ResourceNotFoundError(f"(UserError) {self.kind} {key} not found")

    def _get(self, key: Any) -> Any:
        self.calls.append(("get", key))
        if key not in self.items:
            raise self._not_found(key)
        return self.items[key]

    def _store(self, key: Any, entity: Any) -> Any:
        self.calls.append(("create", entity))
        if self.fail_create is not None:
            raise self.fail_create
        stored = copy.deepcopy(entity)  # the service's copy: the caller's object is not the one kept
        self.items[key] = stored
        return stored

    # -------------------------------------------------------------------- named entities (compute, datastores)
    def get_named(self, name: str, **kwargs: Any) -> Any:
        return self._get(name)

    # -------------------------------------------------------------------- versioned assets (env, data, models)
    def _versions(self, name: str) -> list[Any]:
        return sorted((v for n, v in self.items if n == name), key=_version_key)

    def get_versioned(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        from azure.ai.ml.exceptions import ErrorCategory, ErrorTarget, ValidationException

        if version and label or not (version or label):  # DataOperations.get / ModelOperations.get
            msg = (
                "Cannot specify both version and label."
                if version
                else "Must provide either version or label."
            )
            raise ValidationException(
                message=msg, no_personal_data_message=msg, target=ErrorTarget.ASSET,  # type: ignore[arg-type]  # the SDK's own str constants
                error_category=ErrorCategory.USER_ERROR,  # type: ignore[arg-type]
            )  # fmt: skip
        if label == "latest":
            versions = self._versions(name)
            if not versions:
                self.calls.append(("get", (name, "latest")))
                raise self._not_found(f"{name}@latest")
            version = versions[-1]
        return self._get((name, str(version)))

    def create_versioned(self, entity: Any) -> Any:
        version = entity.version
        if not version and self.versioned:  # auto-increment of an unset version
            version = str(
                1 + max((int(v) for v in self._versions(entity.name) if str(v).isdigit()), default=0)
            )
        stored = self._store((entity.name, str(version)), entity)
        stored.version = str(version)
        return stored

    def list_versioned(self, name: str | None = None) -> list[Any]:
        self.calls.append(("list", name))
        return [e for (n, v), e in sorted(self.items.items(), key=lambda kv: (kv[0][0], _version_key(kv[0][1])))
                if name is None or n == name]  # fmt: skip


def _version_key(version: Any) -> tuple[int, str]:
    text = str(version)
    return (int(text), "") if text.isdigit() else (1 << 62, text)


class _Compute:
    def __init__(self, state: AssetOps) -> None:
        self.state = state

    def get(self, name: str) -> Any:
        return self.state.get_named(name)

    def begin_create_or_update(self, compute: Any) -> Any:
        """``ComputeOperations.begin_create_or_update`` -> ``LROPoller[Compute]`` (the PUT fails at once with
        ``HttpResponseError`` for quota or authorization)."""
        stored = self.state._store(compute.name, compute)
        poller = _value_poller(stored, self.state.create_seconds)
        self.state.pollers.append(poller)
        return poller


class _Datastores:
    def __init__(self, state: AssetOps) -> None:
        self.state = state

    def get(self, name: str, *, include_secrets: bool = False) -> Any:
        return self.state.get_named(name)

    def create_or_update(self, datastore: Any) -> Any:
        return self.state._store(datastore.name, datastore)


class _Versioned:
    """``get`` / ``list`` of the versioned groups (same parameters on EnvironmentOperations, DataOperations and
    ModelOperations, except ``ModelOperations.list``'s ``stage``)."""

    def __init__(self, state: AssetOps) -> None:
        self.state = state

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        return self.state.get_versioned(name, version, label)

    def list(self, name: str | None = None, *, list_view_type: Any = None) -> list[Any]:
        return self.state.list_versioned(name)


class _Environments(_Versioned):
    def create_or_update(self, environment: Any) -> Any:
        return self.state.create_versioned(environment)


class _Data(_Versioned):
    def create_or_update(self, data: Any) -> Any:
        return self.state.create_versioned(data)


class _Models(_Versioned):
    def create_or_update(self, model: Any) -> Any:
        return self.state.create_versioned(model)

    def list(  # type: ignore[override]  # ModelOperations.list has a stage filter
        self, name: str | None = None, stage: str | None = None, *, list_view_type: Any = None
    ) -> list[Any]:
        return [
            m for m in self.state.list_versioned(name) if stage is None or getattr(m, "stage", None) == stage
        ]


def _value_poller(value: Any, seconds: float) -> Any:
    """A real ``LROPoller`` whose result is ``value`` after ``seconds`` (0: done at once)."""
    import threading

    from azure.core.polling import LROPoller, PollingMethod

    class _Polling(PollingMethod[Any]):
        def initialize(
            self, client: Any, initial_response: Any, deserialization_callback: Callable[..., Any]
        ) -> None:
            self._done = seconds <= 0

        def run(self) -> None:
            threading.Event().wait(seconds)
            self._done = True

        def status(self) -> str:
            return "Succeeded" if self._done else "InProgress"

        def finished(self) -> bool:
            return self._done

        def resource(self) -> Any:
            return value if self._done else None

    return LROPoller(None, None, lambda response: value, _Polling())


class FakeWorkspace:
    """A real ``MLClient`` (``self.client``) over a fake workspace: ``self.jobs``, ``self.compute``,
    ``self.environments``, ``self.datastores``, ``self.data``, ``self.models`` are the service's state (what
    exists, every call); ``self.client.<group>`` are the autospecs the library calls.

    ``existing`` seeds entities: ``compute={name: AmlCompute}``, ``datastores={name: ...}``,
    ``environments={"name:version": Environment}``, ``data`` / ``models`` likewise.
    """

    SCOPE = {"subscription": "sub", "resource_group": "rg", "workspace": "ws"}

    def __init__(self, client: Any = None, **existing: dict[str, Any]) -> None:
        """``client``: an ``MLClient`` built elsewhere (``AzureMLJobRunner.from_config``) to fake in place."""
        from azure.ai.ml import MLClient
        from azure.ai.ml.operations import (
            ComputeOperations,
            DataOperations,
            DatastoreOperations,
            EnvironmentOperations,
            JobOperations,
            ModelOperations,
        )

        self.client = client or MLClient(
            credential=NeverUsedCredential(),
            subscription_id=self.SCOPE["subscription"],
            resource_group_name=self.SCOPE["resource_group"],
            workspace_name=self.SCOPE["workspace"],
        )
        self.compute = AssetOps("compute", existing.get("compute"))
        self.datastores = AssetOps("datastore", existing.get("datastores"))
        self.environments = AssetOps("environment", _by_version(existing.get("environments")))
        self.data = AssetOps("data asset", _by_version(existing.get("data")), versioned=True)
        self.models = AssetOps("model", _by_version(existing.get("models")), versioned=True)
        self.jobs = FakeJobs(
            {
                "subscription": str(self.client.subscription_id),
                "resource_group": str(self.client.resource_group_name),
                "workspace": str(self.client.workspace_name),
            }
        )
        self.install("_compute", ComputeOperations, _Compute(self.compute))
        self.install("_datastores", DatastoreOperations, _Datastores(self.datastores))
        self.install("_environments", EnvironmentOperations, _Environments(self.environments))
        self.install("_data", DataOperations, _Data(self.data))
        self.install("_models", ModelOperations, _Models(self.models))
        self.install("_jobs", JobOperations, self.jobs)

    def install(self, attribute: str, cls: type, impl: Any) -> Any:
        """Make ``MLClient.<group>`` (a read-only property over ``attribute``) an autospec of ``cls`` backed by
        ``impl``; returns the autospec."""
        ops = autospec_ops(cls, impl)
        setattr(self.client, attribute, ops)
        return ops

    def creates(self) -> list[Any]:
        """Every entity passed to a create call of compute, environments, datastores and data, in group order."""
        return [
            *self.compute.created,
            *self.environments.created,
            *self.datastores.created,
            *self.data.created,
        ]


def _by_version(items: dict[str, Any] | None) -> dict[Any, Any]:
    """``{"name:version": entity}`` -> ``{(name, version): entity}``."""
    out: dict[Any, Any] = {}
    for key, entity in (items or {}).items():
        name, _, version = key.partition(":")
        out[(name, version)] = entity
    return out
