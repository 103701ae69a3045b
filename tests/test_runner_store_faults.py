"""A runner on a store that fails for real, telling the faults apart: a read-only store (a folder the runner
may not write) stops it with exit 2, long-running or ``--once``; a full disk (a small tmpfs filled up, in a
mount namespace of the child) is waited out by a long-running runner and ends ``--once`` after its bound,
each saying which fault in its own words. (Before, both were "the store looks unreachable", for ever.)"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archai_aml.errors import ReadOnlyStoreError, StoreError, StoreFullError
from archai_aml.runner.resilience import Outage, store_fault
from archai_aml.store.embedded import EmbeddedStore
from archai_aml.store.leases import LeaseManager
from tests.runner_models import add_rows
from tests.test_embedded_store_disk import child_env, read_only_child

E = "exp"


def runner_cmd(work: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "archai_aml.cli", "runner", "--target", "cpu", "--experiment", E,
        "--working", str(work / "w"), "--lock-dir", str(work), "--poll-interval", "0.5", *extra,
    ]  # fmt: skip


@pytest.fixture
def shared() -> Iterator[tuple[Path, Path]]:
    """A store with one queued row, and a working folder, both where a child without privileges can go."""
    root = Path(tempfile.mkdtemp(prefix="archai-aml-faults-"))
    os.chmod(root, 0o755)
    store_dir, work = root / "store", root / "work"
    with EmbeddedStore(store_dir) as store:
        add_rows(store, E, 1)
    work.mkdir()
    os.chmod(work, 0o777)
    try:
        yield store_dir, work
    finally:
        for path in [store_dir, *store_dir.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        shutil.rmtree(root, ignore_errors=True)


def test_the_fault_kinds_and_when_to_give_up() -> None:
    assert store_fault(ReadOnlyStoreError("x")) == "read-only"
    assert store_fault(StoreFullError("x")) == "disk full"
    assert store_fault(StoreError("x")) == "unreachable"
    outage = Outage("r", once_limit_s=0.2)
    outage.failed("polling", StoreFullError("full"))
    assert outage.give_up(StoreFullError("full"), once=False) is None
    assert outage.give_up(StoreFullError("full"), once=True) is None  # not for 0.2 s yet
    time.sleep(0.25)
    assert outage.give_up(StoreFullError("full"), once=False) is None  # a long-running runner waits
    assert "disk of the store is full" in str(outage.give_up(StoreFullError("full"), once=True))
    assert "read-only" in str(outage.give_up(ReadOnlyStoreError("ro"), once=False))


@pytest.mark.parametrize("once", [False, True])
def test_a_read_only_store_stops_the_runner_with_exit_2(shared: tuple[Path, Path], once: bool) -> None:
    store_dir, work = shared
    preexec = read_only_child(store_dir)
    started = time.monotonic()
    proc = subprocess.run(
        runner_cmd(work, *(["--once"] if once else [])),
        env=child_env(store_dir), cwd=work, capture_output=True, text=True, timeout=120, preexec_fn=preexec,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert time.monotonic() - started < 60
    last = proc.stderr.strip().splitlines()[-1]
    assert "the store is read-only" in last and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "looks unreachable" not in proc.stderr


LEASE_S = 2.0  # once the runner polled, the other runner's lease ends this long after the disk filled
SHORTEN = """
import sys
from datetime import timedelta
from archai_aml.store.embedded import EmbeddedStore
from archai_aml.store.leases import utcnow
with EmbeddedStore(sys.argv[1]) as store:
    store.merge("exp", "id_000", {"lease_expires": utcnow() + timedelta(seconds=float(sys.argv[2]))})
"""


def in_full_disk(store_dir: Path, work: Path, cmd: list[str], *, lease_s: float = 600.0) -> list[str]:
    """``cmd`` run in a mount namespace where ``store_dir`` is a copy of it on a 4 MiB tmpfs, filled to the
    last byte once the runner has polled (its host lock file appears in ``work``): a real ENOSPC for SQLite
    and for files. The store's only row is leased by another owner for ``lease_s``, cut to :data:`LEASE_S`
    seconds just before the disk fills (a runner polling sees it; ``--once`` sleeps until the expiry it
    saw first), so the runner's first write is taking that lease, on the full disk. Skips where no mount
    namespace can be made."""
    with EmbeddedStore(store_dir) as store:
        LeaseManager(store, E).acquire("id_000", "another-runner", lease_s)
    (work / "shorten.py").write_text(SHORTEN)
    script = (
        'mount -t tmpfs -o size=4m tmpfs "$0" && cp -a "$0.src/." "$0/" || exit 9\n'
        '"$@" & pid=$!\n'
        "trap 'kill -TERM $pid; wait $pid; exit $?' TERM\n"
        f'while [ ! -e "{work}/archai-aml-quantize.lock" ] && kill -0 $pid 2>/dev/null; do sleep 0.1; done\n'
        f'{sys.executable} {work}/shorten.py "$0" {LEASE_S} || exit 9\n'
        'dd if=/dev/zero of="$0/filler" bs=4k 2>/dev/null\n'
        "wait $pid\n"
    )
    shutil.copytree(store_dir, Path(f"{store_dir}.src"))
    shutil.rmtree(store_dir)
    store_dir.mkdir()
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        probe = subprocess.run(
            [*prefix, "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', str(store_dir)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.returncode == 0:
            return [*prefix, "sh", "-c", script, str(store_dir), *cmd]
    pytest.skip(f"no mount namespace here for a full tmpfs: {probe.stderr.strip()}")


def test_a_full_disk_ends_once_after_its_bound(shared: tuple[Path, Path]) -> None:
    store_dir, work = shared
    # --once sleeps until the lease it saw at its first poll expires: that must come after the disk filled
    cmd = in_full_disk(store_dir, work, runner_cmd(work, "--once", "--once-give-up", "3"), lease_s=15.0)
    started = time.monotonic()
    proc = subprocess.run(
        cmd, env=child_env(store_dir), cwd=work, capture_output=True, text=True, timeout=120,
        start_new_session=True,
    )  # fmt: skip
    took = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 3 <= took < 60, took
    assert "the store's disk is full: retrying with backoff" in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "--once gave up after" in last and "the disk of the store is full" in last, last
    assert "looks unreachable" not in proc.stderr


def test_a_long_running_runner_waits_out_a_full_disk(shared: tuple[Path, Path]) -> None:
    store_dir, work = shared
    cmd = in_full_disk(store_dir, work, runner_cmd(work))
    proc = subprocess.Popen(
        cmd, env=child_env(store_dir), cwd=work, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not any("disk is full: retrying" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)[-3000:]
            time.sleep(0.2)
        time.sleep(3)  # a few more tries with backoff: still running
        assert proc.poll() is None, "".join(lines)[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)  # to the shell, which passes it on to the runner
        try:
            proc.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the namespace's processes
        reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 0, err[-3000:]
    assert "looks unreachable" not in err and "read-only" not in err
