"""The deploy step on Azure ML: a ``ManagedOnlineEndpoint`` and blue/green ``ManagedOnlineDeployment`` slots.

1. The endpoint ``ENDPOINT_NAME`` is created when missing (``auth_mode`` ``key`` or ``aad_token``; no key is
   ever read: the smoke request goes through ``online_endpoints.invoke``, which authenticates itself).
2. The serving slot is the deployment holding the endpoint's traffic; the new model goes to the other one
   (``blue`` / ``green``): the registered model ``azureml:<name>:<version>``, the library's scoring script
   (:mod:`archai_aml.steps.serving.score`, its folder as the code), ``DEPLOY_ENVIRONMENT`` (an environment
   with archai-aml installed), ``DEPLOY_INSTANCE_TYPE`` x ``DEPLOY_INSTANCE_COUNT``.
3. One smoke request to the new slot (``invoke(..., deployment_name=<slot>)``); its answer must follow the
   scoring schema. A failure deletes the new slot, leaves the traffic where it was and raises.
4. The traffic moves to the new slot in one endpoint update (``{new: 100}``), then the old slot is deleted.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from archai_aml.errors import ConfigError, DeployError
from archai_aml.steps.deploy_common import (
    DeploySettings,
    candidate,
    check_smoke,
    refuse_worse,
    smoke_image_bytes,
)
from archai_aml.steps.registry import WorkspaceRegistry
from archai_aml.steps.serving import request_for

__all__ = ["SLOTS", "SCORING_CODE", "deploy_azure"]

log = logging.getLogger(__name__)

SLOTS = ("blue", "green")
#: The folder uploaded as the deployment's code (holds ``score.py``).
SCORING_CODE = Path(__file__).resolve().parent / "serving"


def _endpoint(ml_client: Any, settings: DeploySettings) -> Any:
    from azure.ai.ml.entities import ManagedOnlineEndpoint
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return ml_client.online_endpoints.get(settings.endpoint_name)
    except ResourceNotFoundError:
        pass
    endpoint = ManagedOnlineEndpoint(
        name=settings.endpoint_name,
        auth_mode=settings.auth_mode,
        description=f"archai-aml: the best {settings.model_base_name} model",
        tags={"archai_aml": "deploy", "model": settings.model_base_name},
    )
    log.info("creating online endpoint %s (auth %s)", settings.endpoint_name, settings.auth_mode)
    try:
        return ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    except Exception as exc:
        raise DeployError(f"could not create the online endpoint {settings.endpoint_name}: {exc}") from exc


def _serving_slot(endpoint: Any) -> str | None:
    traffic = {k: int(v) for k, v in (endpoint.traffic or {}).items() if int(v) > 0}
    return max(traffic, key=lambda k: traffic[k]) if traffic else None


def deploy_azure(settings: DeploySettings, ml_client: Any) -> dict[str, Any]:
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment

    if not settings.environment:
        raise ConfigError(
            "DEPLOY_ENVIRONMENT: the Azure deployment needs an environment with archai-aml installed"
        )
    name = settings.model_base_name
    registry = WorkspaceRegistry(ml_client)
    version, new_map = candidate(settings, registry)
    endpoint = _endpoint(ml_client, settings)
    old = _serving_slot(endpoint)
    serving = None
    if old is not None:
        current = ml_client.online_deployments.get(old, settings.endpoint_name)
        tags = dict(current.tags or {})
        if tags.get("model_version") == str(version):
            log.info(
                "model %s version %d already serves on %s/%s", name, version, settings.endpoint_name, old
            )
            return {
                "endpoint": settings.endpoint_name,
                "deployment": old,
                "version": version,
                "changed": False,
            }
        serving = (int(tags.get("model_version", "0")), float(tags.get("mean_average_precision", "nan")))
    refuse_worse(name, (version, new_map), serving, settings)
    slot = SLOTS[1] if old == SLOTS[0] else SLOTS[0]
    deployment = ManagedOnlineDeployment(
        name=slot,
        endpoint_name=settings.endpoint_name,
        model=f"azureml:{name}:{version}",
        code_configuration=CodeConfiguration(code=str(SCORING_CODE), scoring_script="score.py"),
        environment=settings.environment,
        environment_variables={"SCORE_THRESHOLD": str(settings.score_threshold)},
        instance_type=settings.instance_type,
        instance_count=settings.instance_count,
        tags={"model_version": str(version), "mean_average_precision": repr(new_map)},
    )
    log.info("deploying %s:%d to %s/%s (%s x%d)", name, version, settings.endpoint_name, slot,
             settings.instance_type, settings.instance_count)  # fmt: skip
    keeps = f"{old} keeps serving" if old else "nothing serves"
    try:
        ml_client.online_deployments.begin_create_or_update(deployment).result()
        boxes = _smoke(ml_client, settings, slot)
    except Exception as exc:  # the SDK's HttpResponseError, a DeployError of the smoke check
        _delete(ml_client, slot, settings.endpoint_name)
        raise DeployError(
            f"deployment {slot} of {name}:{version} failed: {exc}; {slot} removed, {keeps}"
        ) from exc
    endpoint.traffic = {slot: 100}
    if old is not None:
        endpoint.traffic[old] = 0
    try:
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    except Exception as exc:
        raise DeployError(
            f"moving the traffic of {settings.endpoint_name} to {slot} failed: {exc}; {keeps}"
        ) from exc
    if old is not None:
        _delete(ml_client, old, settings.endpoint_name)
    log.info(
        "%s:%d serves on %s/%s (smoke request: %d box(es))",
        name,
        version,
        settings.endpoint_name,
        slot,
        boxes,
    )
    return {"endpoint": settings.endpoint_name, "deployment": slot, "version": version, "mean_average_precision": new_map,
            "previous_deployment": old, "smoke_boxes": boxes, "changed": True}  # fmt: skip


def _smoke(ml_client: Any, settings: DeploySettings, slot: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        request = Path(tmp) / "smoke.json"
        request.write_text(json.dumps(request_for(smoke_image_bytes(settings))), encoding="utf-8")
        answer = ml_client.online_endpoints.invoke(
            settings.endpoint_name, request_file=str(request), deployment_name=slot
        )
    try:
        response = json.loads(answer) if isinstance(answer, (str, bytes)) else answer
    except json.JSONDecodeError:
        raise DeployError(f"the smoke request's answer is not JSON: {str(answer)[:200]}") from None
    return check_smoke(response, settings)


def _delete(ml_client: Any, slot: str, endpoint: str) -> None:
    try:
        ml_client.online_deployments.begin_delete(slot, endpoint).result()
    except Exception as exc:  # the traffic decision is made; a leftover slot only costs money: say so
        log.warning("could not delete deployment %s of %s: %s (delete it in the studio)", slot, endpoint, exc)
