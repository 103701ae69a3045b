"""The ``aihub`` target: Qualcomm AI Hub compiles, profiles and runs models on real Snapdragon devices in
its cloud, through the ``qai-hub`` client (the ``aihub`` extra).

* ``convert``: a compile job of the float ONNX for the device (``--target_runtime`` ``runtime``, input
  specs from the model); the result is a bundle ``model.aihub.zip``: the compiled target model as
  downloaded, the source ONNX and ``meta.json`` (input name and shape, device, runtime, job ids), so
  that any runner can upload and run it again.
* ``quantize``: a quantize job on the calibration images (int8 weights and activations by default), then a
  compile job of the QDQ model it returns: ``model.quant.aihub.zip``.
* ``info``: MACs and parameters counted from the bundle's ONNX (AI Hub reports none), ``layers.csv``.
* ``benchmark``: an inference job with ``profile=True`` and no inputs (qai-hub 0.56 deprecates
  ``submit_profile_job`` for this); from the profile's ``execution_summary`` (microseconds, reported in
  milliseconds): the mean is AI Hub's own headline ``estimated_inference_time`` (on Qualcomm's sample
  profiles it differs from the mean of the per-run times, first run included, about 2x), the median and
  standard deviation come from ``all_inference_times``; the row's ``sources`` say which.
* Downloads: ``Model.download(filename)`` appends the server file's suffix where ``filename`` lacks it
  (qai-hub 0.56 ``api_utils._verify_download_path``; ONNX models are zipped: ``.onnx.zip``,
  ``client.EXTENSIONS_BY_MODEL_TYPE``), so the path it returns is the one used, and a zipped ONNX is
  unpacked (one ``.onnx`` file or folder at the zip's top, as ``util/zipped_model.unzip_model`` expects).
* ``run_batch``: an inference job on a batch of images (``profile=False``), outputs downloaded.

Authentication is the client's: ``~/.qai_hub/client.ini`` (``qai-hub configure``, or the file
``QAIHUB_CLIENT_INI`` names), or an API token in the environment variable ``api_token_env``
(``QAI_HUB_API_TOKEN``). The token is handed to ``qai_hub.ClientConfig`` and never logged or stored.
A job that fails or times out raises a TargetError naming the job.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import statistics
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from archai_aml.errors import TargetError
from archai_aml.onnx.info import onnx_io
from archai_aml.targets.base import BenchmarkResult, ModelInfo, Target

__all__ = ["AiHubTarget", "download_model", "hub_client"]

log = logging.getLogger(__name__)

_EXTENSIONS = {"qnn_dlc": ".dlc", "tflite": ".tflite", "qnn_context_binary": ".bin", "onnx": ".onnx"}


def download_model(model: Any, dst: Path) -> Path:
    """``model.download(dst)`` into ``dst``'s folder; returns the file used: the client's path (it may
    append the server's suffix, ``.onnx.zip`` for ONNX), a zipped ONNX unpacked to ``dst``."""
    got = Path(model.download(str(dst)))
    if got.suffix != ".zip":
        return got
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        root = Path(tmp).resolve()
        with zipfile.ZipFile(got) as z:
            for name in z.namelist():
                if not (root / name).resolve().is_relative_to(root):
                    raise TargetError(f"{got.name} holds {name!r}, outside its folder: refusing to unpack it")
            z.extractall(root)
        tops = sorted({Path(n).parts[0] for n in z.namelist() if Path(n).parts})
        if len(tops) != 1 or not tops[0].endswith(".onnx"):
            raise TargetError(f"{got.name} should hold one .onnx file or folder at its top, holds {tops}")
        asset = root / tops[0]
        if asset.is_dir():  # an ONNX folder: the model and its external data files
            models = sorted(asset.glob("*.onnx"))
            if len(models) != 1:
                raise TargetError(f"{got.name}: {tops[0]}/ holds {len(models)} .onnx files, expected one")
            for f in asset.iterdir():
                if f != models[0]:
                    shutil.move(str(f), dst.parent / f.name)
            asset = models[0]
        shutil.move(str(asset), dst)
    got.unlink(missing_ok=True)
    return dst


def hub_client(api_token_env: str = "QAI_HUB_API_TOKEN") -> Any:
    """The qai-hub client: a ``Client`` on the token in ``$api_token_env`` if set, else the module (its
    global client reads ``~/.qai_hub/client.ini``)."""
    try:
        import qai_hub
    except ImportError as exc:
        raise TargetError("the aihub target needs qai-hub: pip install 'archai-aml[aihub]'") from exc
    token = os.environ.get(api_token_env)
    if token:
        return qai_hub.Client(config=qai_hub.ClientConfig(api_token=token))
    return qai_hub


class AiHubTarget(Target):
    """A Qualcomm AI Hub device by name (``device``), e.g. ``"Samsung Galaxy S24 (Family)"`` or
    ``"Snapdragon X Elite CRD"``. ``client``: a qai-hub client (default :func:`hub_client`)."""

    name = "aihub"
    needs_device = False  # the device is in AI Hub's cloud: every runner can use it

    def __init__(
        self,
        device: str = "Samsung Galaxy S24 (Family)",
        *,
        client: Any = None,
        api_token_env: str = "QAI_HUB_API_TOKEN",
        runtime: str = "qnn_dlc",
        activations: str = "INT8",
        weights: str = "INT8",
        timeout_s: float = 3600,
        max_profiler_iterations: int | None = None,
        progress: bool = True,  # accepted like every target's; Hub jobs report no local progress
    ) -> None:
        if runtime not in _EXTENSIONS:
            raise TargetError(f"runtime must be one of {sorted(_EXTENSIONS)}, got {runtime!r}")
        self.hub = client if client is not None else hub_client(api_token_env)
        import qai_hub

        self._qai_hub = qai_hub
        try:
            self.device = qai_hub.Device(device)
            self.activations = qai_hub.QuantizeDtype[activations]
            self.weights = qai_hub.QuantizeDtype[weights]
        except (KeyError, ValueError) as exc:
            raise TargetError(f"bad aihub option: {exc}") from exc
        self.device_name = device
        #: (step, model path) -> AI Hub job ids of that step's latest figures, named in the row by source()
        self._jobs: dict[tuple[str, Path], list[str]] = {}
        self.runtime = runtime
        self.timeout_s = timeout_s
        self.max_profiler_iterations = max_profiler_iterations
        self._uploaded: dict[str, Any] = {}
        self._figures: dict[Path, str] = {}  # benchmark: which profile figures the mean and spread are

    # ---------------------------------------------------------------------------------------- jobs
    def source(self, step: str, model_path: Path) -> str:
        if step == "info":
            return "archai-aml's count over the ONNX graph sent to AI Hub (archai_aml.onnx.info)"
        jobs = self._jobs.pop((step, Path(model_path)), [])
        shown = ", ".join(jobs[:3]) + (f" and {len(jobs) - 3} more" if len(jobs) > 3 else "")
        kind = "profile" if step == "benchmark" else "inference"
        where = f"Qualcomm AI Hub {kind} job(s) {shown or '(none)'} on {self.device_name}"
        figures = self._figures.pop(Path(model_path), None) if step == "benchmark" else None
        return f"{where}; mean = {figures}" if figures else where

    def _wait(self, job: Any, what: str) -> None:
        """Wait for ``job``; a failure or a timeout becomes a TargetError naming the job."""
        job_id = getattr(job, "job_id", "?")
        try:
            status = job.wait(timeout=int(self.timeout_s))
        except TimeoutError as exc:
            raise TargetError(
                f"AI Hub {what} job {job_id} on {self.device_name} did not finish in {self.timeout_s:.0f} s: "
                f"look at it on AI Hub ({getattr(job, 'url', job_id)}) or raise timeout_s"
            ) from exc
        if not status.success:
            raise TargetError(
                f"AI Hub {what} job {job_id} on {self.device_name} ended {status.code}: {status.message or 'no message'}"
            )

    def _compile(self, model: Any, input_name: str, shape: list[int], what: str) -> tuple[Any, Any]:
        job = self.hub.submit_compile_job(
            model=model,
            device=self.device,
            name=f"archai-aml {what}",
            input_specs={input_name: (tuple(shape), "float32")},
            options=f"--target_runtime {self.runtime}",
        )
        self._wait(job, "compile")
        target = job.get_target_model()
        if target is None:
            raise TargetError(f"AI Hub compile job {job.job_id} succeeded but has no target model")
        return job, target

    def _bundle(self, out: Path, target_model: Any, source_onnx: Path, meta: dict[str, Any]) -> Path:
        out.parent.mkdir(parents=True, exist_ok=True)
        compiled = download_model(target_model, out.parent / f"compiled{_EXTENSIONS[self.runtime]}")
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.write(compiled, "compiled" + _EXTENSIONS[self.runtime])
            z.write(source_onnx, "source.onnx")
            z.writestr("meta.json", json.dumps(meta))
        compiled.unlink(missing_ok=True)
        return out

    @staticmethod
    def read_bundle(path: Path) -> tuple[dict[str, Any], bytes, bytes]:
        """``meta.json``, the compiled model and the source ONNX of a bundle."""
        try:
            with zipfile.ZipFile(path) as z:
                meta = json.loads(z.read("meta.json"))
                return meta, z.read("compiled" + meta["extension"]), z.read("source.onnx")
        except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise TargetError(
                f"{path} is not an aihub model bundle ({exc}): convert the model again"
            ) from exc

    def _meta(self, input_name: str, shape: list[int], **jobs: str) -> dict[str, Any]:
        return {
            "input": input_name,
            "shape": shape,
            "device": self.device_name,
            "runtime": self.runtime,
            "extension": _EXTENSIONS[self.runtime],
            "jobs": jobs,
        }

    # -------------------------------------------------------------------------------------- Target
    def convert(self, onnx_path: Path, output_dir: Path) -> Path:
        onnx_path = Path(onnx_path)
        input_name, shape, _ = onnx_io(onnx_path)
        job, target = self._compile(str(onnx_path), input_name, shape, f"convert {onnx_path.stem}")
        meta = self._meta(input_name, shape, compile=job.job_id)
        return self._bundle(Path(output_dir) / "model.aihub.zip", target, onnx_path, meta)

    def quantize(self, model_path: Path, calibration: Iterable[np.ndarray], output_dir: Path) -> Path:
        model_path = Path(model_path)
        if model_path.suffix != ".onnx":
            raise TargetError(f"AI Hub quantizes ONNX models; got {model_path.name}")
        input_name, shape, _ = onnx_io(model_path)
        samples = [np.asarray(b, dtype=np.float32)[i : i + 1] for b in calibration for i in range(len(b))]
        if not samples:
            raise TargetError("quantization needs calibration images; the calibration source gave none")
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        qjob = self.hub.submit_quantize_job(
            model=str(model_path),
            calibration_data={input_name: samples},
            weights_dtype=self.weights,
            activations_dtype=self.activations,
            name=f"archai-aml quantize {model_path.stem}",
        )
        self._wait(qjob, "quantize")
        qdq_model = qjob.get_target_model()
        if qdq_model is None:
            raise TargetError(f"AI Hub quantize job {qjob.job_id} succeeded but has no target model")
        qdq = download_model(qdq_model, output_dir / "model.qdq.onnx")
        cjob, target = self._compile(qdq_model, input_name, shape, f"compile {model_path.stem} (quantized)")
        meta = self._meta(input_name, shape, quantize=qjob.job_id, compile=cjob.job_id)
        return self._bundle(output_dir / "model.quant.aihub.zip", target, qdq, meta)

    def info(self, model_path: Path, output_dir: Path) -> ModelInfo:
        from archai_aml.targets import get_target

        model_path = Path(model_path)
        source = model_path
        if model_path.suffix != ".onnx":
            _, _, onnx_bytes = self.read_bundle(model_path)
            source = Path(output_dir) / "source.onnx"
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_bytes(onnx_bytes)
        return get_target("cpu", progress=False).info(source, Path(output_dir))

    def _target_model(self, bundle: Path) -> tuple[dict[str, Any], Any]:
        """The bundle's compiled model, uploaded once per content."""
        meta, compiled, _ = self.read_bundle(bundle)
        key = hashlib.sha256(compiled).hexdigest()
        if key not in self._uploaded:
            tmp = bundle.parent / f".upload-{key[:12]}{meta['extension']}"
            tmp.write_bytes(compiled)
            try:
                self._uploaded[key] = self.hub.upload_model(str(tmp))
            finally:
                tmp.unlink(missing_ok=True)
        return meta, self._uploaded[key]

    def benchmark(self, model_path: Path, *, iterations: int = 50, warmup: int = 5) -> BenchmarkResult:
        """A profiling inference job (AI Hub does its own warm-up; ``warmup`` is not used)."""
        meta, model = self._target_model(Path(model_path))
        n = self.max_profiler_iterations or iterations
        job = self.hub.submit_inference_job(
            model=model,
            device=self.device,
            inputs=None,
            name=f"archai-aml profile {Path(model_path).stem}",
            options=f"--max_profiler_iterations {n}",
            profile=True,
        )
        self._jobs[("benchmark", Path(model_path))] = [str(job.job_id)]  # one job per benchmark run
        self._wait(job, "profile")
        profile = job.download_profile()
        summary = profile.get("execution_summary") if isinstance(profile, dict) else None
        if not summary:
            raise TargetError(f"AI Hub profile job {job.job_id} returned no execution summary")
        times_us = [float(t) for t in summary.get("all_inference_times") or [] if t]
        est = summary.get("estimated_inference_time")
        if not est and not times_us:
            raise TargetError(f"AI Hub profile job {job.job_id} has no inference time")
        mean_ms = float(est) / 1000.0 if est else statistics.fmean(times_us) / 1000.0
        samples = [t / 1000.0 for t in times_us] or [mean_ms]
        self._figures[Path(model_path)] = (
            "estimated_inference_time" if est else "mean of all_inference_times"
        ) + (f"; median and stdev over all_inference_times ({len(times_us)} runs)" if times_us else "")
        # where the figures came from: the job and device, beside each sample (uploaded with the row)
        fd, name = tempfile.mkstemp(prefix="aihub-profile-", suffix=".csv")
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["run", "latency_ms", "job_id", "device", "source"])
            source = "all_inference_times" if times_us else "estimated_inference_time"
            w.writerows([i, f"{s:.6f}", job.job_id, self.device_name, source] for i, s in enumerate(samples))
        log.info(
            "AI Hub profile job %s on %s: estimated %.3f ms, %d inference times",
            job.job_id, self.device_name, mean_ms, len(times_us),
        )  # fmt: skip
        return BenchmarkResult(
            mean_ms=mean_ms,
            median_ms=statistics.median(samples),
            stdev_ms=statistics.stdev(samples) if len(times_us) > 1 else float("nan"),
            samples_ms=samples,
            csv=Path(name),
        )

    def run_batch(self, model_path: Path, inputs: np.ndarray, *, batch_size: int = 1) -> np.ndarray:
        """Outputs of the model's first output for ``inputs`` (N x C x H x W), from one inference job."""
        x = np.asarray(inputs, dtype=np.float32)
        if x.shape[0] == 0:
            raise TargetError("run_batch got no inputs")
        meta, model = self._target_model(Path(model_path))
        step = max(1, int(meta["shape"][0]))
        entries = {meta["input"]: [x[i : i + step] for i in range(0, x.shape[0], step)]}
        job = self.hub.submit_inference_job(
            model=model,
            device=self.device,
            inputs=entries,
            name=f"archai-aml inference {Path(model_path).stem}",
            profile=False,
        )
        self._jobs.setdefault(("f1", Path(model_path)), []).append(str(job.job_id))  # a job per chunk
        self._wait(job, "inference")
        outputs = job.download_output_data()
        if not outputs:
            raise TargetError(f"AI Hub inference job {job.job_id} returned no output data")
        first = next(iter(outputs.values()))
        if len(first) != len(entries[meta["input"]]):
            raise TargetError(
                f"AI Hub inference job {job.job_id} returned {len(first)} outputs for {len(entries[meta['input']])} inputs"
            )
        return np.concatenate([np.asarray(y) for y in first], axis=0)
