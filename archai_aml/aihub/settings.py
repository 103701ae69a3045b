"""Settings of the ``aihub`` target (Qualcomm AI Hub), the registry's entry point for it."""

from __future__ import annotations

from typing import Any, Literal

from archai_aml.config import TargetConfig

__all__ = ["AiHubTargetConfig"]


class AiHubTargetConfig(TargetConfig):
    """``aihub``: compile, profile and run on Snapdragon devices in AI Hub's cloud
    (:class:`archai_aml.aihub.AiHubTarget`, the ``aihub`` extra)."""

    factory = "archai_aml.aihub.target:AiHubTarget"
    extra = "aihub"

    name: Literal["aihub"] = "aihub"
    #: the Qualcomm AI Hub device to compile for and run on
    hub_device: str = "Samsung Galaxy S24 (Family)"

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        return {"device": self.hub_device}
