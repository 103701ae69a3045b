"""``snpe_bench.py``: its JSON configuration and its result CSV.

The configuration keys are those of the SDK's benchmarking page (Name, HostRootPath, HostResultsDir,
DevicePath, Devices, HostName, Runs, Model{Name, Dlc, InputList, Data}, Runtimes, Measurements,
PerfProfile, CpuFallback, BufferTypes, ProfilingLevel). Results land in
``<HostResultsDir>/latest_results/benchmark_stats_<Name>.csv``; a result column is named by runtime and
measurement (``DSP_ub_tf8_timing``, ``CPU_timing``) and the value read is the one on the row that holds
``Total Inference Time`` in *any* cell (microseconds), as archai's SNPE scripts read it ("the row that
contains Total Inference Time"): the SDK's writer puts two empty cells before each data row, so the label
sits in the third cell (issue 16's reading of the writer; no real results file was found to quote).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from archai_aml.errors import TargetError
from archai_aml.snpe.sdk import SnpeSdk

__all__ = ["bench_config", "parse_bench_csv", "run_snpe_bench"]


def run_snpe_bench(sdk: SnpeSdk, config_path: Path, *, adb: str, timeout: float) -> Path:
    """``python snpe_bench.py -c config.json`` (``-t android-aarch64`` on 2.x: every 2.x example names the
    device OS, quic/qidk) in the SDK's environment with ``adb``'s folder on ``PATH``; returns the
    ``latest_results/benchmark_stats_<Name>.csv`` it wrote."""
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    env = dict(sdk.env)
    env["PATH"] = os.pathsep.join([str(Path(adb).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(sdk.bench.parent), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, str(sdk.bench_script), "-c", str(config_path)]
    if sdk.generation >= 2:
        cmd += ["-t", "android-aarch64"]
    device = config["Devices"][0]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, cwd=Path(config_path).parent, check=False,
            timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise TargetError(f"snpe_bench.py did not finish in {timeout:.0f} s on {device}") from exc
    if proc.returncode != 0:
        from archai_aml.snpe.tools import first_error_line

        raise TargetError(
            f"snpe_bench.py failed (exit {proc.returncode}): {first_error_line(proc.stdout + proc.stderr)}"
        )
    stats = Path(config["HostResultsDir"]) / "latest_results" / f"benchmark_stats_{config['Name']}.csv"
    if not stats.is_file():
        raise TargetError(f"snpe_bench.py wrote no {stats}")
    return stats


def bench_config(
    *, name: str, bench_dir: Path, dlc: Path, device: str, runs: int, device_path: str, runtime: str
) -> tuple[dict[str, Any], str]:
    """The configuration for one model and runtime (``DSP`` with user buffers in tf8, ``CPU``/``GPU`` with
    float tensors) and the result column it produces."""
    buffer = "ub_tf8" if runtime == "DSP" else "float"
    column = f"{runtime}_ub_tf8_timing" if runtime == "DSP" else f"{runtime}_timing"
    config: dict[str, Any] = {
        "Name": name,
        "HostRootPath": str(bench_dir),
        "HostResultsDir": str(bench_dir / "results"),
        "DevicePath": device_path,
        "Devices": [device],
        "HostName": "localhost",
        "Runs": runs,
        "Model": {
            "Name": name,
            "Dlc": str(dlc),
            "InputList": str(bench_dir / "input_list.txt"),
            "Data": [str(bench_dir / "data")],
        },
        "Runtimes": [runtime],
        "Measurements": ["timing"],
        "PerfProfile": "high_performance",
        "CpuFallback": False,
        "BufferTypes": [buffer],
        "ProfilingLevel": "basic",
    }
    return config, column


def parse_bench_csv(path: Path, column: str) -> float:
    """The ``Total Inference Time`` value (microseconds) of ``column`` in a benchmark_stats CSV."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    index = None
    for row in rows:
        for i, cell in enumerate(row):
            if cell.strip().startswith(column):
                index = i
                break
        if index is not None:
            break
    if index is None:
        raise TargetError(
            f"{Path(path).name} has no {column} column: did the {column.split('_')[0]} run fail?"
        )
    for row in rows:
        if any("Total Inference Time" in cell for cell in row) and len(row) > index:
            try:
                return float(row[index])
            except ValueError:
                raise TargetError(
                    f"{Path(path).name}: Total Inference Time of {column} is {row[index]!r}, not a number"
                ) from None
    raise TargetError(f"{Path(path).name} has no Total Inference Time row")
