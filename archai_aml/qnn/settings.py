"""Settings of the ``qnn`` target (QNN HTP through onnxruntime-qnn, the ``qnn`` extra), the registry's
entry point for it: the section's ``qnn:`` block holds the backend's options."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from archai_aml.config import TargetConfig
from archai_aml.config_base import ConfigModel

__all__ = ["QnnTargetConfig", "QnnTargetSection"]


class QnnTargetConfig(ConfigModel):
    """Options of the ``qnn`` target (QNN HTP through onnxruntime-qnn; docs/qualcomm.md)."""

    activation_type: Literal["uint8", "uint16"] = "uint8"
    weight_type: Literal["uint8", "uint16"] = "uint8"
    per_channel: bool = False
    calibrate_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    htp_performance_mode: (
        Literal[
            "burst", "balanced", "default", "high_performance", "high_power_saver", "low_balanced",
            "extreme_power_saver", "low_power_saver", "power_saver", "sustained_high_performance",
        ]
        | None
    ) = None  # fmt: skip
    soc_model: str | None = None
    htp_arch: str | None = None
    #: Embed the context binary in the EP-context model (default: ``model_ctx_qnn.bin`` beside it).
    embed_context: bool = False
    #: ``onnxruntime`` (direct calls) or ``olive`` (Olive passes) for quantize + compile.
    toolchain: Literal["onnxruntime", "olive"] = "onnxruntime"
    #: Processes that run HTP batches in parallel (the x86-64 emulator runs about one core per session).
    workers: int = Field(default=1, ge=1)


class QnnTargetSection(TargetConfig):
    """``qnn``: QNN HTP through onnxruntime-qnn (:class:`archai_aml.qnn.QnnTarget`); its options are the
    ``qnn:`` block (docs/qualcomm.md)."""

    factory = "archai_aml.qnn.target:QnnTarget"
    extra = "qnn"

    name: Literal["qnn"] = "qnn"
    qnn: QnnTargetConfig = QnnTargetConfig()

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape), **self.qnn.model_dump()}
