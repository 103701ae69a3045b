"""A live, read-only dashboard of the store in the browser: ``archai-aml dashboard``.

The experiments of the store; per experiment the iterations so far, models by status, the Pareto front of
any two objectives (hover names the model and its figures, predicted and simulated figures marked,
earlier iterations fading), the status table of ``archai-aml status`` (sortable, filterable, paged), the
runner fleet (heartbeats, held leases, runners presumed dead), failures, one model's columns, ``sources``
and artifacts (downloads), and device usage per day (``archai-aml usage``).

- :mod:`~archai_aml.dashboard.snapshot`: what one refresh reads (a fixed number of store requests);
- :mod:`~archai_aml.dashboard.poller`: the one thread that reads the store, riding out outages;
- :mod:`~archai_aml.dashboard.view`: the front of the two picked objectives;
- :mod:`~archai_aml.dashboard.security`: loopback by default, a token elsewhere, read-only, CSP;
- :mod:`~archai_aml.dashboard.app`: the Starlette application (needs the ``dashboard`` extra);
- :mod:`~archai_aml.dashboard.cli`: the command.

Names are imported on first use: ``import archai_aml.dashboard`` needs neither Starlette nor uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archai_aml.dashboard.app import create_app
    from archai_aml.dashboard.poller import Poller
    from archai_aml.dashboard.snapshot import build_snapshot, read_model, read_snapshot
    from archai_aml.dashboard.view import front_view

_LAZY = {
    "Poller": "archai_aml.dashboard.poller",
    "build_snapshot": "archai_aml.dashboard.snapshot",
    "create_app": "archai_aml.dashboard.app",
    "front_view": "archai_aml.dashboard.view",
    "read_model": "archai_aml.dashboard.snapshot",
    "read_snapshot": "archai_aml.dashboard.snapshot",
}

__all__ = ["Poller", "build_snapshot", "create_app", "front_view", "read_model", "read_snapshot"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
