"""Qualcomm AI Hub as a target (the ``aihub`` extra): compile, quantize, profile and run models on
Snapdragon devices in AI Hub's cloud through the ``qai-hub`` client. See :mod:`archai_aml.aihub.target`."""

from archai_aml.aihub.target import AiHubTarget, hub_client

__all__ = ["AiHubTarget", "hub_client"]
