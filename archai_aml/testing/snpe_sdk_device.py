# ruff: noqa: T201 - the test tools are command-line programs: their output is what they print
"""The device side of the test SNPE SDK: ``snpe-net-run`` (run by the test adb's shell on a device folder)
and ``snpe_bench.py`` (run on the host; it drives the device through adb). Formats as documented in the
QAIRT 2.39 SNPE docs (``tools.html``, "snpe-net-run"; ``benchmarking.html``)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from archai_aml.testing.snpe_sdk_tools import (
    ToolError,
    _device_path,
    _fail,
    _input_list,
    _read_raw,
    _session,
    _to_nchw,
    read_dlc,
)

__all__ = ["net_run", "snpe_bench"]


def net_run(argv: list[str]) -> int:
    """``snpe-net-run`` on the device (tools.html, "snpe-net-run"): the libraries must be where
    ``LD_LIBRARY_PATH`` (and for ``--use_dsp`` ``ADSP_LIBRARY_PATH``) point."""
    p = argparse.ArgumentParser(prog="snpe-net-run")
    p.add_argument("--container", required=True)
    p.add_argument("--input_list", required=True)
    p.add_argument("--output_dir", default="output")
    p.add_argument("--use_dsp", action="store_true")
    p.add_argument("--use_gpu", action="store_true")
    p.add_argument("--perf_profile")
    p.add_argument("--profiling_level")
    a = p.parse_args(argv)
    cwd = Path.cwd()
    libs = [_device_path(d, cwd) for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    if not any((d / "libSNPE.so").is_file() for d in libs):
        _fail("Unable to load libSNPE.so: set LD_LIBRARY_PATH to the pushed runtime libraries")
    if a.use_dsp:
        dsp = [_device_path(d, cwd) for d in os.environ.get("ADSP_LIBRARY_PATH", "").split(";") if d]
        if not any(f.name.lower().endswith("skel.so") for d in dsp if d.is_dir() for f in d.iterdir()):
            _fail("Unable to load the DSP skel library: set ADSP_LIBRARY_PATH to the pushed dsp/lib folder")
    meta, model, _ = read_dlc(_device_path(a.container, cwd))
    sess = _session(model)
    out_dir = _device_path(a.output_dir, cwd)
    files = _input_list(_device_path(a.input_list, cwd), cwd, device=True)
    for i, f in enumerate(files):
        x = _to_nchw(_read_raw(f, meta["input_dims"]), meta)
        folder = out_dir / f"Result_{i}"
        folder.mkdir(parents=True, exist_ok=True)
        for o, y in zip(sess.get_outputs(), sess.run(None, {meta["input"]: x}), strict=True):
            y = y.transpose(0, 2, 3, 1) if y.ndim == 4 else y
            np.ascontiguousarray(y, dtype=np.float32).tofile(folder / f"{o.name}.raw")
    (out_dir / "SNPEDiag_0.log").write_bytes(b"")
    return 0


# ------------------------------------------------------------------------------------------- bench
# the configuration keys of benchmarking.html (QAIRT 2.39 docs/SNPE/html/general/benchmarking.html and the
# SNPE 1.x page developer.qualcomm.com/sites/default/files/docs/snpe/benchmarking.html)
_BENCH_KEYS = ("Name", "HostRootPath", "HostResultsDir", "DevicePath", "Devices", "Runs", "Model", "Runtimes",
               "Measurements")  # fmt: skip
_BENCH_OPTIONAL = ("HostName", "PerfProfile", "CpuFallback", "BufferTypes", "ProfilingLevel")
_MODEL_KEYS = ("Name", "Dlc", "InputList", "Data", "RandomInput")


def snpe_bench(argv: list[str]) -> int:
    """``snpe_bench.py`` (benchmarking.html): reads the config, pushes the DLC with adb, times ``Runs``
    inferences (here on the host CPU with onnxruntime: the test SDK has no DSP) and writes the CSV.

    * 2.x: the config is checked key by key and an unknown key is refused, as the 2.x ``quick_verify``
      does (issue 16's reading of the 2.x script); ``-t`` (the device OS) is required: every 2.x example
      passes ``-t android-aarch64`` (quic/qidk), whether 2.x has a default is not documented, so this
      stand-in insists.
    * CSV (``latest_results/benchmark_stats_<Name>.csv``): each data row starts with two empty cells, its
      label in the third (issue 16's reading of the SDK's CSV writer); the header row names the result
      columns ``<runtime>[_<buffer>]_timing`` at the same positions; times in microseconds. No real
      results file was found: the rows beyond ``Total Inference Time`` and the sections are this stand-in's.
    """
    p = argparse.ArgumentParser(prog="snpe_bench.py")
    p.add_argument("-c", "--config_file", required=True)
    for flag in ("-o", "-v", "-r", "-t", "-s", "-b", "-p", "-l"):
        p.add_argument(flag)
    for flag in ("-a", "-d", "-json", "-cache"):
        p.add_argument(flag, action="store_true")
    a = p.parse_args(argv)
    gen = int(os.environ.get("FAKE_SNPE_GENERATION", "2"))
    cfg = json.loads(Path(a.config_file).read_text(encoding="utf-8"))
    missing = [k for k in _BENCH_KEYS if k not in cfg]
    if missing:
        _fail(f"config {a.config_file} is missing {missing}")
    model_cfg = cfg["Model"]
    if gen >= 2:
        unknown = [k for k in cfg if k not in _BENCH_KEYS + _BENCH_OPTIONAL]
        unknown += [f"Model.{k}" for k in model_cfg if k not in _MODEL_KEYS]
        if unknown:
            _fail(f"config {a.config_file}: unknown key(s) {unknown}")
        if not a.t:
            _fail("no device OS given: pass -t android-aarch64")
    for key in ("Name", "Dlc", "InputList"):
        if key not in model_cfg:
            _fail(f"config Model is missing {key}")
    bad = [r for r in cfg["Runtimes"] if r not in ("CPU", "GPU", "GPU_FP16", "DSP", "AIP")]
    if bad:
        _fail(f"unknown runtime(s) {bad}")
    device = a.v or cfg["Devices"][0]
    adb = shutil.which("adb")
    if adb is None:
        raise ToolError("adb not found on PATH")
    for cmd in (
        ["get-state"],
        ["shell", f"mkdir -p {cfg['DevicePath']}"],
        ["push", model_cfg["Dlc"], cfg["DevicePath"]],
    ):
        proc = subprocess.run([adb, "-s", device, *cmd], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            _fail(f"adb {cmd[0]} on {device} failed: {proc.stderr.strip()}")
    meta, model, _ = read_dlc(model_cfg["Dlc"])
    listed = _input_list(Path(model_cfg["InputList"]), Path(model_cfg["InputList"]).parent)
    x = _to_nchw(_read_raw(listed[0], meta["input_dims"]), meta)
    sess = _session(model)
    sess.run(None, {meta["input"]: x})
    results = Path(cfg["HostResultsDir"]) / time.strftime("%Y%m%d%H%M%S")
    results.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerows([["Benchmark Name", cfg["Name"]], ["Model Name", model_cfg["Name"]],
                 ["Dlc", model_cfg["Dlc"]], ["Runs", cfg["Runs"]], ["Device", device]])  # fmt: skip
    header, avg = ["", "", ""], ["", "", "Total Inference Time"]
    for runtime in cfg["Runtimes"]:
        for buffer in cfg.get("BufferTypes", ["float"]):
            column = f"{runtime}_{buffer}_timing" if buffer.startswith("ub_") else f"{runtime}_timing"
            times = []
            for _ in range(int(cfg["Runs"])):
                t0 = time.perf_counter_ns()
                sess.run(None, {meta["input"]: x})
                times.append((time.perf_counter_ns() - t0) / 1000.0)
            header.append(column)
            avg.append(f"{sum(times) / len(times):.0f}")
    w.writerows([["Execution Metrics"], header, avg])
    (results / f"benchmark_stats_{cfg['Name']}.csv").write_text(buf.getvalue(), encoding="utf-8")
    latest = Path(cfg["HostResultsDir"]) / "latest_results"
    shutil.rmtree(latest, ignore_errors=True)
    shutil.copytree(results, latest)
    return 0
