"""A test Qualcomm Neural Processing SDK folder and a test ``adb``, for running the ``snpe`` target end to
end without the SDK or a board.

:func:`build_test_sdk` lays out an SDK as the real one is laid out (``bin/x86_64-linux-clang``,
``bin/aarch64-android``, ``lib/...``, ``benchmarks/SNPE/snpe_bench.py`` or ``benchmarks/snpe_bench.py``;
SNPE 2.x or 1.x tool names and output formats) whose
executables are small Python scripts (:mod:`archai_aml.testing.snpe_sdk_tools`) that check their arguments
and write the tools' documented output formats, and a ``platform-tools/adb``
(:mod:`archai_aml.testing.snpe_sdk_adb`) whose devices are folders. ``snpe-net-run`` on such a device
really computes its outputs: the test DLC carries the ONNX model, run with onnxruntime on the CPU.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TestSdk", "build_test_sdk"]

_REPO = Path(__file__).resolve().parents[2]
_WRAPPER = """#!{python}
import os, sys
sys.path.insert(0, {repo!r})
os.environ.setdefault("FAKE_ADB_DEVICES", {devices!r})
os.environ["FAKE_SNPE_GENERATION"] = {generation!r}  # the SDK these tools belong to
{entry}
"""
_TOOL_ENTRY = "from archai_aml.testing.snpe_sdk_main import main\nsys.exit(main({tool!r}, sys.argv[1:]))"
# adb is called often: it imports only the standard library
_ADB_ENTRY = "from archai_aml.testing.snpe_sdk_adb import adb_main\nsys.exit(adb_main(sys.argv[1:]))"


@dataclass(frozen=True)
class TestSdk:
    """A built test SDK: ``root`` is what SNPE_ROOT points at; ``adb`` the test adb; ``devices`` the folder
    of device filesystems (one folder per serial)."""

    __test__ = False  # not a pytest test class

    root: Path
    adb: Path
    devices: Path
    generation: int
    version: str

    def device_root(self, serial: str) -> Path:
        return self.devices / serial

    def add_device(self, serial: str) -> Path:
        folder = self.devices / serial
        (folder / "data" / "local" / "tmp").mkdir(parents=True, exist_ok=True)
        return folder

    def flaky_pushes(self, serial: str, count: int) -> None:
        """Make the next ``count`` pushes to ``serial`` fail as a flaky USB link does."""
        fake = self.devices / serial / ".fake"
        fake.mkdir(parents=True, exist_ok=True)
        (fake / "flaky_pushes").write_text(str(count))

    def env(self) -> dict[str, str]:
        """Environment for a process using this SDK: SNPE_ROOT, and the test adb first on PATH."""
        return {
            "SNPE_ROOT": str(self.root),
            "FAKE_ADB_DEVICES": str(self.devices),
            "PATH": os.pathsep.join([str(self.adb.parent), os.environ.get("PATH", "")]),
        }


def _script(path: Path, tool: str, devices: Path, generation: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        _WRAPPER.format(
            python=sys.executable,
            repo=str(_REPO),
            devices=str(devices),
            generation=str(generation),
            entry=_ADB_ENTRY if tool == "adb" else _TOOL_ENTRY.format(tool=tool),
        ),
        encoding="utf-8",
    )
    path.chmod(0o755)


def build_test_sdk(
    folder: Path,
    *,
    generation: int = 2,
    version: str | None = None,
    serials: tuple[str, ...] = ("emulator-5554",),
    arch: str | None = None,
) -> TestSdk:
    """Lay out a test SDK (``generation`` 2: QAIRT 2.x names and layout, 1: SNPE 1.x) under ``folder``.

    ``arch``: the device-architecture folder name (default ``aarch64-android`` for 2.x, as QAIRT 2.x names
    it, ``aarch64-android-clang8.0`` for 1.x). ``snpe_bench.py`` sits in ``benchmarks/SNPE/`` in 2.x
    (quic/qidk's 2.x instructions: ``python $SNPE_ROOT/benchmarks/SNPE/snpe_bench.py -c ... -t
    android-aarch64``) and in ``benchmarks/`` in 1.x (archai's SNPE 1.x scripts put
    ``$SNPE_ROOT/benchmarks`` on ``sys.path`` to import it)."""
    folder = Path(folder)
    version = version or ("2.39.0.250926" if generation >= 2 else "1.68.0.3932")
    root = folder / ("qairt" if generation >= 2 else f"snpe-{version}")
    devices = folder / "devices"
    host = root / "bin" / "x86_64-linux-clang"
    tools = ["snpe-onnx-to-dlc", "snpe-dlc-info"]
    tools += ["snpe-dlc-quant", "snpe-dlc-graph-prepare"] if generation >= 2 else ["snpe-dlc-quantize"]
    for tool in tools:
        _script(host / tool, tool, devices, generation)
    arch = arch or ("aarch64-android" if generation >= 2 else "aarch64-android-clang8.0")
    _script(root / "bin" / arch / "snpe-net-run", "snpe-net-run", devices, generation)
    bench = root / "benchmarks" / ("SNPE" if generation >= 2 else "") / "snpe_bench.py"
    _script(bench, "snpe_bench.py", devices, generation)
    for lib in (root / "lib" / "x86_64-linux-clang" / "libSNPE.so", root / "lib" / arch / "libSNPE.so"):
        lib.parent.mkdir(parents=True, exist_ok=True)
        lib.write_bytes(b"\x7fELF test library\n")
    if generation >= 2:
        skel = root / "lib" / "hexagon-v73" / "unsigned" / "libSnpeHtpV73Skel.so"
        (root / "sdk.yaml").write_text(f"name: qairt\nversion: {version}\n", encoding="utf-8")
    else:
        skel = root / "lib" / "dsp" / "libsnpe_dsp_v66_domains_v2_skel.so"
    skel.parent.mkdir(parents=True, exist_ok=True)
    skel.write_bytes(b"\x7fELF test dsp library\n")
    (root / "lib" / "python").mkdir(parents=True, exist_ok=True)
    adb = folder / "platform-tools" / "adb"
    _script(adb, "adb", devices, generation)
    sdk = TestSdk(root=root, adb=adb, devices=devices, generation=generation, version=version)
    for serial in serials:
        sdk.add_device(serial)
    return sdk
