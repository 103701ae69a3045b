"""The embedded store on a full disk and on a read-only folder (issue 8, points 7 and 8), for real.

A full disk is made with ``RLIMIT_FSIZE`` in a child process (no mount needed, so it runs unprivileged in
CI): a write past the limit fails with ``EFBIG``, which the store treats like ``ENOSPC``; ``ENOSPC`` itself
comes from writing ``/dev/full``. A read-only folder is one the child cannot write: as root the child runs
as ``nobody``; otherwise the folder is made read-only with ``chmod``.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from archai_aml.errors import ReadOnlyStoreError, StoreError, StoreFullError
from archai_aml.store.embedded import EmbeddedStore
from archai_aml.store.embedded.fs import os_error

REPO = Path(__file__).resolve().parents[1]
E = "exp"


def big_onnx(path: Path, megabytes: int = 2) -> Path:
    """A valid ONNX model of about ``megabytes`` MiB (one large initializer added to its input)."""
    import numpy as np

    weights = numpy_helper.from_array(np.ones((megabytes * 262144,), dtype=np.float32), name="w")
    node = helper.make_node("Add", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [megabytes * 262144])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [megabytes * 262144])],
        [weights],
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


def child_env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MODEL_STORAGE_CONNECTION_STRING"}
    env.update({"ARCHAI_AML_STORE": str(store), "PYTHONPATH": str(REPO), "HOME": tempfile.gettempdir()})
    return env


def cli(
    args: list[str], store: Path, cwd: Path, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archai_aml.cli", *args],
        env=child_env(store),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec,
    )


def file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# ------------------------------------------------------------------------------------ full disk
def test_full_disk_on_upload_ends_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    with EmbeddedStore(store_dir) as store:
        store.upload_bytes(E, "kept", "model.onnx", b"old model")
    model = big_onnx(tmp_path / "big.onnx")
    result = cli(["upload", str(model), "--experiment", E], store_dir, tmp_path, file_size_limit(1 << 20))
    line = one_line_error(result)
    assert line.startswith("archai-aml upload: writing blob exp/big/model.onnx")
    assert "file size limit" in line and "free space" in line
    with EmbeddedStore(store_dir) as store:
        assert store.get(E, "big") is None  # the row is written only after its blob
        assert store.list_blobs(E) == ["kept/model.onnx"]
    assert list((store_dir / "tmp").iterdir()) == []  # no half-written temp file


def test_full_disk_keeps_the_old_blob_whole(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    with EmbeddedStore(store_dir) as store:
        store.upload_bytes(E, "m1", "model.onnx", b"old model")
    script = (
        "import sys\n"
        "from archai_aml.errors import StoreError\n"
        "from archai_aml.store.embedded import EmbeddedStore\n"
        f"store = EmbeddedStore({str(store_dir)!r})\n"
        "try:\n"
        "    store.upload_bytes('exp', 'm1', 'model.onnx', b'n' * (2 << 20))\n"
        "except StoreError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "    sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=child_env(store_dir),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=file_size_limit(1 << 20),
    )
    assert result.returncode == 3, result.stderr
    # a StoreError, of the kind that says the disk is full (issue 17: the runner tells it from an outage)
    assert result.stdout.startswith("StoreFullError writing blob exp/m1/model.onnx")
    with EmbeddedStore(store_dir) as store:
        assert store.download_bytes(E, "m1", "model.onnx") == b"old model"
    assert list((store_dir / "tmp").iterdir()) == []


def test_no_space_left_is_a_store_error_that_says_what_to_do() -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with pytest.raises(OSError) as info:
        with open("/dev/full", "wb") as f:
            f.write(b"x" * 4096)
    error = os_error("writing blob exp/m1/model.onnx", info.value)
    assert isinstance(error, StoreError) and type(error) is StoreFullError
    assert "No space left on device" in str(error) and "free space" in str(error)


# ------------------------------------------------------------------------------------ read-only
@pytest.fixture
def archive() -> Iterator[Path]:
    """A finished store in a folder anyone can read (outside pytest's private tmp folders)."""
    root = Path(tempfile.mkdtemp(prefix="archai-aml-ro-"))
    os.chmod(root, 0o755)
    store_dir = root / "store"
    with EmbeddedStore(store_dir) as store:
        store.create(E, "m1", {"status": "complete", "mean": 1.5})
        store.create(E, "m2", {"status": "new"})
        store.upload_bytes(E, "m1", "model.onnx", b"finished model")
    for path in [store_dir, *store_dir.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    try:
        yield store_dir
    finally:
        for path in [store_dir, *store_dir.rglob("*")]:
            os.chmod(path, (stat.S_IMODE(path.stat().st_mode)) | stat.S_IWUSR)
        shutil.rmtree(root, ignore_errors=True)


def read_only_child(store_dir: Path) -> Callable[[], None] | None:
    """Make ``store_dir`` read-only (chmod) and return how a child must start to be bound by that: as
    root, without the capabilities that override file permissions (dropped from the bounding set before
    ``exec``, so the child's root has none of them); skip when neither works here."""
    for path in [store_dir, *store_dir.rglob("*")]:
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
    preexec = None
    if os.geteuid() == 0:

        def preexec() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
                if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                    raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    probe = f"import os; print(os.access({str(store_dir)!r}, os.W_OK))"
    try:
        seen = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, preexec_fn=preexec
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        seen = "failed"
    if seen != "False":
        pytest.skip(f"cannot make a folder read-only for a child process here ({seen})")
    return preexec


def test_a_read_only_store_can_be_read_and_refuses_writes(archive: Path, tmp_path: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="archai-aml-work-"))
    os.chmod(work, 0o777)
    try:
        preexec = read_only_child(archive)
        before = sorted((p.relative_to(archive).as_posix(), p.stat().st_mtime_ns) for p in archive.rglob("*"))
        status = cli(["status", "--experiment", E], archive, work, preexec)
        assert status.returncode == 0, status.stderr
        assert "m1" in status.stdout and "complete" in status.stdout and "2 row(s)" in status.stdout
        out = work / "out"
        download = cli(["download", "m1", "--experiment", E, "-o", str(out)], archive, work, preexec)
        assert download.returncode == 0, download.stderr
        assert (out / "model.onnx").read_bytes() == b"finished model"
        model = big_onnx(work / "new.onnx", megabytes=1)
        os.chmod(model, 0o644)
        line = one_line_error(cli(["upload", str(model), "--experiment", E], archive, work, preexec))
        assert "read-only" in line and "writing does not" in line
        line = one_line_error(cli(["reset", "m1", "--experiment", E], archive, work, preexec))
        assert "read-only" in line
        after = sorted((p.relative_to(archive).as_posix(), p.stat().st_mtime_ns) for p in archive.rglob("*"))
        assert after == before  # nothing written, not even a WAL index
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_read_only_opening_in_process(archive: Path, tmp_path: Path) -> None:
    with EmbeddedStore(archive, read_only=True) as store:
        assert store.read_only
        assert [e["name"] for e in store.query(E)] == ["m1", "m2"]
        got = store.get(E, "m1")
        assert got is not None and got["mean"] == 1.5
        assert store.list_blobs(E, "m1") == ["model.onnx"]
        assert store.download(E, "m1", tmp_path / "d")[0].read_bytes() == b"finished model"
        for write in (
            lambda: store.create(E, "m3", {}),
            lambda: store.merge(E, "m1", {"mean": 2.0}),
            lambda: store.delete(E, "m2"),
            lambda: store.upload_bytes(E, "m1", "x.bin", b"x"),
            lambda: store.delete_blobs(E, "m1"),
        ):
            with pytest.raises(ReadOnlyStoreError, match="read-only"):
                write()
    with EmbeddedStore(archive) as store:
        assert [e["name"] for e in store.query(E)] == ["m1", "m2"]
        got = store.get(E, "m1")
        assert got is not None and got["mean"] == 1.5
        assert store.list_blobs(E, "m1") == ["model.onnx"]


def test_a_read_only_folder_without_a_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no embedded store"):
        EmbeddedStore(tmp_path / "nothing", read_only=True)
