"""Output folders of the pipeline steps, checked before a step writes or registers anything: a step that
fails does so before its first side effect (a registered asset, a half-written split)."""

from __future__ import annotations

from pathlib import Path

from archai_aml.errors import DatasetError

__all__ = ["check_output_folder"]


def check_output_folder(path: Path, what: str) -> Path:
    """``path`` if it is, or can be made, a folder: :class:`DatasetError` naming ``what`` when it or one of
    its parents is an existing file (nothing is created here)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                shown = "it" if candidate == path else f"its parent {candidate}"
                raise DatasetError(
                    f"{what} {path} cannot be a folder: {shown} is an existing file; pass a folder path "
                    "(nothing was written or registered)"
                )
            break
    return path
