"""``archai-aml dashboard``: serve the live, read-only dashboard of the store the configuration names.

The server needs the ``dashboard`` extra (Starlette and uvicorn): without it the command says
``pip install 'archai-aml[dashboard]'``. Its address goes to standard output once it listens; with a token
the address printed carries it (``?token=...``): that line is the user's own secret (it is printed once, to
the console, never to a log), so keep it off shared screens. Uvicorn's access log stays off: request lines
would hold the token.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

from archai_aml._optional import require
from archai_aml.errors import ConfigError

__all__ = ["ENV_TOKEN", "register", "serve"]

log = logging.getLogger(__name__)

#: The environment variable a token is given in (never on the command line: other users see argv).
ENV_TOKEN = "ARCHAI_AML_DASHBOARD_TOKEN"
DEFAULT_PORT = 8765
#: Retries of the Azure backend for the dashboard's reads (a failing read gives up in about half a second).
FAST_RETRIES = {"retry_total": 1, "retry_backoff": 0.25, "retry_backoff_max": 1.0}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dashboard",
        help="serve a live, read-only dashboard of the store in the browser",
        description="serve a live, read-only dashboard of the store (Pareto front, status table, runner "
        f"fleet, failures, models, device usage) on 127.0.0.1; another --host needs a token ({ENV_TOKEN} "
        "or --generate-token)",
    )
    p.add_argument(
        "--config",
        "-c",
        default=argparse.SUPPRESS,
        help="YAML configuration (its store: section; default: env)",
    )
    p.add_argument(
        "--experiment", "-e", help="experiment shown first (default: the config's experiment_name)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)"
    )
    p.add_argument(
        "--generate-token",
        action="store_true",
        help="require a new random token, printed once in the address",
    )
    p.add_argument(
        "--interval",
        type=float,
        help="seconds between store reads (default: the config's runner.poll_interval_s)",
    )
    p.set_defaults(func=_dashboard)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)  # connections wait in the backlog from now on, before uvicorn accepts them
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): pick another --port") from None
    return sock


def serve(app: Any, sock: socket.socket) -> None:
    """Run ``app`` on the bound ``sock`` with uvicorn until interrupted (no access log)."""
    import uvicorn

    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    uvicorn.Server(config).run(sockets=[sock])


def _dashboard(args: argparse.Namespace) -> int:
    require("starlette", feature="archai-aml dashboard", extra="dashboard")
    require("uvicorn", feature="archai-aml dashboard", extra="dashboard")
    from archai_aml.dashboard.app import create_app
    from archai_aml.dashboard.poller import Poller
    from archai_aml.dashboard.security import check_token, new_token
    from archai_aml.store import open_store, resolve_store_config
    from archai_aml.store.cli import check_name

    given = new_token() if args.generate_token else os.environ.get(ENV_TOKEN) or None
    token = check_token(args.host, given)  # refuses before anything is opened
    config, store_config = resolve_store_config(getattr(args, "config", None))
    experiment = check_name(args.experiment or config.experiment_name, "--experiment")
    rc = config.runner
    interval = args.interval if args.interval else rc.poll_interval_s
    if interval <= 0:
        raise ConfigError(f"--interval must be positive, got {interval}")
    sock = _bind(args.host, args.port)
    # short retries: the next refresh is the retry, and an outage shows at once instead of after the
    # backend's default minute of retries
    store = open_store(store_config, **(FAST_RETRIES if store_config.backend == "azure" else {}))
    poller = Poller(
        store, experiment, interval_s=interval, dead_after_s=3 * rc.lease_ttl_s + rc.poll_interval_s
    )
    app = create_app(poller, token=token)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    log.info("dashboard of %s store, experiment %s, on %s", store_config.backend, experiment, url)
    if token is not None and args.generate_token:
        url += f"?token={token}"
        note = " (the token in this address is printed only here: keep it to yourself)"
    elif token is not None:
        note = f" (open it with ?token=<the value of {ENV_TOKEN}>)"
    else:
        note = ""
    sys.stdout.write(f"archai-aml dashboard: {url}{note}\n")
    sys.stdout.flush()
    poller.start()
    try:
        serve(app, sock)
    finally:
        poller.stop()
        store.close()
    return 0
