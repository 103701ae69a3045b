"""Parsing what ``snpe-dlc-info -i model.dlc`` prints, for both SNPE generations.

Both print ``DLC info for: <path>``, a table ``| Id | Name | Type | Inputs | Outputs | Out Dims | Runtimes |
Parameters |`` and the totals ``Total parameters: N (M MB assuming single precision float)`` and ``Total
MACs per inference: <si>`` (``N``, ``Nk`` or ``NM`` and a percentage: the SDK's ``get_si_notation``). A
layer with several inputs or outputs takes several rows: the first row carries the Id, the next ones an
empty Id and one more input and/or output each (and more Parameters).

* SNPE 1.x: the network input is a layer of type ``data`` (row 0), tensor cells hold bare names; a real
  1.54 table starts ``| 0 | t.1 | data | t.1 | t.1 | 1x32x32x1 | A D G C | input_preprocessing:
  passthrough |`` (a public SNPE tutorial's ``snpe-dlc-info -i ./dlc/mnist-mobilenet.dlc``).
* SNPE 2.x: inputs are folded into their consumers (no ``data`` layer); a tensor cell is ``name (data
  type: Float_32; tensor dimension: [1,19200,85]; tensor type: NATIVE)``, static weights are listed
  among the inputs, and after the table come an input section ``| Input Name | Dimensions | Type |
  Encoding Info |`` and an output section ``| Output Name | ... |`` (SNPE 2.22.6 output quoted in
  Kaiwei0323/SNPE_Yolov5_Model_Conversion README.md; luxonis/modelconverter reads the same sections from
  ``snpe-dlc-info -s`` CSV, ``Input Name,Dimensions,Type,Encoding Info``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archai_aml.errors import TargetError

__all__ = ["DlcInfo", "DlcLayer", "DlcTensor", "parse_dlc_info", "parse_tensor_cell"]


@dataclass(frozen=True)
class DlcTensor:
    name: str
    dims: list[int] = field(default_factory=list)
    kind: str = ""  # 2.x "tensor type": APP_WRITE (input), APP_READ (output), NATIVE, STATIC (weights)


@dataclass(frozen=True)
class DlcLayer:
    id: int
    name: str
    type: str
    inputs: list[str]
    outputs: list[str]
    out_dims: list[int]
    parameters: str
    tensors: dict[str, DlcTensor] = field(default_factory=dict)  # 2.x: each tensor's dims and kind


@dataclass(frozen=True)
class DlcInfo:
    """What ``snpe-dlc-info`` says about a DLC."""

    macs: int
    params: int
    layers: list[DlcLayer]
    converter_version: str | None
    inputs: list[DlcTensor] = field(default_factory=list)  # the 2.x input section
    outputs: list[DlcTensor] = field(default_factory=list)  # the 2.x output section

    @property
    def generation(self) -> int:
        return 2 if self.inputs or any(layer.tensors for layer in self.layers) else 1

    def input_tensors(self) -> list[DlcTensor]:
        """The network inputs: the 2.x input section, else the 1.x ``data`` layers."""
        if self.inputs:
            return list(self.inputs)
        data = [layer for layer in self.layers if layer.type.lower() in ("data", "input")]
        return [DlcTensor(layer.outputs[0], list(layer.out_dims)) for layer in data if layer.outputs]

    def output_tensors(self) -> list[tuple[str, list[int]]]:
        """The network outputs with their dims: the 2.x output section, else tensors some layer writes and
        no layer reads (every row of a layer counted)."""
        if self.outputs:
            return [(t.name, list(t.dims)) for t in self.outputs]
        consumed = {t for layer in self.layers for t in layer.inputs}
        out = []
        for layer in self.layers:
            for i, t in enumerate(layer.outputs):
                if t not in consumed:
                    known = layer.tensors.get(t)
                    out.append(
                        (t, known.dims if known and known.dims else (layer.out_dims if i == 0 else []))
                    )
        return out


_SI = re.compile(r"^(\d+(?:\.\d+)?)([kM]?)$")
_TENSOR = re.compile(r"^(?P<name>.*?)\s*\((?P<attrs>[^()]*data type:[^()]*)\)\s*$")


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


def _dims(text: str) -> list[int]:
    return [int(d) for d in re.findall(r"\d+", text)]


def parse_tensor_cell(cell: str) -> DlcTensor | None:
    """One tensor cell: a bare name (1.x) or ``name (data type: ...; tensor dimension: [...]; tensor type:
    ...)`` (2.x); ``None`` for an empty cell."""
    cell = cell.strip()
    if not cell:
        return None
    m = _TENSOR.match(cell)
    if not m:
        return DlcTensor(cell)
    attrs = dict(
        (k.strip(), v.strip()) for k, _, v in (a.partition(":") for a in m.group("attrs").split(";"))
    )
    return DlcTensor(m.group("name"), _dims(attrs.get("tensor dimension", "")), attrs.get("tensor type", ""))


@dataclass
class _Row:
    """A layer being read: its first row and the tensors of its continuation rows."""

    first: dict[str, str]
    inputs: list[DlcTensor] = field(default_factory=list)
    outputs: list[DlcTensor] = field(default_factory=list)
    params: list[str] = field(default_factory=list)

    def layer(self) -> DlcLayer:
        r = self.first
        return DlcLayer(
            id=int(r["Id"]),
            name=r["Name"],
            type=r["Type"],
            inputs=[t.name for t in self.inputs],
            outputs=[t.name for t in self.outputs],
            out_dims=_dims(r.get("Out Dims", "")),
            parameters="; ".join(p for p in [r.get("Parameters", ""), *self.params] if p),
            tensors={t.name: t for t in [*self.inputs, *self.outputs] if t.kind or t.dims},
        )


def parse_dlc_info(text: str) -> DlcInfo:
    """Totals, layers and (2.x) input and output sections of ``snpe-dlc-info`` output."""
    params = _si(_after(text, "Total parameters:"), "the parameters")
    macs = _si(_after(text, "Total MACs per inference:"), "the MACs")
    version = None
    if "DLC created with converter version:" in text:
        version = _after(text, "DLC created with converter version:")
    rows: list[_Row] = []
    sections: dict[str, list[DlcTensor]] = {"Input Name": [], "Output Name": []}
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.strip().startswith("|"):
            continue
        cells = _cells(line)
        if cells and cells[0] in ("Id", "Input Name", "Output Name"):
            header = cells
            continue
        if header is None or len(cells) != len(header):
            continue
        row = dict(zip(header, cells, strict=True))
        if header[0] != "Id":  # a row of the 2.x input or output section
            sections[header[0]].append(DlcTensor(row[header[0]], _dims(row.get("Dimensions", ""))))
            continue
        if row["Id"]:
            rows.append(_Row(row))
        elif not rows:
            continue
        else:  # a continuation row: one more input and/or output, more parameters
            rows[-1].params.append(row.get("Parameters", ""))
        for key, into in (("Inputs", rows[-1].inputs), ("Outputs", rows[-1].outputs)):
            tensor = parse_tensor_cell(row[key])
            if tensor is not None:
                into.append(tensor)
    layers = [r.layer() for r in rows]
    if not layers:
        raise TargetError("snpe-dlc-info printed no layer table")
    return DlcInfo(
        macs=macs,
        params=params,
        layers=layers,
        converter_version=version,
        inputs=sections["Input Name"],
        outputs=sections["Output Name"],
    )
