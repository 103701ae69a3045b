# ruff: noqa: T201 - the test tools are command-line programs: their output is what they print
"""The tools of the test SNPE SDK (:mod:`archai_aml.testing.snpe_sdk`): small programs that check the
arguments they get and write outputs in the formats Qualcomm documents, computing real results.

A test DLC is a zip holding the float ONNX model (``float.onnx``), the model that runs (``model.onnx``: the
float one, or after quantization a QDQ model quantized on the calibration files the input list names) and
``meta.json`` (input name and dims in the DLC's layout, output names and dims, quantized, HTP SoCs).

Formats reproduced (each from the page cited at its function):
* ``snpe-onnx-to-dlc``: flags ``-i``, ``-o``, ``-d NAME DIMS``, ``--input_layout NAME LAYOUT``,
  ``--out_node``; prints ``Conversion completed successfully``.
* ``snpe-dlc-quant`` / ``snpe-dlc-quantize`` / ``snpe-dlc-graph-prepare``: ``--input_dlc``,
  ``--input_list``, ``--output_dlc``, ``--htp_socs``; errors as ``[ERROR]`` lines.
* ``snpe-dlc-info``: ``DLC info for:``, the layer table, ``Total parameters:``, ``Total MACs per
  inference:`` in SI notation (``N``, ``Nk``, ``NM``), ``-s`` CSV.
* ``snpe-net-run`` (on the device) and ``snpe_bench.py``: :mod:`archai_aml.testing.snpe_sdk_device`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ToolError", "read_dlc"]

# https://apigwx-aws.qualcomm.com/qsc/public/v1/api/download/software/sdks/Qualcomm_AI_Runtime_Community/All/
# 2.39.0.250926/v2.39.0.250926.zip:.../qairt/2.39.0.250926/docs/SNPE/html/general/ (QAIRT 2.39 SNPE docs):
# tools.html (snpe-onnx-to-dlc, snpe-net-run, snpe-dlc-info), tools_model_preparation.html
# (snpe-dlc-quant, snpe-dlc-graph-prepare), benchmarking.html (snpe_bench.py), offline_graph_caching.html
DOCS = "QAIRT 2.39 docs/SNPE/html/general"
CONVERTER_VERSION = "2.39.0.250926"


class ToolError(Exception):
    """Printed as ``[ERROR] <message>`` and exit status 1."""


def _fail(message: str) -> None:
    raise ToolError(message)


# ------------------------------------------------------------------------------------------- DLC files
def read_dlc(path: str | Path) -> tuple[dict[str, Any], bytes, bytes]:
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("meta.json")), z.read("model.onnx"), z.read("float.onnx")
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        _fail(f"Failed to open input DLC {path}: {exc}")
        raise  # unreachable


def write_dlc(path: str | Path, meta: dict[str, Any], model: bytes, float_model: bytes) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.json", json.dumps(meta))
        z.writestr("model.onnx", model)
        z.writestr("float.onnx", float_model)


def _nhwc(dims: list[int]) -> list[int]:
    return [dims[0], dims[2], dims[3], dims[1]] if len(dims) == 4 else list(dims)


def _session(model: bytes) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def _read_raw(path: Path, dims: list[int]) -> np.ndarray:
    expected = int(np.prod(dims)) * 4
    if not path.is_file():
        _fail(f"Could not open input file: {path}")
    if path.stat().st_size != expected:
        _fail(f"Input file {path} has {path.stat().st_size} bytes, the input tensor {dims} needs {expected}")
    return np.fromfile(path, dtype=np.float32).reshape(dims)


def _input_list(path: Path, base: Path, device: bool = False) -> list[Path]:
    """Files an input list names (``name:=path`` or a plain path per line; ``#``/``%`` lines name outputs);
    relative paths from ``base``, absolute ones on the device's filesystem when ``device``."""
    if not path.is_file():
        _fail(f"Could not open input list: {path}")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line[0] in "#%":
            continue
        entry = line.split(":=", 1)[-1].split()[0]
        out.append(
            _device_path(entry, base)
            if device
            else (Path(entry) if Path(entry).is_absolute() else base / entry)
        )
    if not out:
        _fail(f"Input list {path} names no input")
    return out


def _to_nchw(x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """A raw input read in the DLC's dims (N H W C for images converted from NCHW) as the ONNX model's NCHW."""
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 and meta["layout"] == "NCHW" else x


# ------------------------------------------------------------------------------------------ host tools
def onnx_to_dlc(argv: list[str]) -> int:
    """``snpe-onnx-to-dlc`` (tools.html, "snpe-onnx-to-dlc")."""
    import onnx

    p = argparse.ArgumentParser(prog="snpe-onnx-to-dlc")
    p.add_argument("-i", "--input_network", required=True)
    p.add_argument("-o", "--output_path")
    p.add_argument("-d", "--input_dim", nargs=2, action="append", default=[])
    p.add_argument("--input_layout", nargs=2, action="append", default=[])
    p.add_argument("--out_node", action="append", default=[])
    a = p.parse_args(argv)
    try:
        model = onnx.load(a.input_network)
    except Exception as exc:
        _fail(f"Unable to load ONNX model {a.input_network}: {exc}")
    inits = {t.name for t in model.graph.initializer}
    inputs = {
        i.name: [d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
        if i.name not in inits
    }
    dims: dict[str, list[int]] = {}
    for name, text in a.input_dim:
        if name not in inputs:
            _fail(f"Input name {name} given to -d is not an input of the model (inputs: {sorted(inputs)})")
        dims[name] = [int(v) for v in text.split(",")]
        declared = inputs[name]
        if len(declared) != len(dims[name]) or any(
            d and d != v for d, v in zip(declared, dims[name], strict=True)
        ):
            _fail(f"Input {name}: dims {dims[name]} do not match the model's {declared}")
    missing = [n for n in inputs if n not in dims and not all(inputs[n])]
    if missing:
        _fail(f"Input {missing[0]} has symbolic dims: pass -d {missing[0]} <dims>")
    layouts = dict(a.input_layout)
    for name, layout in layouts.items():
        if layout not in ("NCHW", "NHWC", "NFC", "NCF", "NTF", "TNF", "NF", "NC", "F"):
            _fail(f"Unknown input layout {layout} for {name}")
    outputs = [o.name for o in model.graph.output]
    for o in a.out_node:
        if o not in outputs and o not in {t for n in model.graph.node for t in n.output}:
            _fail(f"Output node {o} is not in the graph")
    (name,) = inputs
    shape = dims.get(name) or inputs[name]
    sess = _session(model.SerializeToString())
    results = sess.run(None, {name: np.zeros(shape, dtype=np.float32)})
    layout = layouts.get(name, "NCHW")
    meta = {
        "input": name,
        "layout": layout,
        "input_dims": _nhwc(shape) if layout == "NCHW" else shape,
        "outputs": {o.name: _nhwc(list(r.shape)) for o, r in zip(sess.get_outputs(), results, strict=True)},
        "quantized": False,
        "htp_socs": None,
        "converter_version": CONVERTER_VERSION,
        "converter_command": "snpe-onnx-to-dlc " + " ".join(argv),
    }
    out = a.output_path or str(Path(a.input_network).with_suffix(".dlc"))
    data = model.SerializeToString()
    write_dlc(out, meta, data, data)
    print("INFO - INFO_CONVERSION_SUCCESS: Conversion completed successfully", file=sys.stderr)
    return 0


def dlc_quant(argv: list[str], prog: str) -> int:
    """``snpe-dlc-quant`` (2.x) / ``snpe-dlc-quantize`` (1.x) (tools_model_preparation.html)."""
    from archai_aml.onnx.quantize import quantize_qdq

    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--input_dlc", required=True)
    p.add_argument("--input_list", required=True)
    p.add_argument("--output_dlc")
    if prog == "snpe-dlc-quantize":
        p.add_argument("--use_enhanced_quantizer", action="store_true")
        p.add_argument("--enable_htp", action="store_true")
        p.add_argument("--htp_socs")
    a = p.parse_args(argv)
    meta, _, float_model = read_dlc(a.input_dlc)
    if meta["quantized"]:
        _fail(f"{a.input_dlc} is already quantized")
    files = _input_list(Path(a.input_list), Path.cwd())
    calibration = [_to_nchw(_read_raw(f, meta["input_dims"]), meta) for f in files]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "float.onnx"
        src.write_bytes(float_model)
        out = quantize_qdq(
            src,
            calibration,
            Path(tmp) / "quant.onnx",
            per_channel=False,
            activation_type="quint8",
            weight_type="quint8",
        )
        quant = out.read_bytes()
    meta = {**meta, "quantized": True}
    if prog == "snpe-dlc-quantize" and a.enable_htp:
        meta["htp_socs"] = a.htp_socs or "sm8550"
    out_path = a.output_dlc or str(Path(a.input_dlc).with_name(Path(a.input_dlc).stem + "_quantized.dlc"))
    write_dlc(out_path, meta, quant, float_model)
    print(f"[INFO] Writing quantized model to: {out_path}")
    print(f"[INFO] Saved quantized dlc to: {out_path}")
    return 0


def graph_prepare(argv: list[str]) -> int:
    """``snpe-dlc-graph-prepare`` (tools_model_preparation.html; offline_graph_caching.html)."""
    p = argparse.ArgumentParser(prog="snpe-dlc-graph-prepare")
    p.add_argument("--input_dlc", required=True)
    p.add_argument("--output_dlc")
    p.add_argument("--htp_socs")
    p.add_argument("--input_list")
    a = p.parse_args(argv)
    if a.htp_socs and not re.fullmatch(r"(sm|qcs|sc)\d+[a-z]*(,(sm|qcs|sc)\d+[a-z]*)*", a.htp_socs):
        _fail(f"Unknown SoC in --htp_socs {a.htp_socs}")
    meta, model, float_model = read_dlc(a.input_dlc)
    meta = {**meta, "htp_socs": a.htp_socs or "sm8550"}
    out = a.output_dlc or str(Path(a.input_dlc).with_name(Path(a.input_dlc).stem + "_cached.dlc"))
    write_dlc(out, meta, model, float_model)
    print(f"[INFO] Graph cache for {meta['htp_socs']} written to {out}")
    return 0


def _si(n: int, total: int) -> str:
    """The SDK's SI notation of a count: ``N``, ``Nk`` or ``NM`` (integer) with its share of the total."""
    pct = 100.0 * n / total if total else 0.0
    if n < 1000:
        return f"{n} ({pct:.3g}%)"
    if n < 1_000_000:
        return f"{n // 1000}k ({pct:.3g}%)"
    return f"{n // 1_000_000}M ({pct:.3g}%)"


def _generation() -> int:
    """The SDK generation this tool belongs to (set by the test SDK's wrapper scripts)."""
    return int(os.environ.get("FAKE_SNPE_GENERATION", "2"))


def _tensor_cell(name: str, dims: list[int], kind: str, quantized: bool) -> str:
    """A 2.x tensor cell: ``name (data type: Float_32; tensor dimension: [1,8,8,3]; tensor type: NATIVE)``
    (the SNPE 2.22.6 table quoted in Kaiwei0323/SNPE_Yolov5_Model_Conversion README.md; ``uFxp_8`` for a
    quantized activation as in luxonis/modelconverter's test fixture)."""
    dtype = "Float_32" if not quantized or kind == "STATIC" else "uFxp_8"
    return f"{name} (data type: {dtype}; tensor dimension: [{','.join(map(str, dims))}]; tensor type: {kind})"


def dlc_info(argv: list[str]) -> int:
    """``snpe-dlc-info`` (tools.html, "snpe-dlc-info"), in the layout of the SDK generation it belongs to:

    * 1.x: row 0 is the ``data`` layer, tensor cells are bare names (the 1.54 table of a public SNPE
      tutorial: ``| 0 | t.1 | data | t.1 | t.1 | 1x32x32x1 | A D G C | input_preprocessing: passthrough |``);
    * 2.x: no ``data`` layer (SNPE2 folds Input and Const layers into their consumers:
      Kaiwei0323/SNPE_YOLO_Study_Guide README, "SNPE1 to SNPE2 Migration"), tensor cells with data type,
      dimension and tensor type, static weights listed among the inputs, then the ``Input Name`` and
      ``Output Name`` sections (SNPE 2.22.6, Kaiwei0323/SNPE_Yolov5_Model_Conversion README.md);
    * both: a layer's 2nd and later inputs and outputs on continuation rows with an empty Id (the same
      2.22.6 table: ``/model.24/Concat_3`` lists its three inputs on three rows).

    Where the totals sit relative to the 2.x sections is not shown by any output found; here they follow
    the output section.
    """
    import onnx

    from archai_aml.onnx.info import onnx_model_info

    p = argparse.ArgumentParser(prog="snpe-dlc-info")
    p.add_argument("-i", "--input_dlc", required=True)
    p.add_argument("-s", "--save")
    a = p.parse_args(argv)
    meta, _, float_model = read_dlc(a.input_dlc)
    gen = _generation()
    model = onnx.load_from_string(float_model)
    info = onnx_model_info(model)
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]
    }
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    header = ["Id", "Name", "Type", "Inputs", "Outputs", "Out Dims", "Runtimes", "Parameters"]
    quantized = bool(meta["quantized"])

    def cell(name: str) -> str:
        if gen < 2:
            return name
        if name == meta["input"]:
            return _tensor_cell(name, meta["input_dims"], "APP_WRITE", quantized)
        if name in inits:
            return _tensor_cell(name, inits[name], "STATIC", quantized)
        kind = "APP_READ" if name in outputs else "NATIVE"
        return _tensor_cell(name, meta["outputs"].get(name) or _nhwc(shapes.get(name, [])), kind, quantized)

    rows: list[list[str]] = []
    if gen < 2:
        data_dims = "x".join(map(str, meta["input_dims"]))
        rows.append(["0", meta["input"], "data", meta["input"], meta["input"], data_dims, "A D G C",
                     "input_preprocessing: passthrough"])  # fmt: skip
    for i, (node, layer) in enumerate(zip(model.graph.node, info.layers, strict=True), start=len(rows)):
        out = node.output[0]
        dims = meta["outputs"].get(out) or _nhwc(layer.output_shape or [])
        params = [f"param count: {_si(layer.params, info.params)}"] if layer.params else []
        if layer.macs:
            params.append(f"MACs per inference: {_si(layer.macs, info.macs)}")
        ins = [t for t in node.input if t and (gen >= 2 or t not in inits)]
        outs = [t for t in node.output if t]
        kind = node.op_type if gen >= 2 else node.op_type.lower()
        for r in range(max(len(ins), len(outs), len(params), 1)):
            first = r == 0
            rows.append(
                [
                    str(i) if first else "",
                    layer.name if first else "",
                    kind if first else "",
                    cell(ins[r]) if r < len(ins) else "",
                    cell(outs[r]) if r < len(outs) else "",
                    "x".join(map(str, dims)) if first else "",
                    "A D G C" if first else "",
                    params[r] if r < len(params) else "",
                ]
            )
    lines_before = [
        f"DLC info for: {Path(a.input_dlc).resolve()}",
        "Model Version: N/A",
        "Model Copyright:N/A",
    ]
    sections: list[list[list[str]]] = []
    if gen >= 2:
        io_type = "uFxp_8" if quantized else "Float_32"
        none = "No encoding info for this tensor"
        sections.append(
            [["Input Name", "Dimensions", "Type", "Encoding Info"],
             [meta["input"], ",".join(map(str, meta["input_dims"])), io_type, none]]
        )  # fmt: skip
        sections.append(
            [["Output Name", "Dimensions", "Type", "Encoding Info"]]
            + [[o, ",".join(map(str, d)), io_type, none] for o, d in meta["outputs"].items()]
        )
    lines_after = [
        f"Total parameters: {info.params} ({info.params * 4 // 1_000_000} MB assuming single precision float)",
        f"Total MACs per inference: {_si(info.macs, info.macs)}",
        f"Converter command: {meta['converter_command']}",
        f"DLC created with converter version: {meta['converter_version']}",
        f"Est. Steady-State Memory Needed to Run: {max(0.1, info.params * 4 / 2**20):.1f} MiB",
    ]
    if meta["quantized"]:
        lines_after.insert(3, "Quantizer command: snpe-dlc-quant")

    def table(head: list[str], body: list[list[str]]) -> list[str]:
        widths = [max(len(r[c]) for r in [head, *body]) for c in range(len(head))]
        rule = "-" * (sum(widths) + 3 * len(widths) + 1)

        def fmt(r: list[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

        return [rule, fmt(head), rule, *map(fmt, body), rule]

    text = [*lines_before, *table(header, rows)]
    if gen >= 2:
        text += ["Note: The supported runtimes column assumes a processor target of Snapdragon 855",
                 "Key : A:AIP", "      D:DSP", "      G:GPU", "      C:CPU", ""]  # fmt: skip
        for sec in sections:
            text += table(sec[0], sec[1:])
    print("\n".join([*text, *lines_after]))
    if a.save:
        with open(a.save, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerows([[x] for x in lines_before])
            w.writerows([header, *rows])
            for sec in sections:
                w.writerows(sec)
            w.writerows([[x] for x in lines_after])
    return 0


# ------------------------------------------------------------------------------------------ on device
def _device_path(text: str, cwd: Path) -> Path:
    root = Path(os.environ["FAKE_DEVICE_ROOT"])
    return root / text.lstrip("/") if text.startswith("/") else cwd / text


_TOOLS = {
    "snpe-onnx-to-dlc": onnx_to_dlc,
    "snpe-dlc-quant": lambda argv: dlc_quant(argv, "snpe-dlc-quant"),
    "snpe-dlc-quantize": lambda argv: dlc_quant(argv, "snpe-dlc-quantize"),
    "snpe-dlc-graph-prepare": graph_prepare,
    "snpe-dlc-info": dlc_info,
}
