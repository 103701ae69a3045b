"""Settings of the ``snpe`` target (the SNPE SDK over adb), the registry's entry point for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from archai_aml.config import TargetConfig

__all__ = ["SnpeTargetConfig"]


class SnpeTargetConfig(TargetConfig):
    """``snpe``: the SDK's host tools convert and quantize DLCs, a Snapdragon board on adb runs them
    (:class:`archai_aml.snpe.SnpeTarget`; docs/qualcomm.md)."""

    factory = "archai_aml.snpe.target:SnpeTarget"

    name: Literal["snpe"] = "snpe"
    #: the SDK folder (default: $SNPE_ROOT)
    sdk_root: Path | None = None
    #: the SoCs of the offline HTP graph cache (e.g. sm8650)
    htp_socs: str | None = None

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        return {
            "sdk_root": self.sdk_root,
            "device": context.get("device", self.device),
            "htp_socs": self.htp_socs,
        }
