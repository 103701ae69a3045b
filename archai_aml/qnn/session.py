"""Sessions on the QNN HTP backend through onnxruntime-qnn's plugin execution provider.

onnxruntime-qnn 2.x (import name ``onnxruntime_qnn``) is a plugin EP for the stock onnxruntime: the library
is registered once per process (``ort.register_execution_provider_library``), its device is picked from
``ort.get_ep_devices()`` and added to the session options with the HTP backend library
(``add_provider_for_devices(devices, {"backend_path": libQnnHtp.so, ...})``).

Every HTP session here is created with ``session.disable_cpu_ep_fallback=1``: a node the HTP does not take
makes session creation fail instead of running silently on the CPU. onnxruntime's error then only says
that *some* nodes were assigned to the CPU EP; :func:`cpu_placed_nodes` finds which ones by compiling the
model once more with fallback allowed into an EP-context model and listing what is left outside the
``EPContext`` nodes (exactly the nodes that QNN did not take).

On an x86-64 host the HTP backend library of the wheel *emulates* the HTP (with its quantized arithmetic):
outputs are the HTP's, timings are not. :func:`htp_is_simulated` says which case a host is.
"""

from __future__ import annotations

import logging
import platform
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from archai_aml._optional import require
from archai_aml.errors import TargetError

__all__ = [
    "EP_NAME",
    "FALLBACK_MESSAGE",
    "context_files",
    "cpu_placed_nodes",
    "ep_devices",
    "htp_is_simulated",
    "htp_session",
    "is_context_model",
    "providers_by_profiling",
    "register_qnn",
    "unsupported_message",
]

log = logging.getLogger(__name__)

EP_NAME = "QNNExecutionProvider"
#: What onnxruntime says when a node was not taken by the EP and CPU fallback is disabled.
FALLBACK_MESSAGE = "assigned to the default CPU EP"
_lock = threading.Lock()
_registered = False


def register_qnn() -> Any:
    """Register onnxruntime-qnn's plugin EP in this process (once); returns the ``onnxruntime_qnn`` module."""
    global _registered
    qnn = require("onnxruntime_qnn", feature="the qnn target", extra="qnn")
    with _lock:
        if not _registered:
            if not any(d.ep_name == EP_NAME for d in ort.get_ep_devices()):
                try:
                    ort.register_execution_provider_library(EP_NAME, qnn.get_library_path())
                except Exception as exc:
                    raise TargetError(
                        f"onnxruntime {ort.__version__} cannot register the QNN plugin EP "
                        f"{qnn.get_library_path()} ({exc}): onnxruntime-qnn {qnn.__version__} needs "
                        "onnxruntime >= 1.24.2; reinstall the qnn extra"
                    ) from exc
            _registered = True
    return qnn


def ep_devices() -> list[Any]:
    """The ``OrtEpDevice`` objects of the QNN EP (registering it first)."""
    register_qnn()
    devices = [d for d in ort.get_ep_devices() if d.ep_name == EP_NAME]
    if not devices:
        raise TargetError("onnxruntime-qnn is registered but offers no device: reinstall the qnn extra")
    return devices


def htp_is_simulated(machine: str | None = None) -> bool:
    """Whether the HTP backend on this host is the x86-64 emulator (True) or a Snapdragon's HTP (ARM64)."""
    arch = (machine if machine is not None else platform.machine()).lower()
    return arch not in ("aarch64", "arm64")


def _session_options(
    *,
    fallback: bool,
    provider_options: Mapping[str, str],
    config_entries: Mapping[str, str] | None = None,
) -> ort.SessionOptions:
    qnn = register_qnn()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.log_severity_level = 3
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "0" if fallback else "1")
    for key, value in (config_entries or {}).items():
        so.add_session_config_entry(key, value)
    options = {"backend_path": qnn.get_qnn_htp_path(), **provider_options}
    so.add_provider_for_devices(ep_devices(), options)
    return so


def htp_session(
    model_path: Path,
    provider_options: Mapping[str, str] | None = None,
    *,
    context_path: Path | None = None,
    embed_context: bool = False,
) -> ort.InferenceSession:
    """A session of ``model_path`` on the HTP backend, CPU fallback disabled.

    With ``context_path`` the session also writes the EP-context model there (``ep.context_enable``; the
    context binary beside it unless ``embed_context``). A model with nodes the HTP refuses raises
    :class:`TargetError` naming them (op type and node name).
    """
    path = Path(model_path)
    if not path.is_file():
        raise TargetError(f"model {path} does not exist: check the path (or that the download finished)")
    entries: dict[str, str] = {}
    if context_path is not None:
        entries = {
            "ep.context_enable": "1",
            "ep.context_file_path": str(context_path),
            "ep.context_embed_mode": "1" if embed_context else "0",
        }
    so = _session_options(fallback=False, provider_options=provider_options or {}, config_entries=entries)
    try:
        return ort.InferenceSession(str(path), sess_options=so)
    except Exception as exc:
        if FALLBACK_MESSAGE not in str(exc):
            raise TargetError(
                f"the QNN HTP backend cannot load {path} ({type(exc).__name__}: {exc}): check that the "
                "model has static shapes (run convert) and was quantized for QNN"
            ) from exc
        try:
            nodes = cpu_placed_nodes(path, provider_options)
        except Exception as inner:  # the diagnosis itself failed: say what onnxruntime said
            log.debug("could not find the nodes the HTP refused: %s", inner)
            nodes = []
        raise TargetError(unsupported_message(path, nodes)) from exc


def unsupported_message(path: Path, nodes: list[tuple[str, str]]) -> str:
    if not nodes:
        return (
            f"the QNN HTP backend does not take every node of {path} (CPU fallback is disabled) and the "
            "nodes could not be identified: run it with fallback allowed to see them"
        )
    types = sorted({op for op, _ in nodes})
    listed = ", ".join(f"{name} ({op})" for op, name in nodes[:20])
    more = f" and {len(nodes) - 20} more" if len(nodes) > 20 else ""
    return (
        f"the QNN HTP backend does not support operator type(s) {', '.join(types)} in {path.name}: "
        f"node(s) {listed}{more}; CPU fallback is disabled so nothing runs silently on the CPU. Replace "
        "these operators in the model (or exclude it from the search space)"
    )


def cpu_placed_nodes(
    model_path: Path, provider_options: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """``(op_type, node_name)`` of every node of ``model_path`` that QNN does not place on the HTP.

    Compiles an EP-context model with CPU fallback allowed (in a temporary folder) and lists the nodes that
    stayed outside its ``EPContext`` nodes; an EP-context model is read as it is.
    """
    path = Path(model_path)
    model = onnx.load(str(path), load_external_data=False)
    if is_context_model(model):
        return [(n.op_type, n.name) for n in model.graph.node if n.op_type != "EPContext"]
    with tempfile.TemporaryDirectory(prefix="qnn-placement-") as tmp:
        ctx = Path(tmp) / "placement_ctx.onnx"
        # with fallback allowed the EP hands the graph's input quantization / output dequantization to the
        # CPU EP (offload_graph_io_quantization, default on), which it does not do with fallback disabled
        options = {"offload_graph_io_quantization": "0", **(provider_options or {})}
        so = _session_options(
            fallback=True,
            provider_options=options,
            config_entries={
                "ep.context_enable": "1",
                "ep.context_file_path": str(ctx),
                "ep.context_embed_mode": "1",
            },
        )
        ort.InferenceSession(str(path), sess_options=so)
        compiled = onnx.load(str(ctx))
    return [(n.op_type, n.name or "(unnamed)") for n in compiled.graph.node if n.op_type != "EPContext"]


def providers_by_profiling(
    model_path: Path, feed: Mapping[str, Any], provider_options: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """Which provider ran each node of one inference of ``model_path`` (CPU fallback allowed, onnxruntime
    profiling on): ``{provider: [node names]}``. Nodes on ``QNNExecutionProvider`` are its fused partitions."""
    import json

    with tempfile.TemporaryDirectory(prefix="qnn-profile-") as tmp:
        so = _session_options(fallback=True, provider_options=provider_options or {})
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(model_path), sess_options=so)
        session.run(None, dict(feed))
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    placed: dict[str, list[str]] = {}
    for event in events:
        args = event.get("args", {})
        if event.get("cat") == "Node" and "provider" in args and event["name"].endswith("_kernel_time"):
            placed.setdefault(args["provider"], []).append(event["name"].removesuffix("_kernel_time"))
    return placed


def is_context_model(model: onnx.ModelProto | Path) -> bool:
    """Whether a model holds ``EPContext`` nodes (a compiled EP-context model)."""
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model), load_external_data=False)
    return any(n.op_type == "EPContext" for n in proto.graph.node)


def context_files(model_path: Path) -> list[str]:
    """The context binaries an EP-context model refers to (``embed_mode=0``), as names beside the model.

    A name that is not a plain file name (a path that would leave the model's folder) is refused.
    """
    model = onnx.load(str(model_path), load_external_data=False)
    names: list[str] = []
    for node in model.graph.node:
        if node.op_type != "EPContext":
            continue
        attrs = {a.name: a for a in node.attribute}
        if "embed_mode" in attrs and attrs["embed_mode"].i != 0:
            continue
        if "ep_cache_context" not in attrs:
            continue
        name = attrs["ep_cache_context"].s.decode("utf-8")
        if not name or Path(name).name != name or name in (".", ".."):
            raise TargetError(
                f"EPContext node {node.name!r} of {model_path} refers to {name!r}, which is not a file "
                "beside the model: recompile it"
            )
        if name not in names:
            names.append(name)
    return names
