"""When a work item fails: the error a row gets, and the folder a row's work may use.

:class:`ItemFailed` is raised by the steps for a failure of the model or the target (the row's ``error``);
:func:`failure_text` writes that error once labelled, with blob names instead of the runner's local paths;
:func:`safe_folder` builds a row's working folder, refusing any name that would leave the working folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from archai_aml.errors import InvalidRowError
from archai_aml.runner.queue import WorkItem

__all__ = ["ItemFailed", "failure_text", "safe_folder"]


class ItemFailed(Exception):
    """The work item failed for a reason that belongs in the row's ``error`` column: ``what`` failed (the
    cause is chained); ``artifact`` names the derived blob (``quantized/...``) the failing step read."""

    def __init__(self, what: str, artifact: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.artifact = artifact


def safe_folder(base: Path, name: str, what: str = "row name") -> Path:
    """``base / name`` when it is a folder strictly inside ``base`` (symbolic links resolved); else
    :class:`InvalidRowError`: ``.``, ``..``, separators, control characters and over-long names never make
    a runner delete or write outside its working folder, whatever the store let through."""
    bad = (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or len(name) > 255
        or any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in name)
    )
    folder = Path(base) / str(name)
    if not bad:
        root = os.path.realpath(base)
        real = os.path.realpath(folder)
        bad = os.path.dirname(real) != root
    if bad:
        raise InvalidRowError(
            f"{what} {name!r} cannot be a folder under the working folder {base}: a name must not be . or "
            "..; hold / or \\ or control characters; or pass 255 characters (rename or delete the row)"
        )
    return folder


_REEXPORT = re.compile(
    r"re-export (?:the model|it)(?:, or re-download it if (?:the file|it) may be truncated)?"
)


def failure_text(item: WorkItem, exc: BaseException, folder: Path, experiment: str) -> str:
    """The row's ``error`` for a failed item: its label once (``convert: ...``, not ``convert: convert:``),
    what failed, the cause, with the runner's local paths shown as the blobs they came from
    (``<experiment>/<row>/model.onnx``) and, when a derived artifact was at fault, a hint to redo the
    conversion instead of re-exporting the model."""
    what, artifact, cause = None, None, exc
    if isinstance(exc, ItemFailed):
        what, artifact = exc.what, exc.artifact
        cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = "" if cause is exc and isinstance(exc, ItemFailed) else str(cause)
    blob_folder = f"{experiment}/{item.name}"
    for local in sorted(
        {str(folder), os.path.realpath(folder), os.path.abspath(folder)}, key=len, reverse=True
    ):
        text = text.replace(local, blob_folder)
    if artifact is not None:
        text = _REEXPORT.sub(
            f"the blob {blob_folder}/{artifact} is bad, not the exported model: reset the row's "
            "macs/quantized columns to redo the conversion",
            text,
        )
    while text.startswith(item.label + ": "):
        text = text[len(item.label) + 2 :]
    parts = [item.label]
    if what and not item.label.startswith(what) and not text.startswith(what):
        parts.append(what)
    if text:
        parts.append(text)
    return ": ".join(parts)
