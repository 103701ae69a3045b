"""A loopback HTTP proxy that loses answers on purpose: the request reaches the service, the reply never
comes back (the client sees its connection reset). For tests of what a client does when it cannot know
whether its write landed.

::

    with FaultProxy(azurite.table_port) as proxy:
        proxy.drop_answers(1, lambda method, headers: method == "PATCH" and "if-match" in headers)
        ...  # a client pointed at http://127.0.0.1:{proxy.port}

Each client connection carries one request (the proxy asks the service to close after answering), so
requests are seen one by one; ``proxy.requests`` lists (method, path, headers) of every request forwarded.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType

__all__ = ["FaultProxy"]

Rule = Callable[[str, dict[str, str]], bool]


def _read_head(conn: socket.socket) -> tuple[bytes, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


class FaultProxy:
    """Forwards loopback connections to ``127.0.0.1:upstream_port``, dropping chosen answers."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port: int = self._server.getsockname()[1]
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.dropped: list[tuple[str, str, dict[str, str]]] = []
        self._drop = 0
        self._rule: Rule | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)

    def drop_answers(self, count: int, rule: Rule) -> None:
        """Lose the answers of the next ``count`` requests for which ``rule(method, headers)`` holds
        (header names in lower case)."""
        with self._lock:
            self._drop, self._rule = count, rule

    def _take_drop(self, method: str, headers: dict[str, str]) -> bool:
        with self._lock:
            if self._drop > 0 and self._rule is not None and self._rule(method, headers):
                self._drop -= 1
                return True
            return False

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._server.close()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            got = _read_head(conn)
            if got is None:
                return
            head, rest = got
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers: dict[str, str] = {}
            kept = [lines[0]]
            for line in lines[1:]:
                key, _, value = line.partition(":")
                if key.strip().lower() == "connection":
                    continue
                headers[key.strip().lower()] = value.strip()
                kept.append(line)
            kept.append("Connection: close")
            length = int(headers.get("content-length", "0") or 0)
            body = rest
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            drop = self._take_drop(method, headers)
            with self._lock:
                self.requests.append((method, path, headers))
                if drop:
                    self.dropped.append((method, path, headers))
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
            upstream.sendall("\r\n".join(kept).encode("latin-1") + b"\r\n\r\n" + body)
            first = upstream.recv(65536)  # the service has answered: the request was done
            if drop:
                # reset the client's connection (RST, not FIN): its answer is lost
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            while first:
                conn.sendall(first)
                first = upstream.recv(65536)
        except OSError:
            return
        finally:
            if upstream is not None:
                upstream.close()
            conn.close()
