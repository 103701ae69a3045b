"""A trained PyTorch model to ONNX, checked against PyTorch on onnxruntime (``export.py``).

:func:`export_onnx` writes the model (fp32, eval mode, on the CPU) with the TorchScript exporter at the
chosen opset, input ``input`` and output ``output``, optionally with a dynamic batch axis.
:func:`check_onnx` loads the file with onnxruntime (CPU provider), runs it and the PyTorch model on the same
random inputs (each batch size given; with a dynamic batch several) and raises :class:`ExportCheckError`
when an output differs by more than ``atol + rtol * |torch|``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archai_aml.errors import ArchaiAmlError

__all__ = ["ExportCheck", "ExportCheckError", "check_onnx", "export_onnx", "load_state_dict"]

log = logging.getLogger(__name__)


class ExportCheckError(ArchaiAmlError):
    """The exported ONNX model does not compute what the PyTorch model computes."""


@dataclass(frozen=True)
class ExportCheck:
    """The comparison of one export: per batch size, the largest absolute difference."""

    path: Path
    opset: int
    input_shape: tuple[int, ...]
    dynamic_batch: bool
    max_abs_diff: dict[int, float]


def load_state_dict(model: Any, checkpoint: str | Path) -> None:
    """Load a ``model.pt`` (a state dict, as ``train.py`` saves it; weights only, nothing unpickled)."""
    import torch

    state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    model.load_state_dict(state)


def export_onnx(
    model: Any,
    path: str | Path,
    input_shape: Sequence[int],
    *,
    opset: int = 17,
    dynamic_batch: bool = False,
) -> Path:
    """Export ``model`` (a ``torch.nn.Module``) to ``path``; returns it."""
    import torch

    if len(input_shape) < 2 or any(int(d) <= 0 for d in input_shape):
        raise ValueError(f"input shape {list(input_shape)} must be positive dimensions, e.g. 1,3,256,256")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").float().eval()
    example = torch.zeros(*[int(d) for d in input_shape])
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            dynamic_axes=axes,
            dynamo=False,
        )
    return path


def check_onnx(
    model: Any,
    path: str | Path,
    input_shape: Sequence[int],
    *,
    batch_sizes: Sequence[int] | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-4,
    seed: int = 0,
) -> ExportCheck:
    """Compare ``path`` on onnxruntime with ``model`` in PyTorch (see the module docstring)."""
    import onnx
    import onnxruntime as ort
    import torch

    path = Path(path)
    proto = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(proto)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dynamic = bool(dims) and not dims[0].dim_value
    sizes = list(batch_sizes) if batch_sizes else ([1, 3] if dynamic else [int(input_shape[0])])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    model = model.to("cpu").float().eval()
    rng = np.random.default_rng(seed)
    diffs: dict[int, float] = {}
    for n in sizes:
        x = rng.random((n, *[int(d) for d in input_shape[1:]]), dtype=np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        got = session.run(None, {name: x})[0]
        if got.shape != expected.shape:
            raise ExportCheckError(
                f"{path.name}: output shape {list(got.shape)} for batch {n}, PyTorch gives {list(expected.shape)}"
            )
        diff = np.abs(got - expected)
        diffs[n] = float(diff.max()) if diff.size else 0.0
        bad = diff > atol + rtol * np.abs(expected)
        if bad.any():
            raise ExportCheckError(
                f"{path.name}: {int(bad.sum())} of {bad.size} outputs differ from PyTorch for batch {n} "
                f"(largest difference {diffs[n]:.3g}, allowed {atol:g} + {rtol:g}*|x|): export again with "
                "another opset, or check the model for export-unfriendly operations"
            )
    log.info("%s matches PyTorch (batch sizes %s, largest difference %s)", path.name, sizes, diffs)
    return ExportCheck(path, int(opset), tuple(int(d) for d in input_shape), dynamic, diffs)
