"""How :class:`~archai_aml.pipelines.local.LocalJobRunner` turns a pipeline's command node into a
:class:`NodeRecord`: ``${{inputs.x}}`` / ``${{outputs.x}}`` bound to local folders (datastore URIs mapped under
the runner's root, another node's output to the folder that node writes), the node's code folder, its
environment variables, and the nodes it must wait for."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archai_aml.errors import JobError
from archai_aml.pipelines.base import NOT_STARTED

__all__ = ["NodeRecord", "NodeResolver"]

_BINDING = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_PARENT = re.compile(r"^\$\{\{\s*parent\.inputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
_DATASTORE = re.compile(r"^azureml://datastores/([^/]+)/paths/(.*)$")


@dataclass
class NodeRecord:
    """One command node of a local pipeline: what ran, where, when, and how it ended."""

    name: str
    command: str
    cwd: Path
    env: dict[str, str] = field(repr=False)
    log_path: Path
    status: str = NOT_STARTED
    returncode: int | None = None
    gpu: int | None = None
    pid: int | None = None
    started: float | None = None  # time.monotonic()
    ended: float | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    killed: bool = False
    #: Nodes whose outputs this node reads: it starts once they completed, is canceled if one did not.
    after: set[str] = field(default_factory=set)

    @property
    def wall_s(self) -> float | None:
        """Seconds from process start to exit, once ended."""
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


class NodeResolver:
    """Binds the command nodes of pipelines to folders under ``local_root``."""

    def __init__(self, local_root: Path) -> None:
        self.local_root = local_root

    def local_path(self, uri: str) -> Path:
        """The local folder for an input/output path (datastore URIs mapped under ``local_root``)."""
        m = _DATASTORE.match(uri)
        if m:
            return self.local_root / "datastores" / m.group(1) / m.group(2)
        if uri.startswith("file://"):
            return Path(uri[len("file://") :])
        if uri.startswith("azureml:") or "://" in uri:
            raise JobError(
                f"cannot resolve {uri!r} on this machine: use a local folder or an "
                "azureml://datastores/<name>/paths/<path> URI"
            )
        return Path(uri).resolve()

    def _input_value(self, pipeline_job: Any, value: Any, outputs: Mapping[tuple[str, str], str]) -> str:
        data = getattr(value, "_data", value)
        binding = str(data) if data is not None else ""
        owner = getattr(getattr(data, "_owner", None), "name", None)
        if owner and getattr(data, "_port_name", None):  # another node's output
            key = (str(owner), str(data._port_name))
            if key not in outputs:
                raise JobError(f"input {binding!r} reads node {owner!r}, which comes later or does not exist")
            return outputs[key]
        path = _path_of(data)
        m = _PARENT.match(binding) if path is None else None
        if m:
            parent = pipeline_job.inputs[m.group(1)]
            return self._input_value(pipeline_job, parent, outputs)
        if path is not None:
            return str(self.local_path(str(path)))
        if isinstance(data, (str, int, float, bool)):
            return str(data)
        raise JobError(f"cannot resolve pipeline input {binding!r} locally")

    def node_record(
        self,
        pipeline_job: Any,
        pipeline_name: str,
        node_name: str,
        node: Any,
        outputs: dict[tuple[str, str], str] | None = None,
    ) -> NodeRecord:
        command = getattr(node, "command", None)
        if not command:
            raise JobError(
                f"node {node_name!r} is not a command node: the local runner runs command nodes only"
            )
        outputs = {} if outputs is None else outputs
        resolved: dict[tuple[str, str], str] = {}
        after: set[str] = set()
        for key, value in (node.inputs or {}).items():
            resolved[("inputs", key)] = self._input_value(pipeline_job, value, outputs)
            owner = getattr(getattr(getattr(value, "_data", None), "_owner", None), "name", None)
            if owner:
                after.add(str(owner))
        for key, value in (node.outputs or {}).items():
            data = getattr(value, "_data", value)
            path = getattr(data, "path", None) or getattr(value, "path", None)
            out = (
                self.local_path(str(path))
                if path
                else self.local_root / pipeline_name / "outputs" / node_name / key
            )
            resolved[("outputs", key)] = str(out)
            outputs[(node_name, key)] = str(out)

        def repl(m: re.Match[str]) -> str:
            key = (m.group(1), m.group(2))
            if key not in resolved:
                raise JobError(
                    f"node {node_name!r}: command uses ${{{{{key[0]}.{key[1]}}}}} which is not defined"
                )
            return shlex.quote(resolved[key])

        text = _BINDING.sub(repl, str(command))
        code = getattr(node, "code", None)
        cwd = Path(str(code)).resolve() if code else self.local_root
        if not cwd.is_dir():
            raise JobError(f"node {node_name!r}: code folder {cwd} does not exist")
        env = {str(k): str(v) for k, v in (getattr(node, "environment_variables", None) or {}).items()}
        for (kind, _), path in resolved.items():
            if kind == "outputs":
                Path(path).mkdir(parents=True, exist_ok=True)
        return NodeRecord(
            name=node_name,
            command=text,
            cwd=cwd,
            env=env,
            log_path=self.local_root / pipeline_name / f"{node_name}.log",
            after=after,
        )


def _path_of(data: Any) -> Any:
    """``data.path``, or None (a pipeline input of type string raises on ``.path`` instead)."""
    try:
        return getattr(data, "path", None)
    except Exception:
        return None
