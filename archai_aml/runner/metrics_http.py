"""A small GET-only HTTP/1.1 server whose cost a client cannot grow: for the queue-metrics endpoint.

One selector thread accepts connections (listen backlog ``backlog``, 1024 by default; the kernel caps it at
``net.core.somaxconn``) and reads each request without blocking. A connection must deliver its request head
(up to ``\\r\\n\\r\\n``, at most 8 KiB) within ``request_timeout_s`` of being accepted, or it is closed: an
idle or trickling client holds a file descriptor for that long and never a thread. Complete requests go to
a pool of at most ``max_workers`` threads, which answer and close (``Connection: close``; a write that does
not progress for ``write_timeout_s`` is dropped). At most ``max_connections`` are open at once; past it the
oldest one still sending its request is closed first, so a crowd of idle connections cannot lock out a
scraper. Threads: the selector thread plus at most ``max_workers``, whatever the clients do.

Why not :mod:`http.server` or uvicorn: ``ThreadingHTTPServer`` spends a thread per connection for as long
as the client keeps it open, with a listen backlog of 5; uvicorn (asyncio) does not spend threads, but it has
no deadline for receiving a request (its ``timeout_keep_alive`` is reset by every byte received; a request
start timeout is still an open item of encode/uvicorn#157, and xorbitsai/inference#5213 had to wrap its
protocol class to add one) and it would add a dependency to the runner's image for three GET paths.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus

__all__ = ["BoundedHttpServer", "Response"]

log = logging.getLogger(__name__)

_MAX_HEAD = 8192


@dataclass(frozen=True)
class Response:
    """What a handler answers: status code, body, content type."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


Handler = Callable[[str], Response]


@dataclass
class _Pending:
    sock: socket.socket
    deadline: float
    data: bytearray = field(default_factory=bytearray)


class BoundedHttpServer:
    """Serves ``handler(path) -> Response`` for GET and HEAD on ``host:port`` (port 0: a free one)."""

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        backlog: int = 1024,
        max_connections: int = 512,
        max_workers: int = 8,
        request_timeout_s: float = 5.0,
        write_timeout_s: float = 5.0,
    ) -> None:
        self.handler = handler
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        self.write_timeout_s = write_timeout_s
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        self._listener = socket.socket(family, kind, proto)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(address)
        self._listener.listen(backlog)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._pending: dict[int, _Pending] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="metrics-http")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics-accept", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> BoundedHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:  # pragma: no cover - already closed
            pass
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    @property
    def open_connections(self) -> int:
        """Connections still sending their request (for tests and logs)."""
        return len(self._pending)

    # ------------------------------------------------------------------------------- selector thread
    def _loop(self) -> None:
        sel = self._selector
        sel.register(self._listener, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                soonest = min((p.deadline for p in self._pending.values()), default=now + 1.0)
                for key, _ in sel.select(timeout=max(0.01, min(1.0, soonest - now))):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "read":
                        self._read(key.fileobj)  # type: ignore[arg-type]
                self._expire(time.monotonic())
        finally:
            for pending in list(self._pending.values()):
                self._drop(pending)
            sel.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: the backlog holds the rest meanwhile
                log.warning("metrics server: accept failed: %s", exc)
                return
            if len(self._pending) >= self.max_connections:
                self._drop(min(self._pending.values(), key=lambda p: p.deadline))
            sock.setblocking(False)
            pending = _Pending(sock, time.monotonic() + self.request_timeout_s)
            self._pending[sock.fileno()] = pending
            self._selector.register(sock, selectors.EVENT_READ, "read")

    def _read(self, sock: socket.socket) -> None:
        pending = self._pending.get(sock.fileno())
        if pending is None:  # pragma: no cover - dropped meanwhile
            return
        try:
            chunk = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(pending)
            return
        if not chunk:
            self._drop(pending)
            return
        pending.data += chunk
        if b"\r\n\r\n" in pending.data or b"\n\n" in pending.data:
            self._selector.unregister(sock)
            del self._pending[sock.fileno()]
            self._pool.submit(self._answer, sock, bytes(pending.data))
        elif len(pending.data) > _MAX_HEAD:
            self._selector.unregister(sock)
            del self._pending[sock.fileno()]
            self._pool.submit(self._reply, sock, Response(431, "request head too large\n"), False)

    def _expire(self, now: float) -> None:
        for pending in [p for p in self._pending.values() if p.deadline <= now]:
            self._drop(pending)

    def _drop(self, pending: _Pending) -> None:
        self._pending.pop(pending.sock.fileno(), None)
        try:
            self._selector.unregister(pending.sock)
        except (KeyError, ValueError):  # pragma: no cover
            pass
        pending.sock.close()

    # --------------------------------------------------------------------------------- worker threads
    def _answer(self, sock: socket.socket, head: bytes) -> None:
        line = head.split(b"\n", 1)[0].decode("latin-1").strip()
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._reply(sock, Response(400, "bad request line\n"), False)
            return
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            self._reply(sock, Response(405, "only GET and HEAD\n"), False)
            return
        try:
            response = self.handler(target.split("?", 1)[0])
        except Exception:  # a handler bug must not kill a worker thread
            log.exception("metrics server: handler failed for %s", target)
            response = Response(500, "internal error\n")
        self._reply(sock, response, method == "HEAD")

    def _reply(self, sock: socket.socket, response: Response, head_only: bool) -> None:
        body = response.body.encode("utf-8")
        phrase = HTTPStatus(response.status).phrase
        head = (
            f"HTTP/1.1 {response.status} {phrase}\r\nContent-Type: {response.content_type}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        try:
            sock.setblocking(True)
            sock.settimeout(self.write_timeout_s)
            sock.sendall(head if head_only else head + body)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            sock.close()
