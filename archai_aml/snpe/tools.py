"""The SDK's host tools: ``snpe-onnx-to-dlc``, ``snpe-dlc-quant(ize)`` (+ ``snpe-dlc-graph-prepare``) and
``snpe-dlc-info``, run as subprocesses in the SDK's environment.

A tool that fails (non-zero exit, or no success line where the tool prints one) raises a
:class:`TargetError` whose message is the tool's first ``[ERROR]`` line (else its last output line).

``snpe-dlc-info`` prints ``DLC info for: <path>``, a table ``| Id | Name | Type | Inputs | Outputs | Out
Dims | Runtimes | Parameters |`` and then ``Total parameters: N (M MB assuming single precision float)``
and ``Total MACs per inference: <si>`` where ``<si>`` is ``N``, ``Nk`` or ``NM`` followed by a
percentage (the SDK's ``get_si_notation``: the total is rounded to thousands or millions by the tool).
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from archai_aml.errors import TargetError
from archai_aml.snpe.sdk import SnpeSdk

__all__ = ["DlcInfo", "first_error_line", "parse_dlc_info", "run_tool"]

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


@dataclass(frozen=True)
class DlcLayer:
    id: int
    name: str
    type: str
    inputs: list[str]
    outputs: list[str]
    out_dims: list[int]
    parameters: str


@dataclass(frozen=True)
class DlcInfo:
    """What ``snpe-dlc-info`` says about a DLC."""

    macs: int
    params: int
    layers: list[DlcLayer]
    converter_version: str | None

    def output_tensors(self) -> list[tuple[str, list[int]]]:
        """Tensors some layer writes and no layer reads (the network's outputs), with their dims."""
        consumed = {t for layer in self.layers for t in layer.inputs}
        out = []
        for layer in self.layers:
            for t in layer.outputs:
                if t not in consumed:
                    out.append((t, layer.out_dims))
        return out


_SI = re.compile(r"^(\d+(?:\.\d+)?)([kM]?)$")


def _si(text: str, what: str) -> int:
    m = _SI.match(text.strip())
    if not m:
        raise TargetError(f"snpe-dlc-info printed {what} as {text!r}, which is not a number with k/M")
    return int(round(float(m.group(1)) * {"": 1, "k": 1_000, "M": 1_000_000}[m.group(2)]))


def _after(text: str, label: str) -> str:
    if label not in text:
        raise TargetError(f"snpe-dlc-info printed no {label!r} line")
    return text.split(label, 1)[1].split()[0]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_dlc_info(text: str) -> DlcInfo:
    """Totals and layers of ``snpe-dlc-info`` output (see the module docstring)."""
    params = _si(_after(text, "Total parameters:"), "the parameters")
    macs = _si(_after(text, "Total MACs per inference:"), "the MACs")
    version = None
    if "DLC created with converter version:" in text:
        version = _after(text, "DLC created with converter version:")
    layers: list[DlcLayer] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.strip().startswith("|"):
            continue
        cells = _cells(line)
        if cells and cells[0] == "Id":
            header = cells
            continue
        if header is None or len(cells) != len(header):
            continue
        row = dict(zip(header, cells, strict=True))
        if not row["Id"]:  # a continuation line: more parameters of the layer above
            if layers:
                prev = layers[-1]
                layers[-1] = DlcLayer(
                    **{**prev.__dict__, "parameters": f"{prev.parameters}; {row['Parameters']}"}
                )
            continue
        dims = [int(d) for d in re.findall(r"\d+", row.get("Out Dims", ""))]
        layers.append(
            DlcLayer(
                id=int(row["Id"]),
                name=row["Name"],
                type=row["Type"],
                inputs=[t for t in re.split(r"[,\s]+", row["Inputs"]) if t],
                outputs=[t for t in re.split(r"[,\s]+", row["Outputs"]) if t],
                out_dims=dims,
                parameters=row.get("Parameters", ""),
            )
        )
    if not layers:
        raise TargetError("snpe-dlc-info printed no layer table")
    return DlcInfo(macs=macs, params=params, layers=layers, converter_version=version)
