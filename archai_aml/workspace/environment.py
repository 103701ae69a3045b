"""The Azure ML environment that carries this library: a wheel of the current checkout in a Docker build
context, versioned by a content hash.

A user running from a clone has no package index that serves archai-aml, so the environment cannot
``pip install archai-aml`` by name. :func:`prepare_environment` instead builds a wheel of the checkout
(setuptools' build API, in a copy of the sources so the checkout gets no ``build/`` folder), writes a build
context folder with that wheel, the conda file and a ``Dockerfile`` ``FROM aml.environment.image``, and
returns an ``azure.ai.ml`` ``Environment(build=BuildContext(...))``. Azure ML uploads the folder and builds
the image; pip installs archai-aml from the wheel beside it (only its dependencies come from the index).

The version is a content hash of what goes into the image: the files inside the wheel (names and bytes,
not the zip, whose entries carry timestamps), the conda file as written into the context, the base image
and the Dockerfile. A change in the library gives a new version (a new image); an unchanged checkout gives
the same version, which the workspace already has, so nothing is built again. Workspace setup and the
training pipeline both take the reference from :func:`environment_reference`, so they agree.

``aml.environment.version`` set: a pinned, user-managed environment (``image`` + ``conda_file``, which must
then install archai-aml itself); no wheel is built.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archai_aml.config import EnvironmentConfig
from archai_aml.errors import ConfigError, WorkspaceError

__all__ = [
    "EnvironmentBuild",
    "build_wheel",
    "environment_reference",
    "plan_environment",
    "prepare_environment",
    "project_root",
    "wheel_digest",
]

log = logging.getLogger(__name__)

#: Folder of the build context inside the image while it is built (removed after pip has installed).
_IN_IMAGE = "/tmp/archai_aml_env"
#: pip requirement names that mean this library (installed from the wheel instead).
_SELF = re.compile(r"^\s*archai[-_]aml\b", re.IGNORECASE)
#: Files of a checkout that setuptools reads besides the package.
_PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py")
_DIGEST_CHARS = 16


@dataclass(frozen=True)
class EnvironmentBuild:
    """What goes into the environment: the context folder (Dockerfile, conda file, wheel) and its version."""

    name: str
    version: str
    image: str
    context: Path
    wheel: str
    conda: dict[str, Any] | None
    dockerfile: str

    @property
    def reference(self) -> str:
        """``name:version``, what pipelines and runner jobs name."""
        return f"{self.name}:{self.version}"

    def describe(self) -> str:
        conda = "conda file" if self.conda is not None else "no conda file"
        return f"build from {self.image} + {self.wheel} + {conda} (context {self.context})"

    def entity(self) -> Any:
        """The ``azure.ai.ml`` ``Environment`` to create (its build context holds the wheel)."""
        from azure.ai.ml.entities import BuildContext, Environment

        return Environment(
            name=self.name,
            version=self.version,
            build=BuildContext(path=str(self.context), dockerfile_path="Dockerfile"),
            description="archai-aml training and runner environment (wheel of the checkout)",
            tags={"archai_aml_content": self.version, "archai_aml_base_image": self.image},
        )


# ------------------------------------------------------------------------------------------- the wheel
def project_root() -> Path | None:
    """The checkout this library is imported from (the folder with ``pyproject.toml`` above the package)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "archai_aml").is_dir() else None


def _source_files(root: Path) -> list[Path]:
    files = [root / name for name in _PROJECT_FILES if (root / name).is_file()]
    for path in sorted((root / "archai_aml").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files.append(path)
    return files


def _fingerprint(root: Path) -> tuple[Any, ...]:
    """Names, sizes and mtimes of the sources: a cheap key for reusing a wheel built in this process."""
    entries = []
    for path in _source_files(root):
        stat = path.stat()
        entries.append((str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return (str(root), tuple(entries))


def build_wheel(root: Path, out_dir: Path) -> Path:
    """A wheel of the checkout ``root`` in ``out_dir`` (setuptools' build API in a copy of the sources)."""
    if not (root / "pyproject.toml").is_file():
        raise ConfigError(f"{root} is not a checkout of archai-aml (no pyproject.toml)")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="archai_aml_src_") as tmp:
        src = Path(tmp)
        for path in _source_files(root):
            target = src / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        code = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
        proc = subprocess.run(
            [sys.executable, "-c", code, str(out_dir.resolve())],
            cwd=src,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise WorkspaceError(
            f"building the archai-aml wheel from {root} failed (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-2000:]}; check that setuptools>=77 is installed"
        )
    name = proc.stdout.strip().splitlines()[-1]
    return out_dir / name


def wheel_digest(wheel: Path) -> str:
    """sha256 over the wheel's entries (sorted names and bytes), blind to the zip's timestamps."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(zf.namelist()):
            digest.update(name.encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(zf.read(name)).digest())
    return digest.hexdigest()


_lock = threading.Lock()
_wheels: dict[tuple[Any, ...], tuple[Path, str]] = {}
_workdir: Path | None = None


def _cache_dir() -> Path:
    global _workdir
    if _workdir is None:
        _workdir = Path(tempfile.mkdtemp(prefix="archai_aml_env_"))
        atexit.register(shutil.rmtree, _workdir, True)
    return _workdir


def _wheel_for(root: Path) -> tuple[Path, str]:
    """(wheel, digest) of ``root``, built once per process while the sources do not change."""
    key = _fingerprint(root)
    with _lock:
        if key not in _wheels:
            out = Path(tempfile.mkdtemp(prefix="wheel_", dir=_cache_dir()))
            wheel = build_wheel(root, out)
            _wheels[key] = (wheel, wheel_digest(wheel))
            log.debug("built %s from %s", wheel.name, root)
        return _wheels[key]


# ------------------------------------------------------------------------------------------- the context
def conda_dict(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise ConfigError(
            f"aml.environment.conda_file: {path} does not exist (paths are relative to the current folder; "
            "see examples/face_segmentation/conda.yaml)"
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"aml.environment.conda_file: {path} is not a conda environment mapping")
    return data


def _without_self(conda: dict[str, Any]) -> dict[str, Any]:
    """The conda file without pip lines naming archai-aml (the wheel in the context installs it)."""
    deps = []
    for dep in conda.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep:
            kept = [p for p in dep["pip"] or [] if not (isinstance(p, str) and _SELF.match(p))]
            if len(kept) != len(dep["pip"] or []):
                log.info(
                    "conda file: archai-aml comes from the wheel of the checkout, not from the pip index"
                )
            dep = {**dep, "pip": kept}
        deps.append(dep)
    return {**conda, "dependencies": deps}


def _dockerfile(image: str, wheel: str, conda: bool) -> str:
    lines = [f"FROM {image}", f"COPY {wheel} {_IN_IMAGE}/{wheel}"]
    if conda:
        lines += [
            f"COPY conda.yaml {_IN_IMAGE}/conda.yaml",
            f"RUN conda env update --name base --file {_IN_IMAGE}/conda.yaml && conda clean --all --yes",
        ]
    lines.append(
        f'RUN python -m pip install --no-cache-dir "{_IN_IMAGE}/{wheel}[azure]" && rm -rf {_IN_IMAGE}'
    )
    return "\n".join(lines) + "\n"


def prepare_environment(env: EnvironmentConfig, *, root: Path | None = None) -> EnvironmentBuild:
    """Build the wheel (once per process while the sources are unchanged) and the context; hash them.

    ``root`` is the checkout to package (default: the one this library is imported from).
    """
    import yaml

    root = root or project_root()
    if root is None:
        raise ConfigError(
            "aml.environment: archai-aml is not imported from a checkout (no pyproject.toml beside the "
            "package), so no wheel can be built: run from a clone, or set aml.environment.version to an "
            "environment whose image or conda file installs archai-aml"
        )
    wheel, wheel_sha = _wheel_for(root.resolve())
    conda = _without_self(conda_dict(Path(env.conda_file))) if env.conda_file is not None else None
    conda_text = yaml.safe_dump(conda, sort_keys=True) if conda is not None else ""
    dockerfile = _dockerfile(env.image, wheel.name, conda is not None)
    digest = hashlib.sha256()
    for part in (f"wheel:{wheel_sha}", f"conda:{conda_text}", f"image:{env.image}", f"docker:{dockerfile}"):
        digest.update(part.encode("utf-8") + b"\0")
    version = digest.hexdigest()[:_DIGEST_CHARS]
    context = _cache_dir() / f"context_{version}"
    if not (context / "Dockerfile").is_file():
        staging = Path(tempfile.mkdtemp(prefix="staging_", dir=_cache_dir()))
        shutil.copy2(wheel, staging / wheel.name)
        if conda is not None:
            (staging / "conda.yaml").write_text(conda_text, encoding="utf-8")
        (staging / "Dockerfile").write_text(dockerfile, encoding="utf-8")
        try:
            staging.rename(context)
        except OSError:  # another thread wrote the same context first
            shutil.rmtree(staging, ignore_errors=True)
    return EnvironmentBuild(env.name, version, env.image, context, wheel.name, conda, dockerfile)


def environment_reference(env: EnvironmentConfig, *, root: Path | None = None) -> str:
    """``name:version`` that jobs use: the pinned ``version``, else the content hash of the build."""
    if env.version:
        return f"{env.name}:{env.version}"
    return prepare_environment(env, root=root).reference


# ------------------------------------------------------------------------------------------- planning
def plan_environment(ml_client: Any, env: EnvironmentConfig, *, root: Path | None = None) -> Any:
    """The setup plan item of the environment: ``exists`` (reused), ``create`` or ``differs``."""
    from archai_aml.workspace.plan import ResourcePlan, lookup

    if not env.version:
        build = prepare_environment(env, root=root)
        existing = lookup(
            ml_client.environments.get, f"environment {build.reference}", env.name, build.version
        )
        if existing is None:
            return ResourcePlan(
                "environment", env.name, "create", build.describe(), build.entity(), build.reference
            )
        return ResourcePlan(
            "environment",
            env.name,
            "exists",
            f"version {build.version} (same content)",
            None,
            build.reference,
        )
    from azure.ai.ml.entities import Environment

    conda = conda_dict(Path(env.conda_file)) if env.conda_file is not None else None
    reference = f"{env.name}:{env.version}"
    existing = lookup(ml_client.environments.get, f"environment {reference}", env.name, env.version)
    if existing is None:
        entity = Environment(
            name=env.name,
            version=env.version,
            image=env.image,
            conda_file=conda,
            description="archai-aml training and runner environment (pinned version)",
        )
        detail = f"image {env.image}" + (f", conda {env.conda_file}" if env.conda_file else ", no conda file")
        return ResourcePlan("environment", env.name, "create", detail, entity, reference)
    differences = []
    if getattr(existing, "image", None) != env.image:
        differences.append(f"image is {existing.image}, config says {env.image}")
    if conda is not None and getattr(existing, "conda_file", None) != conda:
        differences.append(f"conda file differs from {env.conda_file}")
    if differences:
        return ResourcePlan(
            "environment",
            env.name,
            "differs",
            "; ".join(differences) + " (versions are immutable: set a new aml.environment.version)",
            None,
            reference,
        )
    return ResourcePlan("environment", env.name, "exists", f"version {existing.version}", None, reference)
