"""Stand-ins for the last network hop of ``MLClient.online_endpoints``, ``.online_deployments`` and
``.schedules``: :func:`unittest.mock.create_autospec` of the real operations classes of azure-ai-ml (so a call
with a wrong name or argument fails as it would on the real SDK), whose methods keep the workspace's state in
memory and answer with real entity objects.

What they imitate, from the SDK's signatures (``azure.ai.ml.operations``, 1.35): ``begin_create_or_update``
and ``begin_delete`` return an ``LROPoller`` whose ``result()`` is the stored entity (None for a delete);
``get`` raises ``azure.core.exceptions.ResourceNotFoundError`` for an unknown name; ``invoke`` returns the
scoring script's answer as a ``str``; ``online_deployments.get(name, endpoint_name)`` takes the deployment
first. An endpoint's ``traffic`` may name only deployments that exist (the service refuses the update
otherwise). The scoring itself is a callable the test passes (``score(deployment, request) -> answer``),
e.g. the real :func:`archai_aml.steps.serving.score_payload` on the deployed model's files.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any
from unittest.mock import create_autospec

__all__ = [
    "DonePoller",
    "FakeOnline",
    "NeverUsedCredential",
    "fake_model_operations",
    "fake_online_operations",
    "fake_schedule_operations",
]


class NeverUsedCredential:
    """A ``TokenCredential`` that fails the test if anything asks it for a token (nothing may reach Azure)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("the tests must not reach Azure (a token was requested)")


class DonePoller:
    """The part of ``azure.core.polling.LROPoller`` the library uses: a finished operation."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self, timeout: float | None = None) -> Any:
        return self._value

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        return None

    def status(self) -> str:
        return "Succeeded"


class FakeOnline:
    """The in-memory workspace behind the fakes: endpoints, deployments, and every call in order."""

    def __init__(self, score: Callable[[Any, dict[str, Any]], Any]) -> None:
        self.score = score
        self.endpoints: dict[str, Any] = {}
        self.deployments: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail_create: set[str] = set()  # deployment names whose creation fails (a bad image, no quota)


def _not_found(what: str) -> Exception:
    from azure.core.exceptions import ResourceNotFoundError

    return ResourceNotFoundError(f"{what} not found")


def fake_online_operations(state: FakeOnline) -> tuple[Any, Any]:
    """(online_endpoints, online_deployments) for ``MLClient._online_endpoints`` / ``._online_deployments``."""
    from azure.ai.ml.operations import OnlineDeploymentOperations, OnlineEndpointOperations
    from azure.core.exceptions import HttpResponseError

    endpoints = create_autospec(OnlineEndpointOperations, instance=True)
    deployments = create_autospec(OnlineDeploymentOperations, instance=True)

    def endpoint_get(name: str, *, local: bool = False) -> Any:
        state.calls.append(("endpoints.get", name))
        if name not in state.endpoints:
            raise _not_found(f"online endpoint {name}")
        return copy.deepcopy(state.endpoints[name])

    def endpoint_update(endpoint: Any, *, local: bool = False) -> DonePoller:
        state.calls.append(("endpoints.begin_create_or_update", copy.deepcopy(endpoint)))
        unknown = [
            d for d, share in (endpoint.traffic or {}).items() if (endpoint.name, d) not in state.deployments
        ]
        if unknown:
            raise HttpResponseError(f"traffic names deployments that do not exist: {unknown}")
        stored = copy.deepcopy(endpoint)
        state.endpoints[endpoint.name] = stored
        return DonePoller(copy.deepcopy(stored))

    def invoke(endpoint_name: str, *, request_file: str | None = None, deployment_name: str | None = None,
               **kwargs: Any) -> str:  # fmt: skip
        state.calls.append(("endpoints.invoke", (endpoint_name, deployment_name)))
        endpoint = state.endpoints.get(endpoint_name)
        if endpoint is None:
            raise _not_found(f"online endpoint {endpoint_name}")
        if deployment_name is None:  # by traffic
            traffic = {k: v for k, v in (endpoint.traffic or {}).items() if v > 0}
            if not traffic:
                raise HttpResponseError("no deployment takes traffic")
            deployment_name = max(traffic, key=lambda k: traffic[k])
        deployment = state.deployments.get((endpoint_name, deployment_name))
        if deployment is None:
            raise _not_found(f"deployment {deployment_name}")
        assert request_file is not None
        with open(request_file, encoding="utf-8") as f:
            return json.dumps(state.score(deployment, json.load(f)))

    endpoints.get.side_effect = endpoint_get
    endpoints.begin_create_or_update.side_effect = endpoint_update
    endpoints.invoke.side_effect = invoke

    def deployment_update(deployment: Any, **kwargs: Any) -> DonePoller:
        state.calls.append(("deployments.begin_create_or_update", copy.deepcopy(deployment)))
        if deployment.endpoint_name not in state.endpoints:
            raise _not_found(f"online endpoint {deployment.endpoint_name}")
        if deployment.name in state.fail_create:
            raise HttpResponseError(f"deployment {deployment.name} failed: ImageBuildFailure")
        stored = copy.deepcopy(deployment)
        state.deployments[(deployment.endpoint_name, deployment.name)] = stored
        return DonePoller(copy.deepcopy(stored))

    def deployment_get(name: str, endpoint_name: str, *, local: bool | None = False) -> Any:
        state.calls.append(("deployments.get", (name, endpoint_name)))
        if (endpoint_name, name) not in state.deployments:
            raise _not_found(f"deployment {name} of {endpoint_name}")
        return copy.deepcopy(state.deployments[(endpoint_name, name)])

    def deployment_delete(name: str, endpoint_name: str, *, local: bool | None = False) -> DonePoller:
        state.calls.append(("deployments.begin_delete", (name, endpoint_name)))
        endpoint = state.endpoints.get(endpoint_name)
        if endpoint is not None and (endpoint.traffic or {}).get(name, 0) > 0:
            raise HttpResponseError(f"deployment {name} still takes traffic")
        if state.deployments.pop((endpoint_name, name), None) is None:
            raise _not_found(f"deployment {name} of {endpoint_name}")
        return DonePoller(None)

    deployments.begin_create_or_update.side_effect = deployment_update
    deployments.get.side_effect = deployment_get
    deployments.begin_delete.side_effect = deployment_delete
    deployments.list.side_effect = lambda endpoint_name, **kw: [
        copy.deepcopy(d) for (e, _), d in state.deployments.items() if e == endpoint_name
    ]
    return endpoints, deployments


def fake_schedule_operations(calls: list[tuple[str, Any]]) -> Any:
    """``MLClient.schedules``: ``begin_create_or_update`` stores the schedule (a real ``JobSchedule``)."""
    from azure.ai.ml.operations import ScheduleOperations

    stored: dict[str, Any] = {}
    schedules = create_autospec(ScheduleOperations, instance=True)

    def create(schedule: Any, **kwargs: Any) -> DonePoller:
        calls.append(("schedules.begin_create_or_update", schedule))
        stored[schedule.name] = schedule
        return DonePoller(schedule)

    def get(name: str, **kwargs: Any) -> Any:
        if name not in stored:
            raise _not_found(f"schedule {name}")
        return stored[name]

    schedules.begin_create_or_update.side_effect = create
    schedules.get.side_effect = get
    return schedules


def fake_model_operations(items: dict[tuple[str, int], Any]) -> Any:
    """``MLClient.models``: ``create_or_update`` numbers an unset version (1 + the highest, the service's
    auto-increment) and returns the service's copy; ``get`` of an unknown version raises
    ``ResourceNotFoundError``; ``list(name=...)`` yields the versions."""
    from azure.ai.ml.entities import Model
    from azure.ai.ml.operations import ModelOperations

    models = create_autospec(ModelOperations, instance=True)

    def create(model: Any, **kwargs: Any) -> Any:
        version = (
            int(model.version)
            if model.version
            else 1 + max((v for n, v in items if n == model.name), default=0)
        )
        stored = Model(name=model.name, version=str(version), path=model.path, type=model.type,
                       tags=dict(model.tags or {}), properties=dict(model.properties or {}))  # fmt: skip
        items[(model.name, version)] = stored
        return copy.deepcopy(stored)

    def get(name: str, version: str | None = None, label: str | None = None) -> Any:
        if (name, int(version or 0)) not in items:
            raise _not_found(f"model {name}:{version}")
        return copy.deepcopy(items[(name, int(version or 0))])

    models.create_or_update.side_effect = create
    models.get.side_effect = get
    models.list.side_effect = lambda name=None, **kw: [
        copy.deepcopy(m) for (n, _), m in sorted(items.items()) if n == name
    ]
    return models
