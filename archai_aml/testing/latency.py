"""A loopback TCP proxy that adds a network round trip: a stand-in for the distance to a storage region.

Azurite answers on loopback in well under a millisecond of network time, so a client's parallelism there is
bounded by the CPU of the two processes; a real storage account is a round trip away, which is what parallel
transfers hide. The proxy delivers every chunk half a round trip after it arrived, in both directions (a
propagation delay: chunks that arrive together are delayed once, order is kept), in its own process so that
it takes nothing from the client's interpreter::

    with LatencyProxy(azurite.blob_port, rtt_s=0.005) as proxy:
        ...  # a client pointed at http://127.0.0.1:{proxy.port}

Run as ``python -m archai_aml.testing.latency --upstream PORT --rtt-ms MS``: it prints its port and serves
until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from types import TracebackType

__all__ = ["LatencyProxy"]


class LatencyProxy:
    """A child process forwarding ``127.0.0.1:<port>`` to ``127.0.0.1:<upstream_port>`` with ``rtt_s`` added."""

    def __init__(self, upstream_port: int, rtt_s: float) -> None:
        if rtt_s < 0:
            raise ValueError(f"rtt_s must not be negative, got {rtt_s}")
        self.upstream_port = upstream_port
        self.rtt_s = rtt_s
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> LatencyProxy:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "archai_aml.testing.latency",
                "--upstream",
                str(self.upstream_port),
                "--rtt-ms",
                str(self.rtt_s * 1000.0),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.isdigit():
            self._process.kill()
            raise RuntimeError(f"the latency proxy did not start (it printed {line!r})")
        self.port = int(line)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            arrived, data = await queue.get()
            if not data:
                break
            wait = arrived + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic(), data))
            if not data:
                break
    except ConnectionError:
        queue.put_nowait((time.monotonic(), b""))
    try:
        await sender
    except ConnectionError:
        pass


async def _serve(upstream: int, rtt_ms: float) -> None:
    delay = rtt_ms / 2000.0

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, server_w, delay), _pipe(server_r, client_w, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    sys.stdout.write(f"{server.sockets[0].getsockname()[1]}\n")  # the parent reads the port here
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a loopback TCP proxy that adds a round trip")
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--rtt-ms", type=float, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.upstream, args.rtt_ms))


if __name__ == "__main__":
    main()
