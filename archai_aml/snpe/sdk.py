"""Finding a Qualcomm Neural Processing SDK (SNPE) on the host, as the SDK's own setup script would.

``$SNPE_ROOT`` is the unpacked SDK (``snpe-1.68.0.3932`` or ``qairt/2.39.0.250926``). What it holds
decides the generation:

* SNPE 2.x / QAIRT: ``bin/x86_64-linux-clang/snpe-dlc-quant`` (quantize) and ``snpe-dlc-graph-prepare``
  (offline HTP graph cache);
* SNPE 1.x: ``bin/x86_64-linux-clang/snpe-dlc-quantize``.

Both have ``snpe-onnx-to-dlc`` and ``snpe-dlc-info`` on the host, ``bin/aarch64-android*/snpe-net-run`` and
``lib/aarch64-android*`` for the device, the Hexagon DSP skeleton libraries (``lib/dsp`` in 1.x,
``lib/hexagon-v*/unsigned`` in 2.x) and ``snpe_bench.py``: ``benchmarks/SNPE/snpe_bench.py`` in recent 2.x
SDKs (quic/qidk's 2.x instructions run ``python $SNPE_ROOT/benchmarks/SNPE/snpe_bench.py``),
``benchmarks/snpe_bench.py`` in 1.x (archai's SNPE 1.x scripts import it from ``$SNPE_ROOT/benchmarks``);
both places are looked in and the one found is named in :attr:`SnpeSdk.layout`. The host environment is what
``bin/envsetup.sh`` exports: ``SNPE_ROOT``, ``PYTHONPATH`` += ``lib/python``, ``PATH`` +=
``bin/x86_64-linux-clang``, ``LD_LIBRARY_PATH`` += ``lib/x86_64-linux-clang``. ``ANDROID_NDK_ROOT`` is
only needed to build native apps against the SDK; it is passed through when set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from archai_aml.errors import TargetError

__all__ = ["HOST_ARCH", "SnpeSdk", "find_sdk"]

HOST_ARCH = "x86_64-linux-clang"
_HOST_TOOLS = ("snpe-onnx-to-dlc", "snpe-dlc-info")


@dataclass(frozen=True)
class SnpeSdk:
    """Paths and environment of one SDK folder (build with :func:`find_sdk`)."""

    root: Path
    generation: int
    version: str
    device_arch: str
    dsp_lib_dirs: tuple[Path, ...]
    bench: Path
    env: dict[str, str] = field(repr=False, compare=False)

    @property
    def host_bin(self) -> Path:
        return self.root / "bin" / HOST_ARCH

    @property
    def host_lib(self) -> Path:
        return self.root / "lib" / HOST_ARCH

    @property
    def device_lib(self) -> Path:
        return self.root / "lib" / self.device_arch

    @property
    def device_bin(self) -> Path:
        return self.root / "bin" / self.device_arch

    @property
    def bench_script(self) -> Path:
        return self.bench

    @property
    def layout(self) -> str:
        """Which SDK layout was found, in a few words (for logs and the row's ``sources``)."""
        quant = "+".join(self.quantize_tools)
        return f"SNPE {self.generation}.x layout ({quant}, {self.bench.relative_to(self.root)}, {self.device_arch})"

    def tool(self, name: str) -> Path:
        """A host tool of the SDK (``snpe-onnx-to-dlc``...), checked to exist."""
        path = self.host_bin / name
        if not path.is_file():
            raise TargetError(f"the SNPE SDK at {self.root} has no {name} in {self.host_bin}")
        return path

    @property
    def quantize_tools(self) -> tuple[str, ...]:
        """The quantizer of this generation (and the HTP graph preparation of 2.x)."""
        return (
            ("snpe-dlc-quant", "snpe-dlc-graph-prepare") if self.generation >= 2 else ("snpe-dlc-quantize",)
        )


def _sdk_version(root: Path) -> str:
    """``version:`` of the QAIRT ``sdk.yaml``, else the version in the folder name, else the folder name."""
    yaml_file = root / "sdk.yaml"
    if yaml_file.is_file():
        m = re.search(r"^\s*version\s*:\s*['\"]?([\w.\-]+)", yaml_file.read_text(encoding="utf-8"), re.M)
        if m:
            return m.group(1)
    m = re.search(r"(\d+\.\d+\.\d+(?:\.\d+)?)", str(root))
    return m.group(1) if m else root.name


def find_sdk(root: str | os.PathLike[str] | None = None, *, environ: dict[str, str] | None = None) -> SnpeSdk:
    """The SDK at ``root`` (default ``$SNPE_ROOT``); one :class:`TargetError` naming what is missing."""
    env_in = dict(os.environ if environ is None else environ)
    if root is None:
        value = env_in.get("SNPE_ROOT")
        if not value:
            raise TargetError(
                "SNPE_ROOT is not set: set it to the unpacked Qualcomm Neural Processing SDK "
                f"(the folder holding bin/{HOST_ARCH}/snpe-onnx-to-dlc), or pass sdk_root"
            )
        root = value
    path = Path(root).expanduser().resolve()
    host_bin = path / "bin" / HOST_ARCH
    missing = [t for t in _HOST_TOOLS if not (host_bin / t).is_file()]
    if missing:
        raise TargetError(
            f"SNPE_ROOT={path} is not an SNPE SDK: expected {', '.join(missing)} in {host_bin} "
            "(point SNPE_ROOT at the SDK's top folder)"
        )
    if (host_bin / "snpe-dlc-quant").is_file():
        generation = 2
        if not (host_bin / "snpe-dlc-graph-prepare").is_file():
            raise TargetError(
                f"SNPE_ROOT={path} has snpe-dlc-quant but no snpe-dlc-graph-prepare in {host_bin}"
            )
    elif (host_bin / "snpe-dlc-quantize").is_file():
        generation = 1
    else:
        raise TargetError(
            f"SNPE_ROOT={path} has no quantizer: expected snpe-dlc-quant (SNPE 2.x) or snpe-dlc-quantize "
            f"(SNPE 1.x) in {host_bin}"
        )
    arches = sorted(p.name for p in (path / "lib").glob("aarch64-android*") if p.is_dir())
    if not arches:
        raise TargetError(
            f"SNPE_ROOT={path} has no device libraries: expected {path / 'lib'}/aarch64-android*"
        )
    arch = arches[0]
    if not (path / "bin" / arch / "snpe-net-run").is_file():
        raise TargetError(
            f"SNPE_ROOT={path} has no device runner: expected {path / 'bin' / arch}/snpe-net-run"
        )
    benches = [path / "benchmarks" / "SNPE" / "snpe_bench.py", path / "benchmarks" / "snpe_bench.py"]
    bench = next((b for b in benches if b.is_file()), None)
    if bench is None:
        raise TargetError(
            f"SNPE_ROOT={path} has no snpe_bench.py: expected {benches[0]} (SNPE 2.x) or {benches[1]} (1.x)"
        )
    dsp = [path / "lib" / "dsp"] if (path / "lib" / "dsp").is_dir() else []
    dsp += sorted(p for p in (path / "lib").glob("hexagon-v*/unsigned") if p.is_dir())
    env = _host_env(path, env_in)
    return SnpeSdk(path, generation, _sdk_version(path), arch, tuple(dsp), bench, env)


def _host_env(root: Path, env_in: dict[str, str]) -> dict[str, str]:
    """The environment ``bin/envsetup.sh`` would leave for the host tools."""
    env = dict(env_in)

    def prepend(key: str, value: Path) -> None:
        env[key] = os.pathsep.join([str(value), *([env[key]] if env.get(key) else [])])

    env["SNPE_ROOT"] = str(root)
    prepend("PYTHONPATH", root / "lib" / "python")
    prepend("PATH", root / "bin" / HOST_ARCH)
    prepend("LD_LIBRARY_PATH", root / "lib" / HOST_ARCH)
    return env
