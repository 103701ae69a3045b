"""What ``archai-aml workspace setup`` plans for one resource (:class:`ResourcePlan`), and looking a
resource up in the workspace (:func:`lookup`): shared by :mod:`~archai_aml.workspace.setup` and
:mod:`~archai_aml.workspace.environment`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from archai_aml.errors import WorkspaceError

__all__ = ["Action", "ResourcePlan", "lookup"]

Action = Literal["exists", "create", "differs", "conflict", "blocked"]


@dataclass
class ResourcePlan:
    """What setup does (or did) about one resource.

    ``exists``: found and matching; ``create``: missing, will be (or was) created; ``differs``: found with
    other settings, left alone with a warning; ``conflict``: found pointing elsewhere, setup refuses;
    ``blocked``: cannot be planned (the message says what to configure).
    """

    kind: str
    name: str
    action: Action
    detail: str
    entity: Any = field(default=None, repr=False)
    #: What pipelines reference (``name:version`` for the environment), when known.
    reference: str | None = None
    #: What the user should know before this resource is used (a retired VM size).
    warnings: list[str] = field(default_factory=list)


def _not_found(exc: BaseException) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(exc, ResourceNotFoundError)


def lookup(get: Any, what: str, *args: Any, **kwargs: Any) -> Any | None:
    """``get(...)``, None when the workspace says it does not exist; other failures are WorkspaceErrors."""
    try:
        return get(*args, **kwargs)
    except Exception as exc:
        if _not_found(exc):
            return None
        raise WorkspaceError(
            f"could not look up {what} in the Azure ML workspace: {exc}; check the aml.workspace names and "
            "that you may read the workspace (az login, role AzureML Data Scientist or Contributor)"
        ) from exc
