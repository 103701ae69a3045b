"""The project folder convention of ``archai-aml run``, resolved the same way here and inside an Azure ML job.

::

    <project>/
      pipeline/              the script and its support files (the job's code snapshot)
      data_blobs/raw/        unprocessed data sets, one folder each
      data_blobs/working/    processed data sets, one folder each
      outputs/               everything the script writes (locally: outputs/<job name>/)

A script asks :func:`raw_data`, :func:`working_data` and :func:`outputs_dir` for full paths and never
builds them itself. The executor tells it where things are through environment variables (the data
mounts of an Azure ML job, the folders of a local run); without them (a script started by hand) the
project is the folder above ``pipeline/`` (``ARCHAI_AML_PROJECT``, else found upward from the current
folder). A data set synced zipped (one ``<name>.zip`` blob) is extracted on first use into a local cache.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from archai_aml.errors import ConfigError
from archai_aml.store.rules import check_blob_name, safe_blob_path

__all__ = [
    "ENV_OUTPUTS",
    "ENV_PIPELINE",
    "ENV_PROJECT",
    "ENV_RAW",
    "ENV_WORKING",
    "ProjectPaths",
    "outputs_dir",
    "pipeline_dir",
    "project_paths",
    "raw_data",
    "working_data",
]

ENV_PROJECT = "ARCHAI_AML_PROJECT"
ENV_PIPELINE = "ARCHAI_AML_PIPELINE_DIR"
ENV_RAW = "ARCHAI_AML_DATA_RAW"
ENV_WORKING = "ARCHAI_AML_DATA_WORKING"
ENV_OUTPUTS = "ARCHAI_AML_OUTPUTS"

PIPELINE = "pipeline"
DATA_BLOBS = "data_blobs"
KINDS = ("raw", "working")
OUTPUTS = "outputs"


@dataclass(frozen=True)
class ProjectPaths:
    """Full paths of the convention's folders (see the module docstring)."""

    pipeline: Path
    raw: Path
    working: Path
    outputs: Path

    @classmethod
    def of_project(cls, root: str | Path, outputs: str | Path | None = None) -> ProjectPaths:
        """The folders of a project on this machine (``outputs`` defaults to ``<root>/outputs``)."""
        base = Path(root).resolve()
        return cls(
            pipeline=base / PIPELINE,
            raw=base / DATA_BLOBS / "raw",
            working=base / DATA_BLOBS / "working",
            outputs=Path(outputs).resolve() if outputs is not None else base / OUTPUTS,
        )

    def environment(self) -> dict[str, str]:
        """The variables that make :func:`project_paths` return these folders in a child process."""
        return {
            ENV_PIPELINE: str(self.pipeline),
            ENV_RAW: str(self.raw),
            ENV_WORKING: str(self.working),
            ENV_OUTPUTS: str(self.outputs),
        }

    def data(self, kind: str, name: str = "") -> Path:
        """``data_blobs/<kind>/<name>`` (``kind``: raw or working); a zipped data set is extracted first."""
        if kind not in KINDS:
            raise ConfigError(f"data kind {kind!r}: use one of {', '.join(KINDS)}")
        base = self.raw if kind == "raw" else self.working
        if not name:
            return base
        check_blob_name(name)
        folder = safe_blob_path(base, name)
        archive = base / f"{name}.zip"
        if not folder.exists() and archive.is_file():
            return _extracted(archive, self.outputs.parent / ".archai_aml_data" / kind / name)
        return folder


def _find_project(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / PIPELINE).is_dir() or (folder / DATA_BLOBS).is_dir():
            return folder
    return None


def _extracted(archive: Path, target: Path) -> Path:
    done = target / ".extracted"
    if done.is_file() and done.read_text() == str(archive.stat().st_size):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            dest = safe_blob_path(target, member)  # refuses names that would escape the folder
            if member.endswith("/"):
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(member))
    done.write_text(str(archive.stat().st_size))
    return target


def project_paths() -> ProjectPaths:
    """The folders of the running script: from the executor's variables, else from the project folder."""
    env = os.environ
    if all(env.get(k) for k in (ENV_RAW, ENV_WORKING, ENV_OUTPUTS)):
        pipeline = Path(env.get(ENV_PIPELINE) or Path.cwd())
        return ProjectPaths(
            pipeline=pipeline.resolve(),
            raw=Path(env[ENV_RAW]).resolve(),
            working=Path(env[ENV_WORKING]).resolve(),
            outputs=Path(env[ENV_OUTPUTS]).resolve(),
        )
    root = Path(env[ENV_PROJECT]) if env.get(ENV_PROJECT) else _find_project(Path.cwd().resolve())
    if root is None:
        raise ConfigError(
            f"no project folder: run inside a folder with {PIPELINE}/ or {DATA_BLOBS}/ (or below it), set "
            f"{ENV_PROJECT}, or start the script with archai-aml run"
        )
    return ProjectPaths.of_project(root)


def pipeline_dir() -> Path:
    """The script's folder (``pipeline/``; the code snapshot in a job)."""
    return project_paths().pipeline


def raw_data(name: str = "") -> Path:
    """``data_blobs/raw/<name>`` (a job's mount of it on Azure ML)."""
    return project_paths().data("raw", name)


def working_data(name: str = "") -> Path:
    """``data_blobs/working/<name>`` (a job's mount of it on Azure ML)."""
    return project_paths().data("working", name)


def outputs_dir(name: str = "") -> Path:
    """``outputs/`` (or ``outputs/<name>``), created; kept by Azure ML and downloaded when the job ends."""
    base = project_paths().outputs
    path = safe_blob_path(base, name) if name else base
    path.mkdir(parents=True, exist_ok=True)
    return path
