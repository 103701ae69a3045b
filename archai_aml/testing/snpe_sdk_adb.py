# ruff: noqa: T201 - the test tools are command-line programs: their output is what they print
"""The test SDK's ``adb``: each attached "device" is a folder ``$FAKE_ADB_DEVICES/<serial>/`` holding its
filesystem (``/data/local/tmp/x`` is ``<serial>/data/local/tmp/x``).

Commands: ``-s SERIAL get-state | push SRC DST | pull SRC DST | shell CMD | root``. ``shell`` runs a
small POSIX-like shell: ``&&``/``||`` chains, ``export K=V`` (with ``$VAR`` expansion), ``cd``, ``mkdir
-p``, ``rm -rf``, ``chmod``, ``cat``, ``echo ... > file``, ``true`` and programs found on the device's
``PATH`` (the pushed ``snpe-net-run``, which must have been made executable). The exit status of the
command is adb's exit status, as with adb 1.0.41+.

Fault injection: ``<serial>/.fake/flaky_pushes`` holds how many of the next pushes fail with adb's
error text (a flaky USB link); the counter goes down with each failed push.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["adb_main"]


def _err(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


class _Device:
    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.root = Path(os.environ["FAKE_ADB_DEVICES"]) / serial

    def path(self, text: str, cwd: str = "/") -> Path:
        absolute = text if text.startswith("/") else f"{cwd.rstrip('/')}/{text}"
        parts = [p for p in absolute.split("/") if p and p != "."]
        if ".." in parts:
            raise ValueError(f"path {text} leaves the device root in this test adb")
        return self.root.joinpath(*parts)

    def flaky(self) -> bool:
        counter = self.root / ".fake" / "flaky_pushes"
        if not counter.is_file():
            return False
        left = int(counter.read_text().strip() or 0)
        if left <= 0:
            return False
        counter.write_text(str(left - 1))
        return True


def _copy_into(src: Path, dst: Path, contents: bool) -> int:
    """Copy a file or a folder (its contents with ``contents``) to ``dst``; returns files copied.

    A folder lands *inside* a ``dst`` that already exists, as ``dst/<name>``, and becomes ``dst`` when
    ``dst`` does not exist yet: AOSP adb ``client/file_sync_client.cpp`` (``do_sync_push`` and
    ``do_sync_pull``): "If the destination path existed originally, the source directory should be
    copied as a child of the destination". ``src/.`` names the folder ``.``, so its contents land in
    ``dst`` either way (what Olive's SNPE adb helper relies on: ``pull <ws>/output/. <local>``)."""
    if src.is_dir():
        target = dst if contents or not dst.exists() else dst / src.name
        target.mkdir(parents=True, exist_ok=True)
        count = 0
        for item in src.iterdir():
            if item.is_dir():
                count += _copy_into(item, target / item.name, contents=True)
            else:
                shutil.copyfile(item, target / item.name)
                count += 1
        return count
    target = dst / src.name if dst.is_dir() else dst
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)  # not copy2: permissions are the device's business (chmod)
    return 1


def _push(dev: _Device, src: str, dst: str) -> int:
    local = Path(src.removesuffix("/."))
    if not local.exists():
        return _err(f"adb: error: cannot stat '{src}': No such file or directory")
    if dev.flaky():
        return _err(
            f"adb: error: failed to copy '{src}' to '{dst}': remote couldn't create file: Broken pipe"
        )
    n = _copy_into(local, dev.path(dst), contents=src.endswith("/."))
    print(f"{src}: {n} file(s) pushed, 0 skipped.")
    return 0


def _pull(dev: _Device, src: str, dst: str) -> int:
    remote = dev.path(src.removesuffix("/."))
    if not remote.exists():
        return _err(f"adb: error: failed to stat remote object '{src}': No such file or directory")
    n = _copy_into(remote, Path(dst), contents=src.endswith("/."))
    print(f"{src}: {n} file(s) pulled, 0 skipped.")
    return 0


def _expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), text)


def _simple(dev: _Device, words: list[str], env: dict[str, str], state: dict[str, str]) -> int:
    """One simple command; ``state['cwd']`` is the device working folder."""
    redirect = None
    if ">" in words:
        i = words.index(">")
        redirect, words = words[i + 1], words[:i]
    words = [w for w in words if w != "2>/dev/null"]
    cmd, args = words[0], words[1:]
    cwd = state["cwd"]
    if cmd == "export":
        for a in args:
            key, _, value = a.partition("=")
            env[key] = _expand(value, env)
        return 0
    if cmd == "true":
        return 0
    if cmd == "cd":
        target = dev.path(args[0], cwd)
        if not target.is_dir():
            return _err(f"/system/bin/sh: cd: {args[0]}: No such file or directory", 2)
        state["cwd"] = "/" + str(target.relative_to(dev.root)) if target != dev.root else "/"
        return 0
    paths = [dev.path(a, cwd) for a in args if not a.startswith("-")]
    if cmd == "mkdir":
        for p in paths:
            p.mkdir(parents=True, exist_ok=True)
        return 0
    if cmd == "rm":
        for p in paths:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return 0
    if cmd == "chmod":
        for p in dev.root.glob(str(paths[-1].relative_to(dev.root))) if "*" in args[-1] else paths:
            p.chmod(p.stat().st_mode | 0o100)
        return 0
    if cmd == "cat":
        if not paths[0].is_file():
            return _err(f"cat: {args[0]}: No such file or directory")
        print(paths[0].read_text(), end="")
        return 0
    if cmd == "echo":
        text = " ".join(args) + "\n"
        if redirect:
            dev.path(redirect, cwd).write_text(text)
        else:
            print(text, end="")
        return 0
    if cmd == "ls":
        p = paths[0] if paths else dev.path(cwd)
        if not p.exists():
            return _err(f"ls: {args[-1]}: No such file or directory")
        print("\n".join(sorted(x.name for x in p.iterdir())) if p.is_dir() else p.name)
        return 0
    for folder in env.get("PATH", "").split(":"):
        exe = dev.path(folder, cwd) / cmd if folder else None
        if exe is not None and exe.is_file():
            if not os.access(exe, os.X_OK):
                return _err(f"/system/bin/sh: {cmd}: can't execute: Permission denied", 126)
            run_env = {**os.environ, **env, "FAKE_DEVICE_ROOT": str(dev.root)}
            proc = subprocess.run([str(exe), *args], cwd=dev.path(cwd), env=run_env, check=False)
            return proc.returncode
    return _err(f"/system/bin/sh: {cmd}: inaccessible or not found", 127)


def _shell(dev: _Device, command: str) -> int:
    env = {"PATH": "/system/bin:/system/xbin", "LD_LIBRARY_PATH": ""}
    state = {"cwd": "/"}
    code = 0
    for segment in command.split("&&"):
        alternatives = segment.split("||")
        for alt in alternatives:
            words = shlex.split(alt)
            code = _simple(dev, words, env, state) if words else 0
            if code == 0:
                break
        if code != 0:
            return code
    return code


def adb_main(argv: list[str]) -> int:
    serial = None
    if len(argv) >= 2 and argv[0] == "-s":
        serial, argv = argv[1], argv[2:]
    devices = Path(os.environ["FAKE_ADB_DEVICES"])
    if not argv:
        return _err("adb: usage: no command")
    if argv[0] == "devices":
        print("List of devices attached")
        for d in sorted(devices.iterdir()) if devices.is_dir() else []:
            print(f"{d.name}\tdevice")
        return 0
    if serial is None:
        return _err("adb: error: no serial given (-s SERIAL)")
    dev = _Device(serial)
    if not dev.root.is_dir():
        return _err(f"adb: device '{serial}' not found")
    cmd, args = argv[0], argv[1:]
    if cmd == "get-state":
        print("device")
        return 0
    if cmd == "root":
        print("adbd is already running as root")
        return 0
    if cmd == "push" and len(args) == 2:
        return _push(dev, *args)
    if cmd == "pull" and len(args) == 2:
        return _pull(dev, *args)
    if cmd == "shell" and args:
        return _shell(dev, " ".join(args))
    return _err(f"adb: unknown command {' '.join(argv)}")
