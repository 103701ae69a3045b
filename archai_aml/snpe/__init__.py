"""The Qualcomm Neural Processing SDK (SNPE) driven as a user with a Snapdragon board on USB does: the
SDK's host tools convert, quantize and describe DLC models, ``adb`` and ``snpe-net-run`` run them on the
device, ``snpe_bench.py`` times them. See :mod:`archai_aml.snpe.target` and docs/qualcomm.md."""

from archai_aml.snpe.adb import AdbDevice
from archai_aml.snpe.sdk import SnpeSdk, find_sdk
from archai_aml.snpe.target import SnpeTarget

__all__ = ["AdbDevice", "SnpeSdk", "SnpeTarget", "find_sdk"]
