"""Deploy the best model: the version the registry marks best (or ``--model-version``) behind an endpoint::

    python -m archai_aml.steps.deploy --model-base-name symbol-detection            # here: 127.0.0.1
    python -m archai_aml.steps.deploy --target azure --environment symbol-serve@latest  # Azure ML

Both roll out blue/green: the new model is started beside the serving one, gets one smoke request (an image,
:data:`SMOKE_IMAGE` or a blank one, that must be answered in the scoring schema of
:mod:`archai_aml.steps.serving`, with at least ``SMOKE_MIN_BOXES`` boxes), and only then takes the traffic; the
old one is then removed. A failed start or smoke request removes the new one, leaves the old one serving and
says why. A version with a lower mAP than the serving one is refused unless ``ALLOW_WORSE_MODEL=true``.

- **here** (``DEPLOY_TARGET=local``, the default): the model is downloaded from the MLflow registry and served
  by :mod:`archai_aml.steps.serving.app` (Starlette on uvicorn) in its own process, on ``DEPLOY_HOST``
  (127.0.0.1) and a free port; ``<DEPLOY_LOCAL_ROOT>/<endpoint>/endpoint.json`` names the serving process,
  its URL and model (replaced in one rename on a switch). ``--stop`` stops it.
- **Azure ML**: :mod:`archai_aml.steps.deploy_azure` (a ``ManagedOnlineEndpoint`` and
  ``ManagedOnlineDeployment`` slots ``blue`` / ``green``).

``<output-path>/deployment.json`` (``DEPLOYMENT_OUTPUT_PATH``) records the result.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archai_aml.errors import ArchaiAmlError, DeployError
from archai_aml.steps.deploy_common import (
    DeploySettings,
    candidate,
    check_smoke,
    refuse_worse,
    smoke_image_bytes,
)
from archai_aml.steps.registry import MlflowRegistry
from archai_aml.steps.serving import request_for
from archai_aml.steps.settings import run_cli

__all__ = ["DeploySettings", "deploy", "main", "serving", "smoke_image_bytes", "stop_local"]

log = logging.getLogger(__name__)

STATE_FILE = "endpoint.json"
RESULT_FILE = "deployment.json"


def _endpoint_folder(settings: DeploySettings) -> Path:
    return settings.local_root.resolve() / settings.endpoint_name


def serving(settings: DeploySettings) -> dict[str, Any] | None:
    """The local endpoint's state (``url``, ``pid``, ``version``, ...) when its server answers, else None."""
    file = _endpoint_folder(settings) / STATE_FILE
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state if _healthy(str(state.get("url", ""))) else None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:  # noqa: S310 - our own 127.0.0.1 URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def post_json(url: str, payload: Any, timeout: float = 60.0) -> Any:
    """POST ``payload`` as JSON to ``url``; the decoded answer (an HTTP error raises :class:`DeployError`)."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http to our server
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise DeployError(f"{url} answered HTTP {exc.code}: {exc.read()[:300]!r}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeployError(f"{url} did not answer: {exc}") from None


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _stop_pid(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)  # the server runs in its own session: its group id is its pid
    except (ProcessLookupError, PermissionError):
        return
    for _ in range(100):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child (the server started in this process)
                return
        except ChildProcessError:  # started by an earlier deploy command: not ours to reap
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _start_server(
    settings: DeploySettings, model_dir: Path, label: str, log_file: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port(settings.host)
    command = [sys.executable, "-m", "archai_aml.steps.serving.app", "--model-dir", str(model_dir), "--model", label,
               "--host", settings.host, "--port", str(port), "--score-threshold", str(settings.score_threshold)]  # fmt: skip
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    url = f"http://{settings.host}:{port}"
    deadline = time.monotonic() + settings.start_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(encoding="utf-8", errors="replace")[-800:]
            raise DeployError(
                f"the scoring server for {label} exited with {proc.returncode} before answering: {tail}"
            )
        if _healthy(url):
            return proc, url
        time.sleep(0.2)
    _stop_pid(proc.pid)
    raise DeployError(
        f"the scoring server for {label} did not answer within {settings.start_timeout_s:.0f} s (log {log_file})"
    )


def deploy_local(settings: DeploySettings) -> dict[str, Any]:
    import mlflow.artifacts

    registry = MlflowRegistry(settings.tracking_uri)
    name = settings.model_base_name
    version, new_map = candidate(settings, registry)
    current = serving(settings)
    if current is not None and current.get("version") == version:
        log.info("model %s version %d already serves at %s", name, version, current["url"])
        return {**current, "changed": False}
    serving_version = (
        None if current is None else (int(current["version"]), float(current["mean_average_precision"]))
    )
    refuse_worse(name, (version, new_map), serving_version, settings)
    folder = _endpoint_folder(settings)
    model_dir = folder / "models" / str(version)
    if not model_dir.is_dir():
        source = registry.client.get_model_version_download_uri(name, str(version))
        model_dir.mkdir(parents=True, exist_ok=True)
        mlflow.artifacts.download_artifacts(
            source, dst_path=str(model_dir), tracking_uri=registry.tracking_uri
        )
    label = f"{name}:{version}"
    proc, url = _start_server(settings, model_dir, label, folder / f"server-{version}.log")
    try:
        boxes = check_smoke(post_json(url + "/score", request_for(smoke_image_bytes(settings))), settings)
    except ArchaiAmlError as exc:
        _stop_pid(proc.pid)
        keeps = (
            f"version {current['version']} keeps serving at {current['url']}" if current else "nothing serves"
        )
        raise DeployError(f"smoke request to {label} failed: {exc}; {label} removed, {keeps}") from None
    state = {"url": url, "pid": proc.pid, "name": name, "version": version, "mean_average_precision": new_map,
             "smoke_boxes": boxes, "previous_version": current["version"] if current else None}  # fmt: skip
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    os.replace(tmp, folder / STATE_FILE)  # the switch: one rename
    if current is not None:
        _stop_pid(int(current["pid"]))
    log.info(
        "model %s version %d serves at %s (smoke request: %d box(es))", name, version, url + "/score", boxes
    )
    return {**state, "changed": True}


def stop_local(settings: DeploySettings) -> bool:
    """Stop the local endpoint's server; False when none was running."""
    file = _endpoint_folder(settings) / STATE_FILE
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    _stop_pid(int(state["pid"]))
    file.unlink(missing_ok=True)
    log.info("stopped the endpoint %s (model version %s)", settings.endpoint_name, state.get("version"))
    return True


def deploy(settings: DeploySettings, ml_client: Any = None) -> dict[str, Any]:
    """Deploy (see the module docstring); returns what ``deployment.json`` holds."""
    if settings.stop:
        return {"stopped": stop_local(settings)}
    if settings.target == "azure" or ml_client is not None:
        from archai_aml.steps.deploy_azure import deploy_azure

        result = deploy_azure(settings, ml_client if ml_client is not None else settings.ml_client())
    else:
        result = deploy_local(settings)
    if settings.output_path is not None:
        settings.output_path.mkdir(parents=True, exist_ok=True)
        (settings.output_path / RESULT_FILE).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(DeploySettings, deploy, argv, prog="deploy", description=__doc__ or "")


if __name__ == "__main__":
    raise SystemExit(main())
