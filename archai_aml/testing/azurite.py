"""Start and stop a throw-away Azurite (the Azure Storage emulator) on free loopback ports.

Used by the pytest plugin ``tests/azurite.py`` (fixture ``azurite``) and by the bench scripts, which must
start and stop everything they need themselves::

    from archai_aml.testing.azurite import run_azurite

    with run_azurite() as azurite:
        store = open_store(azurite.store_config(table_name="demo"))

The binary is found, in order, from the ``binary`` argument, the ``AZURITE_BIN`` environment variable,
``.azurite/node_modules/.bin/azurite`` under the repository (what ``make azurite`` installs), then
``azurite`` on ``PATH``. Azurite keeps everything in memory (or in a folder, so that a test can stop and
restart it under a running client: :meth:`Azurite.outage`) and is killed (its whole process group) on exit.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from archai_aml.config import StoreConfig
from archai_aml.errors import ArchaiAmlError
from archai_aml.store.connection import DEV_ACCOUNT, DEV_ACCOUNT_KEY

__all__ = [
    "DEV_ACCOUNT_KEY",
    "DEV_ACCOUNT_NAME",
    "Azurite",
    "AzuriteError",
    "find_azurite",
    "ports_free",
    "run_azurite",
]

log = logging.getLogger(__name__)

#: The emulator's well-known account (public, documented by Microsoft; not a secret of anyone).
DEV_ACCOUNT_NAME = DEV_ACCOUNT

_INSTALL_HINT = (
    "install it with `make azurite` (npm install --prefix .azurite azurite@3.37.0) or set AZURITE_BIN"
)


class AzuriteError(ArchaiAmlError):
    """Azurite could not be found or did not start."""


def _repo_roots() -> list[Path]:
    roots: list[Path] = []
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            if (folder / "pyproject.toml").exists() or (folder / ".azurite").exists():
                roots.append(folder)
                break
    return roots


def find_azurite(binary: str | os.PathLike[str] | None = None) -> Path:
    """The Azurite executable, or :class:`AzuriteError` saying how to install it."""
    candidates: list[tuple[str, Path]] = []
    if binary:
        candidates.append(("argument", Path(binary)))
    if os.environ.get("AZURITE_BIN"):
        candidates.append(("AZURITE_BIN", Path(os.environ["AZURITE_BIN"])))
    for root in _repo_roots():
        candidates.append(("repository", root / ".azurite" / "node_modules" / ".bin" / "azurite"))
    on_path = shutil.which("azurite")
    if on_path:
        candidates.append(("PATH", Path(on_path)))
    for origin, path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
        if origin in ("argument", "AZURITE_BIN"):
            raise AzuriteError(
                f"Azurite binary {path} (from {origin}) is not an executable file: {_INSTALL_HINT}"
            )
    raise AzuriteError(f"Azurite was not found (AZURITE_BIN, .azurite/, PATH): {_INSTALL_HINT}")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def ports_free(*ports: int) -> bool:
    """Whether every port can be bound on the loopback interface now."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Azurite:
    """A running Azurite: its endpoints, the emulator account, and :meth:`store_config`.

    Started with a ``location`` (see :func:`run_azurite`), it can be stopped and started again on the same
    ports with its data kept (:meth:`stop`, :meth:`start`, :meth:`outage`): a storage outage for tests.
    """

    blob_port: int
    table_port: int
    queue_port: int
    process: subprocess.Popen[bytes] = field(repr=False)
    account_name: str = DEV_ACCOUNT_NAME
    location: Path | None = None
    _exe: Path | None = field(default=None, repr=False)
    _workdir: Path | None = field(default=None, repr=False)
    _start_timeout: float = field(default=60.0, repr=False)
    _starts: int = field(default=1, repr=False)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the emulator (SIGTERM to its process group: it saves its data and closes its ports)."""
        _stop(self.process)
        log.info("Azurite stopped (ports %d/%d now refuse connections)", self.blob_port, self.table_port)

    def start(self) -> None:
        """Start the emulator again on the same ports with the data it had (needs a ``location``)."""
        if self.location is None or self._exe is None or self._workdir is None:
            raise AzuriteError(
                "this Azurite keeps its data in memory: start it with a location to restart it"
            )
        if self.running:
            return
        # (no bind test: the old process's closed connections linger in TIME_WAIT, which Node's listening
        # sockets ignore, as SO_REUSEADDR does)
        self._starts += 1
        ports = (self.blob_port, self.queue_port, self.table_port)
        process, output = _launch(
            self._exe, ports, self._workdir, self.location, self._start_timeout, self._starts
        )
        if process is None:
            raise AzuriteError(f"Azurite did not start again on the same ports; its last output:\n{output}")
        self.process = process
        log.info("Azurite started again on blob port %d, table port %d", self.blob_port, self.table_port)

    @contextmanager
    def outage(self, seconds: float) -> Iterator[None]:
        """Stop the emulator for ``seconds`` in a background thread while the ``with`` block runs; the
        block's end waits for the emulator to be back."""
        import threading

        failure: list[BaseException] = []

        def cycle() -> None:
            try:
                self.stop()
                time.sleep(seconds)
                self.start()
            except BaseException as exc:  # reported when the block ends
                failure.append(exc)

        thread = threading.Thread(target=cycle, name="azurite-outage", daemon=True)
        thread.start()
        try:
            yield
        finally:
            thread.join()
        if failure:
            raise failure[0]

    @property
    def blob_url(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{self.account_name}"

    @property
    def table_url(self) -> str:
        return f"http://127.0.0.1:{self.table_port}/{self.account_name}"

    @property
    def account_key(self) -> str:
        return DEV_ACCOUNT_KEY

    @property
    def connection_string(self) -> str:
        """A full connection string with explicit endpoints (the emulator's well-known account and key)."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};AccountKey={DEV_ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_url};TableEndpoint={self.table_url};"
        )

    def store_config(self, table_name: str = "status", container_name: str = "models") -> StoreConfig:
        """An azure :class:`StoreConfig` on this Azurite (connection-string form)."""
        config: StoreConfig = StoreConfig.model_validate(
            {
                "backend": "azure",
                "connection_string": SecretStr(self.connection_string),
                "table_name": table_name,
                "container_name": container_name,
            }
        )
        return config


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


def _launch(
    exe: Path, ports: tuple[int, int, int], workdir: Path, location: Path | None, timeout: float, attempt: int
) -> tuple[subprocess.Popen[bytes] | None, str]:
    """Start one Azurite on ``ports`` (blob, queue, table); (process, "") once both services accept
    connections, else (None, its last output)."""
    blob_port, queue_port, table_port = ports
    storage = ["--location", str(location)] if location is not None else ["--inMemoryPersistence"]
    log_path = workdir / f"azurite-{attempt}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [
                str(exe),
                *storage,
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
                "--disableTelemetry",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(blob_port),
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                str(queue_port),
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(table_port),
            ],
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if _accepts(blob_port) and _accepts(table_port):
            return process, ""
        time.sleep(0.1)
    _stop(process)
    return None, log_path.read_text(errors="replace")[-2000:]


@contextmanager
def run_azurite(
    binary: str | os.PathLike[str] | None = None,
    *,
    ports: tuple[int, int, int] | None = None,
    start_timeout: float = 60.0,
    attempts: int = 3,
    location: str | os.PathLike[str] | None = None,
) -> Iterator[Azurite]:
    """Run Azurite (blob, queue and table services) for the ``with`` block.

    ``ports`` (blob, queue, table) fixes the ports, e.g. ``(10000, 10001, 10002)`` for
    ``UseDevelopmentStorage=true``; by default free loopback ports are picked. Data is kept in memory, or
    in the folder ``location`` (created if needed), which lets :meth:`Azurite.stop` / :meth:`Azurite.start`
    restart the emulator with its data.
    """
    exe = find_azurite(binary)
    if ports is not None:
        attempts = 1
    workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
    folder = Path(location) if location is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    last_output = ""
    try:
        for attempt in range(1, attempts + 1):
            chosen = ports or tuple(_free_ports(3))
            process, last_output = _launch(exe, chosen, workdir, folder, start_timeout, attempt)  # type: ignore[arg-type]
            if process is not None:
                blob_port, queue_port, table_port = chosen
                log.info("Azurite started: blob port %d, table port %d", blob_port, table_port)
                azurite = Azurite(
                    blob_port, table_port, queue_port, process,
                    location=folder, _exe=exe, _workdir=workdir, _start_timeout=start_timeout,
                    _starts=attempt,
                )  # fmt: skip
                try:
                    yield azurite
                finally:
                    _stop(azurite.process)
                    log.info("Azurite stopped")
                return
            log.warning("Azurite did not start (attempt %d of %d)", attempt, attempts)
        raise AzuriteError(
            f"Azurite ({exe}) did not accept connections within {start_timeout:.0f} s after {attempts} "
            f"attempts; its last output:\n{last_output}"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
