"""Executor data sync: serial vs parallel upload of 1,000 small files to Azurite.

Starts its own Azurite (``archai_aml.testing.azurite.run_azurite``; ``make azurite`` installs it), writes
``--files`` small files (``--size`` bytes each) into a temporary ``data_blobs/working/bench`` folder and
syncs it with :func:`archai_aml.executor.sync.sync_dataset` to a fresh blob container twice: once with
``concurrency=1`` (serial) and once with ``--concurrency`` threads. Then a third sync of the parallel
container times the "nothing changed" case (every file hashed, nothing sent), and a fourth sends the folder
zipped (one blob). The table also shows the CPU seconds of this process and of Azurite (a single-threaded
Node process: its CPU time per request bounds how much threads can gain against it).

On loopback the network adds next to nothing, so there the speedup is bounded by CPU: with c client and s
Azurite CPU seconds per file, serial takes about c + s and parallel at least max(c, s, (c + s) / cores), at
most 2x on two cores whatever the code does. A real storage account is a round trip away, which is what
parallel transfers hide: the serial and parallel syncs are therefore run a second time through
:class:`~archai_aml.testing.latency.LatencyProxy`, which adds ``--rtt-ms`` (default 5 ms, an assumed
in-region round trip, not a measured one) to every blob request. Those figures are reported apart, under
``*_at_rtt`` keys; ``serial_s``, ``parallel_s`` and ``parallel_speedup`` are the loopback ones.

    python bench/blob_sync.py [--files 1000] [--size 512] [--concurrency 16] [--rtt-ms 5]

The last line printed is one JSON object: ``serial_s``, ``parallel_s``, ``parallel_speedup`` (plus
``unchanged_s``, the ``*_at_rtt`` figures and the settings).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from archai_aml.config import StoreConfig
from archai_aml.executor.sync import sync_dataset
from archai_aml.store import open_store
from archai_aml.testing.azurite import Azurite, run_azurite
from archai_aml.testing.latency import LatencyProxy


def RUNS(concurrency: int) -> list[tuple[str, str, int]]:  # noqa: N802 - a table of constants
    return [
        ("serial", "syncserial", 1),
        ("parallel", "syncparallel", concurrency),
        ("unchanged", "syncparallel", concurrency),
        ("zipped", "synczipped", 1),
        ("serial+rtt", "rttserial", 1),
        ("parallel+rtt", "rttparallel", concurrency),
    ]


def through(azurite: Azurite, proxy_port: int, container: str) -> StoreConfig:
    """The Azurite store config with its blob endpoint on the proxy (tables stay direct)."""
    proxied = f"http://127.0.0.1:{proxy_port}/{azurite.account_name}"
    text = azurite.connection_string.replace(azurite.blob_url, proxied)
    return StoreConfig(backend="azure", connection_string=SecretStr(text), container_name=container)


def write_files(root: Path, count: int, size: int) -> Path:
    folder = root / "data_blobs" / "working" / "bench"
    for i in range(count):
        sub = folder / f"part{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}.bin").write_bytes(os.urandom(size))
    return root / "data_blobs"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc); 0 where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rtt-ms", type=float, default=5.0, help="round trip the proxy adds (milliseconds)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    times: dict[str, float] = {}
    sent: dict[str, int] = {}
    cpu: dict[str, tuple[float, float]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_azurite() as azurite,
        LatencyProxy(azurite.blob_port, args.rtt_ms / 1000.0) as proxy,
    ):
        data = write_files(Path(tmp), args.files, args.size)
        for label, container, concurrency in RUNS(args.concurrency):
            config = (
                through(azurite, proxy.port, container)
                if label.endswith("+rtt")
                else azurite.store_config(container_name=container)
            )
            with open_store(config) as store:
                server0, client0 = cpu_seconds(azurite.process.pid), time.process_time()
                start = time.perf_counter()
                result = sync_dataset(
                    store,
                    data,
                    "working/bench",
                    concurrency=concurrency,
                    progress=False,
                    zipped=label == "zipped",
                )
                times[label] = time.perf_counter() - start
                cpu[label] = (time.process_time() - client0, cpu_seconds(azurite.process.pid) - server0)
                sent[label] = len(result.uploaded)
    speedup = times["serial"] / times["parallel"]
    speedup_rtt = times["serial+rtt"] / times["parallel+rtt"]
    print(f"blob_sync: {args.files} files of {args.size} B to Azurite, sync_dataset; {os.cpu_count()} CPUs")
    print()
    header = (
        f"{'run':<13} {'threads':>8} {'blobs sent':>11} {'seconds':>9} {'files/s':>9} "
        f"{'client cpu s':>13} {'azurite cpu s':>14}"
    )
    print(header)
    print("-" * len(header))
    for label, _, threads in RUNS(args.concurrency):
        rate = args.files / times[label]
        print(
            f"{label:<13} {threads:>8} {sent[label]:>11} {times[label]:>9.2f} {rate:>9.0f} "
            f"{cpu[label][0]:>13.2f} {cpu[label][1]:>14.2f}"
        )
    print()
    print(f"parallel speedup on loopback: {speedup:.2f}x (target >= 3x)")
    print(f"parallel speedup with {args.rtt_ms:g} ms added per round trip (LatencyProxy): {speedup_rtt:.2f}x")
    summary = {
        "serial_s": round(times["serial"], 3),
        "parallel_s": round(times["parallel"], 3),
        "parallel_speedup": round(speedup, 2),
        "unchanged_s": round(times["unchanged"], 3),
        "zipped_s": round(times["zipped"], 3),
        "azurite_cpu_s_parallel": round(cpu["parallel"][1], 2),
        "rtt_ms": args.rtt_ms,
        "serial_s_at_rtt": round(times["serial+rtt"], 3),
        "parallel_s_at_rtt": round(times["parallel+rtt"], 3),
        "parallel_speedup_at_rtt": round(speedup_rtt, 2),
        "files": args.files,
        "file_bytes": args.size,
        "concurrency": args.concurrency,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
