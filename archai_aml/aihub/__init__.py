"""Qualcomm AI Hub as a target (the ``aihub`` extra): compile, quantize, profile and run models on
Snapdragon devices in AI Hub's cloud through the ``qai-hub`` client. See :mod:`archai_aml.aihub.target`. Names are imported on
first use (:mod:`archai_aml.aihub.settings` needs no qai-hub)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archai_aml._lazy import lazy_attributes

__all__ = [
    "hub_client",
    "AiHubTarget",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "AiHubTarget": "archai_aml.aihub.target",
        "hub_client": "archai_aml.aihub.target",
    },
)

if TYPE_CHECKING:
    from archai_aml.aihub.target import AiHubTarget, hub_client
