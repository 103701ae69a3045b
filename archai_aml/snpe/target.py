"""The ``snpe`` target: the Qualcomm Neural Processing SDK on the host and a Snapdragon board over adb.

* ``convert``: ``snpe-onnx-to-dlc -i m.onnx -o model.dlc -d <input> N,C,H,W --input_layout <input> NCHW
  --out_node <output>`` (input name and dims read from the ONNX model).
* ``quantize``: converts the float ONNX first if given one, writes the calibration images as raw float32
  NHWC files (the DLC's input layout) named by hash into a space-free temporary folder, with an input
  list of their paths (the format splits lines on spaces), then ``snpe-dlc-quant`` +
  ``snpe-dlc-graph-prepare`` (SNPE 2.x; ``--htp_socs`` when set) or ``snpe-dlc-quantize
  --use_enhanced_quantizer`` (SNPE 1.x) into ``model.quant.dlc``.
* ``info``: ``snpe-dlc-info -i model.dlc -s layers.csv``: MACs and parameters from its totals.
* ``run_batch``: on the device, ``snpe-net-run`` over an input list of raw NHWC files (``--use_dsp`` for
  a quantized DLC, the CPU for a float one), in runs of ``inputs_per_run`` inputs; ``output/Result_<i>/
  <tensor>.raw`` is matched to line ``i`` of the input list and returned NCHW.
* ``benchmark``: ``snpe_bench.py -c config.json`` (``-t android-aarch64`` on 2.x; the script where the SDK
  has it: ``benchmarks/SNPE/`` in 2.x, ``benchmarks/`` in 1.x) from a generated config (one random input
  of the input section's dims, ``Runs`` = iterations); its ``benchmark_stats_<name>.csv`` gives the
  average total inference time, on the row labelled ``Total Inference Time`` wherever the label sits.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from archai_aml.errors import TargetError
from archai_aml.onnx.info import onnx_io
from archai_aml.snpe.adb import AdbDevice
from archai_aml.snpe.bench import bench_config, parse_bench_csv, run_snpe_bench
from archai_aml.snpe.sdk import SnpeSdk, find_sdk
from archai_aml.snpe.tools import DlcInfo, parse_dlc_info, run_tool
from archai_aml.targets.base import BenchmarkResult, ModelInfo, Target

__all__ = ["SnpeTarget"]

log = logging.getLogger(__name__)

Runtime = Literal["auto", "dsp", "cpu", "gpu"]


def _space_free_tmp() -> str:
    """A temporary folder whose path has no whitespace (the SNPE input-list format splits on spaces)."""
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if not any(c.isspace() for c in candidate) and os.path.isdir(candidate):
            return candidate
    raise TargetError(
        f"no temporary folder without spaces for SNPE input lists (TMPDIR={tempfile.gettempdir()!r}): "
        "set TMPDIR to a folder whose path has no spaces"
    )


def write_raw_nhwc(images: np.ndarray, folder: Path, layout: str, prefix: str = "input") -> list[Path]:
    """One raw float32 file per image (N x C x H x W in, NHWC on disk when ``layout`` is NCHW)."""
    folder.mkdir(parents=True, exist_ok=True)
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4 and layout == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    paths = []
    for i in range(x.shape[0]):
        path = folder / f"{prefix}_{i}.raw"
        np.ascontiguousarray(x[i]).tofile(path)
        paths.append(path)
    return paths


class SnpeTarget(Target):
    """SNPE tools on the host (``sdk_root`` or ``$SNPE_ROOT``), runs on the device ``device`` (serial)."""

    name = "snpe"
    needs_device = True

    def __init__(
        self,
        sdk_root: str | Path | None = None,
        device: str | None = None,
        *,
        adb: str | Path | None = None,
        htp_socs: str | None = None,
        input_layout: Literal["NCHW", "NHWC"] = "NCHW",
        runtime: Runtime = "auto",
        inputs_per_run: int = 256,
        retries: int = 5,
        retry_pause: float = 0.5,
        bench_timeout_s: float = 3600,
        progress: bool = True,
        seed: int = 0,
    ) -> None:
        if input_layout not in ("NCHW", "NHWC"):
            raise TargetError(f"input_layout must be NCHW or NHWC, got {input_layout!r}")
        if inputs_per_run < 1:
            raise TargetError(f"inputs_per_run must be at least 1, got {inputs_per_run}")
        self.sdk: SnpeSdk = find_sdk(sdk_root)
        self.serial = device
        self.adb = adb
        self.htp_socs = htp_socs
        self.input_layout = input_layout
        self.runtime = runtime
        self.inputs_per_run = inputs_per_run
        self.retries = retries
        self.retry_pause = retry_pause
        self.bench_timeout_s = bench_timeout_s
        self.progress = progress
        self.seed = seed
        self._device: AdbDevice | None = None
        self._sdk_ready = False
        self._pushed: dict[str, PurePosixPath] = {}
        self._infos: dict[tuple[str, int, int], DlcInfo] = {}
        self._scratch_dir: Path | None = None
        self._kept: list[Path] = []
        log.info("SNPE %s at %s: %s", self.sdk.version, self.sdk.root, self.sdk.layout)

    # ---------------------------------------------------------------------------------------- helpers
    def _scratch(self) -> Path:
        """A folder for result files handed to the runner (removed by :meth:`close`)."""
        if self._scratch_dir is None:
            self._scratch_dir = Path(tempfile.mkdtemp(prefix="snpe-target-"))
        return self._scratch_dir

    def close(self) -> None:
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)
            self._scratch_dir = None
        self._kept.clear()

    def source(self, step: str, model_path: Path) -> str:
        sdk = f"SNPE {self.sdk.version}"
        if step == "info":
            return f"snpe-dlc-info ({sdk})"
        runtime = "DSP" if self._use_dsp(Path(model_path)) else ("GPU" if self.runtime == "gpu" else "CPU")
        tool = "snpe_bench.py" if step == "benchmark" else "snpe-net-run"
        where = (
            f"{tool} ({sdk}, {self.sdk.layout}, {runtime}) on device {self.serial or '(no serial)'} over adb"
        )
        if step == "benchmark":
            where += (
                "; mean = the Total Inference Time average of benchmark_stats_<name>.csv (us); "
                "the CSV's per-run figures are not read (layout undocumented): median and stdev not measured"
            )
        return where

    def device(self) -> AdbDevice:
        """The attached device, with the SDK's runtime pushed (once per SDK version)."""
        if self._device is None:
            if not self.serial:
                raise TargetError("the snpe target needs a device serial for on-device work: --device SERIAL")
            self._device = AdbDevice(
                self.serial, adb=self.adb, retries=self.retries, retry_pause=self.retry_pause
            )
        if not self._sdk_ready:
            self._device.state()
            self._device.setup_sdk(self.sdk)
            self._sdk_ready = True
        return self._device

    def dlc_info(self, dlc: Path, layers_csv: Path | None = None) -> DlcInfo:
        path = Path(dlc)
        if not path.is_file():
            raise TargetError(f"model {path} does not exist: check the path (or that the download finished)")
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if key not in self._infos or layers_csv is not None:
            args = ["-i", str(path)] + (["-s", str(layers_csv)] if layers_csv is not None else [])
            self._infos[key] = parse_dlc_info(run_tool(self.sdk, "snpe-dlc-info", args))
        return self._infos[key]

    def _use_dsp(self, dlc: Path) -> bool:
        if self.runtime == "auto":
            return ".quant" in Path(dlc).name
        return self.runtime == "dsp"

    def _runtime_flag(self, dlc: Path) -> list[str]:
        if self._use_dsp(dlc):
            return ["--use_dsp"]
        return ["--use_gpu"] if self.runtime == "gpu" else []

    # --------------------------------------------------------------------------------------- convert
    def convert(self, onnx_path: Path, output_dir: Path) -> Path:
        onnx_path = Path(onnx_path)
        name, dims, outputs = onnx_io(onnx_path)
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        out = output_dir / "model.dlc"
        args = ["-i", str(onnx_path), "-o", str(out), "-d", name, ",".join(map(str, dims))]
        args += ["--input_layout", name, self.input_layout]
        for o in outputs:
            args += ["--out_node", o]
        run_tool(self.sdk, "snpe-onnx-to-dlc", args, success=("Conversion completed successfully",))
        if not out.is_file():
            raise TargetError(f"snpe-onnx-to-dlc reported success but wrote no {out}")
        return out

    def quantize(self, model_path: Path, calibration: Iterable[np.ndarray], output_dir: Path) -> Path:
        output_dir = Path(output_dir)
        dlc = Path(model_path)
        if dlc.suffix == ".onnx":
            dlc = self.convert(dlc, output_dir / "float")
        # the input list format splits a line on spaces (``name:=path name2:=path2``): every path in it
        # lies in a space-free folder of this target's own, each file named by the hash of its content
        calibration_dir = Path(tempfile.mkdtemp(prefix="snpe-cal-", dir=_space_free_tmp()))
        try:
            return self._quantize(dlc, calibration, calibration_dir, output_dir)
        finally:
            shutil.rmtree(calibration_dir, ignore_errors=True)

    def _quantize(self, dlc: Path, calibration: Iterable[np.ndarray], folder: Path, output_dir: Path) -> Path:
        raws: list[Path] = []
        for b, batch in enumerate(calibration):
            for path in write_raw_nhwc(np.asarray(batch), folder, self.input_layout, f"cal{b}"):
                named = folder / f"{hashlib.sha256(path.read_bytes()).hexdigest()[:20]}.raw"
                path.replace(named)
                raws.append(named)
        if not raws:
            raise TargetError("quantization needs calibration images; the calibration source gave none")
        input_list = folder / "input_list.txt"
        input_list.write_text("".join(f"{p}\n" for p in raws), encoding="utf-8")
        out = output_dir / "model.quant.dlc"
        common = ["--input_dlc", str(dlc), "--input_list", str(input_list)]
        if self.sdk.generation >= 2:
            plain = output_dir / "model.quant.noncached.dlc"
            run_tool(self.sdk, "snpe-dlc-quant", [*common, "--output_dlc", str(plain)])
            prep = ["--input_dlc", str(plain), "--output_dlc", str(out)]
            prep += ["--htp_socs", self.htp_socs] if self.htp_socs else []
            run_tool(self.sdk, "snpe-dlc-graph-prepare", prep)
            plain.unlink(missing_ok=True)
        else:
            args = [*common, "--output_dlc", str(out), "--use_enhanced_quantizer"]
            args += ["--enable_htp", "--htp_socs", self.htp_socs] if self.htp_socs else []
            run_tool(
                self.sdk,
                "snpe-dlc-quantize",
                args,
                success=("Writing quantized model", "Saved quantized dlc"),
            )
        if not out.is_file():
            raise TargetError(f"the quantizer reported success but wrote no {out}")
        return out

    def info(self, model_path: Path, output_dir: Path) -> ModelInfo:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        layers_csv = output_dir / "layers.csv"
        info = self.dlc_info(Path(model_path), layers_csv)
        if not layers_csv.is_file():  # an SDK whose dlc-info ignores -s: write the parsed table
            with layers_csv.open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["id", "name", "type", "out_dims", "parameters"])
                for layer in info.layers:
                    w.writerow(
                        [
                            layer.id,
                            layer.name,
                            layer.type,
                            "x".join(map(str, layer.out_dims)),
                            layer.parameters,
                        ]
                    )
        return ModelInfo(macs=info.macs, params=info.params, layers_csv=layers_csv)

    # ------------------------------------------------------------------------------------ on device
    def _push_model(self, dev: AdbDevice, dlc: Path) -> PurePosixPath:
        digest = hashlib.sha256(dlc.read_bytes()).hexdigest()[:16]
        if digest not in self._pushed:
            remote = dev.work_dir / "models" / f"{digest}.dlc"
            dev.shell(f"mkdir -p {shlex.quote(str(remote.parent))}")
            dev.push(dlc, remote)
            self._pushed[digest] = remote
        return self._pushed[digest]

    def run_batch(self, model_path: Path, inputs: np.ndarray, *, batch_size: int = 1) -> np.ndarray:
        """Outputs of the DLC's first output for ``inputs`` (N x C x H x W), run on the device."""
        dlc = Path(model_path)
        info = self.dlc_info(dlc)
        outs = info.output_tensors()
        if not outs:
            raise TargetError(f"snpe-dlc-info shows no output tensor for {dlc.name}")
        out_name, out_dims = outs[0]
        x = np.asarray(inputs, dtype=np.float32)
        if x.shape[0] == 0:
            raise TargetError("run_batch got no inputs")
        dev = self.device()
        remote_model = self._push_model(dev, dlc)
        results: list[np.ndarray] = []
        steps = range(0, x.shape[0], self.inputs_per_run)
        with tempfile.TemporaryDirectory(prefix="snpe-run-") as tmp:
            for start in tqdm(steps, desc="snpe-net-run", disable=not self.progress, leave=False):
                chunk = x[start : start + self.inputs_per_run]
                results.append(
                    self._run_chunk(dev, remote_model, dlc, chunk, out_name, out_dims, Path(tmp) / str(start))
                )
        return np.concatenate(results, axis=0)

    def _run_chunk(
        self,
        dev: AdbDevice,
        remote_model: PurePosixPath,
        dlc: Path,
        chunk: np.ndarray,
        out_name: str,
        out_dims: list[int],
        local: Path,
    ) -> np.ndarray:
        files = write_raw_nhwc(chunk, local / "inputs", self.input_layout)
        run = dev.work_dir / "run"
        lines = [str(run / "inputs" / f.name) for f in files]
        (local / "input_list.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        q = shlex.quote
        dev.shell(f"rm -rf {q(str(run))} && mkdir -p {q(str(run / 'inputs'))}")
        dev.push(local / "inputs", run / "inputs")
        dev.push(local / "input_list.txt", run / "input_list.txt")
        cmd = [
            "snpe-net-run", "--container", str(remote_model), "--input_list", "input_list.txt",
            "--output_dir", "output", *self._runtime_flag(dlc),
        ]  # fmt: skip
        dev.shell(f"{dev.snpe_env(self.sdk)} && cd {q(str(run))} && {shlex.join(cmd)}")
        dev.pull(run / "output", local / "output")  # the folder's contents into local/output
        outputs = []
        for i, f in enumerate(files):
            folder = local / "output" / f"Result_{i}"
            candidates = [folder / f"{out_name}.raw", folder / f"{out_name.replace(':', '_')}.raw"]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise TargetError(f"snpe-net-run wrote no {out_name}.raw for input {f.name} (Result_{i})")
            y = np.fromfile(found, dtype=np.float32)
            if y.size != int(np.prod(out_dims)):
                raise TargetError(
                    f"{found.name} of {f.name} holds {y.size} floats, snpe-dlc-info says {out_dims}"
                )
            y = y.reshape(out_dims)
            outputs.append(y.transpose(0, 3, 1, 2) if y.ndim == 4 else y)
        return np.concatenate(outputs, axis=0)

    def benchmark(self, model_path: Path, *, iterations: int = 50, warmup: int = 5) -> BenchmarkResult:
        """``snpe_bench.py`` with ``Runs`` = ``iterations`` (its own warm-up; ``warmup`` is not used)."""
        if iterations < 1:
            raise TargetError(f"iterations must be >= 1, got {iterations}")
        dlc = Path(model_path).resolve()
        info = self.dlc_info(dlc)
        dev = self.device()
        bench_dir = Path(tempfile.mkdtemp(prefix="snpe-bench-"))
        try:
            inputs = info.input_tensors()  # 2.x: the input section; 1.x: the data layer
            if len(inputs) != 1 or not inputs[0].dims:
                raise TargetError(
                    f"snpe-dlc-info of {dlc.name} shows {len(inputs)} input(s) with dims "
                    f"{[t.dims for t in inputs]}: the snpe target benchmarks models with one input"
                )
            input_dims = inputs[0].dims
            rng = np.random.default_rng(self.seed)
            data = bench_dir / "data"
            data.mkdir()
            rng.standard_normal(input_dims).astype(np.float32).tofile(data / "input_0.raw")
            (bench_dir / "input_list.txt").write_text("data/input_0.raw\n", encoding="utf-8")
            runtime = "DSP" if self._use_dsp(dlc) else ("GPU" if self.runtime == "gpu" else "CPU")
            config, column = bench_config(
                name="model", bench_dir=bench_dir, dlc=dlc, device=dev.serial, runs=iterations,
                device_path=str(dev.root / "snpebm"), runtime=runtime,
            )  # fmt: skip
            cfg_path = bench_dir / "config.json"
            cfg_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
            stats = run_snpe_bench(self.sdk, cfg_path, adb=dev.adb, timeout=self.bench_timeout_s)
            avg_us = parse_bench_csv(stats, column)
            keep = self._scratch() / f"benchmark_stats_{len(self._kept)}.csv"
            shutil.copyfile(stats, keep)
            self._kept.append(keep)
        finally:
            shutil.rmtree(bench_dir, ignore_errors=True)
        mean_ms = avg_us / 1000.0
        log.info(
            "snpe_bench %s on %s (%s): average total inference %.3f ms", dlc.name, dev.serial, column, mean_ms
        )
        # snpe_bench's CSV gives the average over its runs; no per-run figures are read from it (their
        # layout is not documented): median and spread stay NaN (not measured), and source() says so;
        # the row's stdev comes from repeated benchmark runs, as for every target
        nan = float("nan")
        return BenchmarkResult(mean_ms=mean_ms, median_ms=nan, stdev_ms=nan, samples_ms=[mean_ms], csv=keep)
