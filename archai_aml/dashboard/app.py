"""The dashboard's web application (Starlette): one HTML shell, its own script and style, and a JSON API.

========================================  ===================================================================
``GET /``, ``GET /model``                 the page (the script draws it from the API); ``?experiment=``,
                                          ``?name=`` pick what it shows
``GET /api/state``                        the experiment's state and the front of ``x``/``y`` (``mx``/``my``:
                                          maximize); with ``If-None-Match`` and ``wait=1`` a long poll that
                                          answers when the state changes (else ``304`` after ``wait_s``)
``GET /api/model``                        one model: its rows, ``sources`` and blobs
``GET /download``                         one blob of a model (``experiment``, ``name``, ``blob``), as an
                                          attachment
``GET /static/...``                       ``dashboard.js``, ``dashboard.css`` (from the package: no CDN)
========================================  ===================================================================

Nothing here writes to the store. Store strings reach the page only as JSON data, which the script puts
in the page as text (``textContent``); the one server-rendered string (the experiment in the title) goes
through :func:`html.escape`. No configuration is ever serialized (the store's configuration holds keys).
"""

from __future__ import annotations

import html
import json
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from archai_aml.dashboard.poller import Poller, State, digest
from archai_aml.dashboard.security import Guard
from archai_aml.dashboard.snapshot import read_model
from archai_aml.dashboard.view import front_view
from archai_aml.errors import UnsafeBlobNameError, redact_secrets
from archai_aml.store.base import check_blob_name, key_problem

__all__ = ["STATIC", "create_app"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/dashboard.js" defer></script>
</head>
<body data-experiment="{experiment}" data-poll-ms="{poll_ms}">
<header><h1>archai-aml dashboard: <span id="experiment-title">{experiment}</span></h1>
<nav id="experiments"></nav></header>
<div id="banner" class="banner" hidden></div>
<main id="main"><p class="loading">loading&hellip;</p></main>
</body>
</html>
"""
NO_CACHE = {"Cache-Control": "no-cache"}


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=NO_CACHE)


def _name(request: Request, key: str, default: str | None = None) -> str:
    value = request.query_params.get(key) or default or ""
    problem = key_problem(value)
    if problem is not None:
        raise ValueError(f"{key} {value!r} cannot name a row: {problem}")
    return value


def _flag(request: Request, key: str, default: bool) -> bool:
    value = request.query_params.get(key)
    return default if value is None else value in ("1", "true", "yes")


def create_app(poller: Poller, *, token: str | None = None, wait_s: float = 20.0) -> Any:
    """The ASGI application of ``poller``'s store (wrapped in :class:`~archai_aml.dashboard.security.Guard`:
    ``token`` is required on every request when given)."""
    default = poller.default_experiment
    poll_ms = int(poller.interval_s * 1000)

    async def page(request: Request) -> Response:
        experiment = request.query_params.get("experiment") or default
        if key_problem(experiment) is not None:
            experiment = default
        body = SHELL.format(
            title=html.escape(f"archai-aml dashboard: {experiment}"),
            experiment=html.escape(experiment),
            poll_ms=poll_ms,
        )
        return HTMLResponse(body, headers=NO_CACHE)

    fronts: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()  # the last views drawn
    lock = threading.Lock()
    models: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}  # model pages, per interval

    def view_params(request: Request) -> tuple[str | None, str | None, bool, bool]:
        q = request.query_params
        return q.get("x"), q.get("y"), _flag(request, "mx", False), _flag(request, "my", True)

    def view_etag(state: State, params: tuple[Any, ...]) -> str:
        """The ETag of a view: the state's and the view's parameters (no front computed)."""
        return f'"{digest([state.etag, *params])}"'

    def front_of(state: State, params: tuple[str | None, str | None, bool, bool]) -> dict[str, Any]:
        """The front of ``params`` for ``state``, computed once per state for all pages."""
        key = (state.etag, *params)
        with lock:
            if key not in fronts:
                x, y, mx, my = params
                fronts[key] = front_view(state.data or {}, x, y, maximize_x=mx, maximize_y=my)
                while len(fronts) > 32:
                    fronts.popitem(last=False)
            return fronts[key]

    async def api_state(request: Request) -> Response:
        try:
            experiment = _name(request, "experiment", default)
        except ValueError as exc:
            return _error(400, str(exc))
        params = view_params(request)
        given = request.headers.get("if-none-match")
        if given and request.query_params.get("wait") == "1":
            state = await run_in_threadpool(
                poller.wait, experiment, lambda s: view_etag(s, params) != given, wait_s
            )
        else:
            state = await run_in_threadpool(poller.state, experiment)
        etag = view_etag(state, params)
        if etag == given:
            return Response(status_code=304, headers={"ETag": etag, **NO_CACHE})
        front = await run_in_threadpool(front_of, state, params)
        view = {"poll_ms": poll_ms, "outage": state.outage, "data": state.data, "front": front}
        return JSONResponse(view, headers={"ETag": etag, **NO_CACHE})

    def model_of(experiment: str, name: str) -> dict[str, Any] | None:
        """:func:`read_model`, read at most once per interval for all pages showing that model."""
        now = time.monotonic()
        cached = models.get((experiment, name))
        if cached is not None and now - cached[0] < poller.interval_s:
            return cached[1]
        model = read_model(poller.store, experiment, name)
        if len(models) > 256:
            models.clear()
        models[(experiment, name)] = (now, model)
        return model

    async def api_model(request: Request) -> Response:
        try:
            experiment, name = _name(request, "experiment", default), _name(request, "name")
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            model = await run_in_threadpool(model_of, experiment, name)
        except Exception as exc:  # a store outage: say so, keep serving
            return _error(503, redact_secrets(f"the store did not answer: {type(exc).__name__}: {exc}"))
        if model is None:
            return _error(404, f"no model {name!r} in {experiment!r}")
        body = json.dumps(model, sort_keys=True)
        etag = f'"{digest(body)}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag, **NO_CACHE})
        return Response(body, media_type="application/json", headers={"ETag": etag, **NO_CACHE})

    async def download(request: Request) -> Response:
        try:
            experiment, name = _name(request, "experiment", default), _name(request, "name")
            blob = check_blob_name(request.query_params.get("blob", ""))
        except (ValueError, UnsafeBlobNameError) as exc:
            return _error(400, str(exc))
        try:
            data = await run_in_threadpool(poller.store.download_bytes, experiment, name, blob)
        except FileNotFoundError:
            return _error(404, f"no blob {blob!r} of {experiment}/{name}")
        except Exception as exc:
            return _error(503, redact_secrets(f"the store did not answer: {type(exc).__name__}: {exc}"))
        filename = "".join(c if c.isalnum() or c in "._-" else "_" for c in blob.rsplit("/", 1)[-1])
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{filename or "blob"}"', **NO_CACHE},
        )

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/model", page),
            Route("/api/state", api_state),
            Route("/api/model", api_model),
            Route("/download", download),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    return Guard(app, token=token)
