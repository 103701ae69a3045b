"""An Android device on USB, driven with ``adb -s SERIAL``: push (with retries), pull, shell, and the SNPE
runtime set up once per SDK version.

Layout on the device (under ``/data/local/tmp/archai_aml``): ``<arch>/bin`` (``snpe-net-run``),
``<arch>/lib`` (the runtime libraries), ``dsp/lib`` (the Hexagon skeleton libraries), the marker
``<arch>/.sdk_version`` that says which SDK version was pushed, and ``work/`` for models, inputs and
outputs. A push that fails (``adb`` exits non-zero or prints ``error:``, as a flaky USB link does) is
retried with a growing pause.

Every value put into a device shell command (paths, the SDK's architecture folder name, the version) is
quoted with :func:`shlex.quote`, whatever its origin: ``adb shell CMD`` hands ``CMD`` to the device's
``sh``.

Folders: ``adb push``/``pull`` copy a source folder *into* a destination that exists (as
``dst/<name>``) and *as* a destination that does not (AOSP adb ``client/file_sync_client.cpp``,
``do_sync_pull``: "If the destination path existed originally, the source directory should be copied as a
child of the destination"); :meth:`AdbDevice.push` and :meth:`AdbDevice.pull` copy a folder's contents
with ``src/.``, which lands in ``dst`` either way (Olive's SNPE adb helper: ``pull <ws>/output/. <local>``).
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import time
from pathlib import Path, PurePosixPath

from archai_aml.errors import TargetError
from archai_aml.snpe.sdk import SnpeSdk

__all__ = ["DEVICE_ROOT", "AdbDevice"]

log = logging.getLogger(__name__)

DEVICE_ROOT = PurePosixPath("/data/local/tmp/archai_aml")
_DSP_SYSTEM = "/system/lib/rfsa/adsp;/system/vendor/lib/rfsa/adsp;/dsp"


class AdbDevice:
    """One device by serial. ``adb``: the adb executable (default: ``adb`` on ``PATH``)."""

    def __init__(
        self,
        serial: str,
        *,
        adb: str | Path | None = None,
        root: PurePosixPath | str = DEVICE_ROOT,
        retries: int = 5,
        retry_pause: float = 0.5,
        timeout: float = 600,
    ) -> None:
        if not serial:
            raise TargetError("the snpe target needs a device serial (archai-aml runner --device SERIAL)")
        found = str(adb) if adb is not None else shutil.which("adb")
        if not found or not Path(found).is_file():
            raise TargetError(
                f"adb not found ({adb or 'not on PATH'}): install Android platform-tools and put adb on PATH"
            )
        self.serial = serial
        self.adb = found
        self.root = PurePosixPath(root)
        self.retries = max(1, retries)
        self.retry_pause = retry_pause
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"AdbDevice({self.serial!r})"

    # ------------------------------------------------------------------------------------------ adb
    def _adb(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [self.adb, "-s", self.serial, *args]
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout or self.timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise TargetError(
                f"adb -s {self.serial} {args[0]} did not finish in {exc.timeout:.0f} s"
            ) from exc

    @staticmethod
    def _failed(proc: subprocess.CompletedProcess[str]) -> bool:
        return proc.returncode != 0 or "error:" in (proc.stdout + proc.stderr)

    def _retrying(self, what: str, *args: str) -> str:
        last = ""
        for attempt in range(1, self.retries + 1):
            proc = self._adb(*args)
            if not self._failed(proc):
                return proc.stdout
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]  # type: ignore[assignment]
            log.warning(
                "%s on %s failed (attempt %d/%d): %s", what, self.serial, attempt, self.retries, last[0]
            )
            if attempt < self.retries:
                time.sleep(self.retry_pause * attempt)
        raise TargetError(f"{what} on device {self.serial} failed {self.retries} times: {last[0]}")

    def push(self, local: Path | str, remote: PurePosixPath | str) -> None:
        """Copy a file, or a folder's contents (``local/.``), to the device."""
        src = Path(local)
        arg = f"{src}/." if src.is_dir() else str(src)
        self._retrying(f"adb push {src.name}", "push", arg, str(remote))

    def pull(self, remote: PurePosixPath | str, local: Path | str, *, folder: bool = True) -> None:
        """Copy a device folder's contents (``remote/.``; ``folder=False``: a file) to ``local``."""
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        src = f"{str(remote).rstrip('/')}/." if folder else str(remote)
        self._retrying(f"adb pull {remote}", "pull", src, str(local))

    def shell(self, command: str, *, check: bool = True, timeout: float | None = None) -> str:
        """Run ``command`` in the device shell; returns its output (``check``: non-zero exit raises)."""
        proc = self._adb("shell", command, timeout=timeout)
        if check and proc.returncode != 0:
            out = (proc.stdout + "\n" + proc.stderr).strip()
            from archai_aml.snpe.tools import first_error_line

            raise TargetError(
                f"'{command.split('&&')[-1].strip()[:120]}' failed on {self.serial} (exit {proc.returncode}): "
                f"{first_error_line(out)}"
            )
        return proc.stdout

    def state(self) -> str:
        """``device`` when the device is there (``adb get-state``); a TargetError otherwise."""
        proc = self._adb("get-state", timeout=60)
        if proc.returncode != 0:
            raise TargetError(
                f"device {self.serial} is not reachable with adb: {(proc.stderr or proc.stdout).strip()}"
            )
        return proc.stdout.strip()

    # ----------------------------------------------------------------------------------------- SNPE
    def arch_dir(self, sdk: SnpeSdk) -> PurePosixPath:
        return self.root / sdk.device_arch

    @property
    def dsp_dir(self) -> PurePosixPath:
        return self.root / "dsp" / "lib"

    @property
    def work_dir(self) -> PurePosixPath:
        return self.root / "work"

    def setup_sdk(self, sdk: SnpeSdk) -> bool:
        """Push the runtime, DSP libraries and ``snpe-net-run`` unless this SDK version is already there
        (the marker file); returns True if it pushed."""
        arch = self.arch_dir(sdk)
        marker = arch / ".sdk_version"
        q = shlex.quote
        have = self.shell(f"cat {q(str(marker))} 2>/dev/null || true", check=False).strip()
        if have == sdk.version:
            return False
        log.info("pushing SNPE %s (%s) to %s", sdk.version, sdk.device_arch, self.serial)
        a, dsp = q(str(arch)), q(str(self.dsp_dir))
        self.shell(f"rm -rf {a} {dsp} && mkdir -p {q(str(arch / 'bin'))} {q(str(arch / 'lib'))} {dsp}")
        self.push(sdk.device_lib, arch / "lib")
        for folder in sdk.dsp_lib_dirs:
            self.push(folder, self.dsp_dir)
        for tool in sorted(sdk.device_bin.iterdir()):
            if tool.is_file():
                self.push(tool, arch / "bin" / tool.name)
        self.shell(f"chmod u+x {q(str(arch / 'bin'))}/* && echo {q(sdk.version)} > {q(str(marker))}")
        return True

    def snpe_env(self, sdk: SnpeSdk) -> str:
        """The shell prefix that makes the pushed runtime usable (as the SDK's device docs do)."""
        arch, q = self.arch_dir(sdk), shlex.quote
        return (
            f"export SNPE_TARGET_ARCH={q(sdk.device_arch)} && "
            f"export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:{q(str(arch / 'lib'))} && "
            f"export PATH=$PATH:{q(str(arch / 'bin'))} && "
            f"export ADSP_LIBRARY_PATH={q(f'{self.dsp_dir};{_DSP_SYSTEM}')}"
        )
