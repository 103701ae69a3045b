"""The SDK's host tools: ``snpe-onnx-to-dlc``, ``snpe-dlc-quant(ize)`` (+ ``snpe-dlc-graph-prepare``) and
``snpe-dlc-info``, run as subprocesses in the SDK's environment.

A tool that fails (non-zero exit, or no success line where the tool prints one) raises a
:class:`TargetError` whose message is the tool's first ``[ERROR]`` line (else its last output line).

``snpe-dlc-info``'s output (both generations) is parsed by :mod:`archai_aml.snpe.dlc_info`.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from archai_aml.errors import TargetError
from archai_aml.snpe.dlc_info import DlcInfo, DlcLayer, parse_dlc_info
from archai_aml.snpe.sdk import SnpeSdk

__all__ = ["DlcInfo", "DlcLayer", "first_error_line", "parse_dlc_info", "run_tool"]

log = logging.getLogger(__name__)


def first_error_line(output: str) -> str:
    """The first ``[ERROR]`` line of a tool's output, else its last non-empty line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "[ERROR]" in line:
            return line
    return lines[-1] if lines else "no output"


def run_tool(
    sdk: SnpeSdk, name: str, args: Sequence[str], *, success: Sequence[str] = (), timeout: float = 3600
) -> str:
    """Run a host tool; returns stdout + stderr. ``success``: one of these must appear in the output."""
    cmd = [str(sdk.tool(name)), *map(str, args)]
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=sdk.env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TargetError(f"{name} did not finish in {timeout:.0f} s") from exc
    except OSError as exc:
        raise TargetError(f"{name} cannot be started ({exc}): check the SDK at {sdk.root}") from exc
    output = (proc.stdout or "") + "\n" + (proc.stderr or "")
    if proc.returncode != 0 or (success and not any(s in output for s in success)):
        raise TargetError(f"{name} failed (exit {proc.returncode}): {first_error_line(output)}")
    return output
