"""A stand-in for the ``qai_hub`` client at its boundary, for testing the ``aihub`` target without an account.

:class:`FakeHub` has the client calls the target makes, with qai-hub 0.56's signatures and return shapes:
``get_devices``, ``upload_model``, ``submit_compile_job``, ``submit_quantize_job``,
``submit_inference_job`` (and the deprecated ``submit_profile_job``, which returns an inference job),
``get_job``. Jobs return the client's own ``qai_hub.JobStatus`` from ``wait`` (``TimeoutError`` for a job
that never finishes, as the client raises after ``timeout`` seconds); profiles are built with the client's
own ``_profile_pb_to_python_dict`` from a ``ProfileDetail`` protobuf (as qai-hub's tests do).

What runs is real: a quantize job quantizes with onnxruntime's static QDQ quantization on the calibration
data, inference jobs run onnxruntime on the CPU and profile jobs time it (microseconds, as AI Hub
reports).

Models are files as the Hub serves them (qai-hub 0.56): an ONNX model is served zipped, ``<name>.onnx.zip``
holding one ``<name>.onnx`` at its top (``client.EXTENSIONS_BY_MODEL_TYPE``: ONNX is a
``ZIPPABLE_MODEL_TYPE``; ``util/zipped_model.zip_model`` of a single file), a compile job's target model
has its runtime's suffix: ``.dlc`` for ``--target_runtime qnn_dlc``, ``.bin`` for
``qnn_context_binary``, ``.tflite``, ``.onnx.zip`` for ``onnx`` (a real DLC or context binary is
Qualcomm's own binary format: here it is a zip holding the ONNX model the "device" runs, with a
``FAKE-QNN`` marker; clients treat it as opaque bytes). ``Model.download(filename)`` writes to
``filename`` with the server file's suffixes appended where ``filename`` does not already end with them,
or into ``filename/<server name>`` for a folder (``api_utils._verify_download_path``), and returns that
path. The profile's ``estimated_inference_time`` is the median of the per-run times here; how AI Hub
computes it is not documented (on its sample profiles it is about half the mean of
``all_inference_times``).

Faults: ``fail_compile="message"`` makes compile jobs end FAILED; ``stuck={"profile"}`` (or
``"inference"``, ``"compile"``, ``"quantize"``) makes those jobs never finish.
"""

from __future__ import annotations

import io
import itertools
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FakeHub"]

DEVICES = ("Samsung Galaxy S24 (Family)", "Samsung Galaxy S23 (Family)", "Snapdragon X Elite CRD")


_RUNTIME_SUFFIX = {"qnn_dlc": ".dlc", "qnn_context_binary": ".bin", "tflite": ".tflite", "onnx": ".onnx.zip"}


def _suffixes(name: str) -> str:
    return "".join(Path(name).suffixes)


def _packed(onnx_bytes: bytes, server_name: str) -> bytes:
    """The bytes the Hub serves for a model of ``server_name``'s type holding ``onnx_bytes``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        if server_name.endswith(".onnx.zip"):
            z.writestr(server_name.removesuffix(".zip"), onnx_bytes)
        else:
            z.writestr("FAKE-QNN", "a stand-in compiled model: the ONNX it runs is model.onnx")
            z.writestr("model.onnx", onnx_bytes)
    return buf.getvalue()


def _unpacked(data: bytes, name: str) -> bytes:
    """The ONNX model inside what :func:`_packed` made (or ``data`` itself for a plain ``.onnx``)."""
    if name.endswith(".onnx") and not name.endswith(".zip"):
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        onnx_names = [n for n in z.namelist() if n.endswith(".onnx")]
        if len(onnx_names) != 1:
            raise ValueError(f"{name} holds no single ONNX model ({z.namelist()})")
        return z.read(onnx_names[0])


class FakeModel:
    """A ``qai_hub.Model``: ``model_id``, ``name``, ``download(filename)``; ``server_name`` is the file the
    Hub serves (its suffix says the model type)."""

    def __init__(
        self, model_id: str, onnx_bytes: bytes, name: str = "", server_name: str = "model.onnx.zip"
    ) -> None:
        self.model_id = model_id
        self.name = name
        self.server_name = server_name
        self.onnx = onnx_bytes
        self.data = (
            _packed(onnx_bytes, server_name)
            if server_name.endswith(".zip") or not server_name.endswith(".onnx")
            else onnx_bytes
        )

    def download(self, filename: str, timeout: int | None = None) -> str:
        """qai-hub 0.56 ``Model.download`` -> ``api_utils._verify_download_path``: into a folder under the
        server's name, else ``filename`` with the server's suffixes appended unless it ends with them."""
        dst = Path(filename).expanduser()
        if dst.is_dir():
            dst = dst / self.server_name
        elif not str(dst).endswith(_suffixes(self.server_name)):
            dst = Path(str(dst) + _suffixes(self.server_name))
        if not dst.parent.exists():
            raise ValueError(f"Download directory '{dst.parent}' does not exist.")
        dst.write_bytes(self.data)
        return str(dst)


class FakeJob:
    _ids = itertools.count(1)

    def __init__(self, hub: FakeHub, job_type: str, name: str | None, work: Any, device: Any = None) -> None:
        self.job_id = f"j{next(FakeJob._ids):08x}"
        self.job_type = job_type
        self.name = name or ""
        self.device = device
        self.url = f"https://workbench.aihub.qualcomm.com/jobs/{self.job_id}/"
        self._hub = hub
        self._work = work
        self._result: Any = None
        self._status: Any = None

    def _run(self) -> Any:
        import qai_hub

        if self._status is None:
            if self.job_type == "compile" and self._hub.fail_compile:
                self._status = qai_hub.JobStatus(qai_hub.JobStatus.State.FAILED, self._hub.fail_compile)
            else:
                self._result = self._work()
                self._status = qai_hub.JobStatus(qai_hub.JobStatus.State.SUCCESS)
        return self._status

    def wait(self, timeout: int | None = None) -> Any:
        kind = (
            "profile" if self.job_type == "inference" and getattr(self, "profile", False) else self.job_type
        )
        if kind in self._hub.stuck:
            if timeout is None:
                raise RuntimeError("a stuck fake job waited on without a timeout would block forever")
            raise TimeoutError(
                f"Waiting for {self.job_type} job ({self.job_id}) completion timed out after {timeout} seconds."
            )
        return self._run()

    def get_status(self) -> Any:
        return self.wait(timeout=0) if self._status is None else self._status

    def get_target_model(self) -> FakeModel | None:
        status = self.wait(timeout=0)
        return self._result if status.success else None


class FakeInferenceJob(FakeJob):
    def __init__(self, hub: FakeHub, name: str | None, work: Any, device: Any, profile: bool) -> None:
        super().__init__(hub, "inference", name, work, device)
        self.profile = profile

    def download_output_data(self, filename: str | None = None) -> dict[str, list[np.ndarray]] | None:
        status = self.wait(timeout=0)
        return self._result[0] if status.success else None

    def download_profile(self, filename: str | None = None) -> dict[str, Any]:
        status = self.wait(timeout=0)
        return self._result[1] if status.success and self.profile else {}


class FakeHub:
    """The ``qai_hub`` module/``Client`` surface the aihub target uses (see the module docstring)."""

    def __init__(
        self, *, fail_compile: str | None = None, stuck: Iterable[str] = (), profile_runs: int = 20
    ) -> None:
        self.fail_compile = fail_compile
        self.stuck = set(stuck)
        self.profile_runs = profile_runs
        self.jobs: dict[str, FakeJob] = {}
        self.models: dict[str, FakeModel] = {}
        self._model_ids = itertools.count(1)

    # ----------------------------------------------------------------------------------------- helpers
    def _model(self, onnx_bytes: bytes, name: str = "", server_name: str = "model.onnx.zip") -> FakeModel:
        m = FakeModel(f"m{next(self._model_ids):08x}", onnx_bytes, name, server_name)
        self.models[m.model_id] = m
        return m

    def _bytes(self, model: Any) -> bytes:
        """The ONNX model a Model or a file (``.onnx``, or a compiled ``.dlc``/``.bin`` of this hub) holds."""
        if isinstance(model, FakeModel):
            return model.onnx
        if isinstance(model, (str, Path)):
            return _unpacked(Path(model).read_bytes(), Path(model).name)
        raise TypeError(f"model must be a Model or a path, got {type(model).__name__}")

    def _device(self, device: Any) -> Any:
        import qai_hub

        if not isinstance(device, qai_hub.Device):
            raise TypeError("device must be a qai_hub.Device")
        if device.name not in DEVICES:
            raise qai_hub.UserError(f"Device {device.name!r} is not available on AI Hub.")
        return device

    def _job(self, job: FakeJob) -> FakeJob:
        self.jobs[job.job_id] = job
        return job

    @staticmethod
    def _session(data: bytes) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = 1
        return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])

    # -------------------------------------------------------------------------------------- client API
    def get_devices(
        self, name: str = "", os: str = "", attributes: str | list[str] | None = None
    ) -> list[Any]:
        import qai_hub

        return [qai_hub.Device(n) for n in DEVICES if not name or n == name]

    def upload_model(self, model: Any, name: str | None = None) -> FakeModel:
        suffix = _suffixes(Path(str(model)).name) if isinstance(model, (str, Path)) else ".onnx"
        server = "model" + (".onnx.zip" if suffix.endswith(".onnx") else suffix)
        return self._model(self._bytes(model), name or "", server)

    def get_job(self, job_id: str) -> FakeJob:
        return self.jobs[job_id]

    def submit_compile_job(
        self,
        model: Any,
        device: Any,
        name: str | None = None,
        input_specs: dict[str, Any] | None = None,
        options: str = "",
        single_compile: bool = True,
        calibration_data: Any = None,
        retry: bool = True,
        project: Any = None,
    ) -> FakeJob:
        import qai_hub

        device = self._device(device)
        data = self._bytes(model)
        sess = self._session(data)  # an invalid model fails at submission, as the upload would
        if input_specs is not None:
            names = [i.name for i in sess.get_inputs()]
            if list(input_specs) != names:
                raise ValueError(
                    f"input_specs names {list(input_specs)} do not match the model's inputs {names}"
                )
        if "--target_runtime" not in options:
            raise ValueError("options must choose --target_runtime")
        runtime = options.split("--target_runtime", 1)[1].split()[0]
        if runtime not in _RUNTIME_SUFFIX:
            raise qai_hub.UserError(f"unknown --target_runtime {runtime}")
        server = "model" + _RUNTIME_SUFFIX[runtime]
        return self._job(
            FakeJob(self, "compile", name, lambda: self._model(data, f"{name} (compiled)", server), device)
        )

    def submit_quantize_job(
        self,
        model: Any,
        calibration_data: dict[str, list[np.ndarray]],
        weights_dtype: Any = None,
        activations_dtype: Any = None,
        name: str | None = None,
        options: str = "",
        project: Any = None,
    ) -> FakeJob:
        from archai_aml.onnx.quantize import quantize_qdq

        data = self._bytes(model)
        (input_name,) = [i.name for i in self._session(data).get_inputs()]
        if list(calibration_data) != [input_name]:
            raise ValueError(
                f"calibration data names {list(calibration_data)} != model inputs [{input_name!r}]"
            )

        def work() -> FakeModel:
            with tempfile.TemporaryDirectory() as tmp:
                src = Path(tmp) / "model.onnx"
                src.write_bytes(data)
                out = quantize_qdq(
                    src, calibration_data[input_name], Path(tmp) / "q.onnx",
                    activation_type="qint8", weight_type="qint8",
                )  # fmt: skip
                return self._model(out.read_bytes(), f"{name} (quantized)")

        return self._job(FakeJob(self, "quantize", name, work))

    def submit_inference_job(
        self,
        model: Any,
        device: Any,
        inputs: dict[str, list[np.ndarray]] | None = None,
        name: str | None = None,
        options: str = "",
        retry: bool = True,
        profile: bool = True,
        project: Any = None,
    ) -> FakeInferenceJob:
        import qai_hub

        device = self._device(device)
        if inputs is None and not profile:
            raise qai_hub.UserError("inputs are required when profile is False")
        data = self._bytes(model)
        sess = self._session(data)
        runs = self.profile_runs
        if "--max_profiler_iterations" in options:
            runs = int(options.split("--max_profiler_iterations", 1)[1].split()[0])

        def work() -> tuple[dict[str, list[np.ndarray]] | None, dict[str, Any]]:
            outputs: dict[str, list[np.ndarray]] | None = None
            meta = sess.get_inputs()[0]
            if inputs is not None:
                names = [o.name for o in sess.get_outputs()]
                outputs = {n: [] for n in names}
                for x in inputs[meta.name]:
                    for n, y in zip(names, sess.run(None, {meta.name: x}), strict=True):
                        outputs[n].append(y)
            profile_dict: dict[str, Any] = {}
            if profile:
                shape = [d if isinstance(d, int) else 1 for d in meta.shape]
                x = inputs[meta.name][0] if inputs else np.zeros(shape, dtype=np.float32)
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter_ns()
                    sess.run(None, {meta.name: x})
                    times.append(max(1, (time.perf_counter_ns() - t0) // 1000))  # microseconds
                profile_dict = _profile_dict(times)
            return outputs, profile_dict

        return self._job(FakeInferenceJob(self, name, work, device, profile))  # type: ignore[return-value]

    def submit_profile_job(
        self, model: Any, device: Any, name: str | None = None, options: str = "", **kwargs: Any
    ) -> FakeInferenceJob:
        warnings.warn(
            "submit_profile_job is deprecated: use submit_inference_job(..., profile=True)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.submit_inference_job(
            model, device, inputs=kwargs.get("input_dataset"), name=name, options=options, profile=True
        )


def _profile_dict(times_us: list[int]) -> dict[str, Any]:
    """The profile dict the client builds from a ProfileDetail protobuf (qai-hub's own conversion)."""
    from qai_hub import public_api_pb2 as api_pb
    from qai_hub.client import _profile_pb_to_python_dict

    pb = api_pb.ProfileDetail(
        major_version=1,
        minor_version=2,
        execution_time=int(sorted(times_us)[len(times_us) // 2]),
        all_execution_times=times_us,
    )
    return _profile_pb_to_python_dict(pb)
