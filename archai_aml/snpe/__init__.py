"""The Qualcomm Neural Processing SDK (SNPE) driven as a user with a Snapdragon board on USB does: the
SDK's host tools convert, quantize and describe DLC models, ``adb`` and ``snpe-net-run`` run them on the
device, ``snpe_bench.py`` times them. See :mod:`archai_aml.snpe.target` and docs/qualcomm.md. Names are
imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archai_aml._lazy import lazy_attributes

__all__ = [
    "find_sdk",
    "AdbDevice",
    "SnpeSdk",
    "SnpeTarget",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "AdbDevice": "archai_aml.snpe.adb",
        "SnpeSdk": "archai_aml.snpe.sdk",
        "find_sdk": "archai_aml.snpe.sdk",
        "SnpeTarget": "archai_aml.snpe.target",
    },
)

if TYPE_CHECKING:
    from archai_aml.snpe.adb import AdbDevice
    from archai_aml.snpe.sdk import SnpeSdk, find_sdk
    from archai_aml.snpe.target import SnpeTarget
