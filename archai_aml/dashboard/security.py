"""Who may talk to the dashboard, and what every answer carries.

- :func:`needs_token`: the dashboard binds ``127.0.0.1``; any other ``--host`` (another loopback address
  such as ``127.0.0.2`` included, ``0.0.0.0`` and every LAN address) needs a token. Only ``127.0.0.1``,
  ``localhost`` and ``::1`` are served without one.
- :class:`Guard` (ASGI middleware), on every request: only ``GET`` and ``HEAD`` (the dashboard never
  writes); with a token, the token (``Authorization: Bearer``, the cookie it sets, or ``?token=`` once, which
  is answered by a redirect that drops it from the address bar and the history); without one, a ``Host``
  header naming the loopback address only (a page elsewhere cannot reach it by DNS rebinding). Every answer
  carries a Content-Security-Policy that allows the dashboard's own scripts and styles only (no inline
  script, no other origin), ``nosniff``, no referrer, and no framing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from archai_aml.errors import ConfigError

__all__ = ["COOKIE", "LOOPBACK", "Guard", "check_token", "needs_token", "new_token"]

#: Hosts served without a token.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
COOKIE = "archai_aml_dashboard"
MIN_TOKEN_CHARS = 16
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def needs_token(host: str) -> bool:
    """Whether serving on ``host`` needs a token (anything but 127.0.0.1, localhost and ::1)."""
    return host.strip().strip("[]").lower() not in LOOPBACK


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check_token(host: str, token: str | None) -> str | None:
    """The token to require on ``host`` (None on loopback without one); :class:`ConfigError` saying why
    when ``host`` needs one and none was given, or when it is too short to guess-proof."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"the dashboard token must have at least {MIN_TOKEN_CHARS} characters")
    if token is None and needs_token(host):
        raise ConfigError(
            f"--host {host} makes the dashboard reachable from other processes or machines, so it needs a "
            "token: pass --generate-token (a new one is printed once) or set ARCHAI_AML_DASHBOARD_TOKEN; "
            "not starting"
        )
    return token


def _host_of(header: str) -> str:
    """The host of a ``Host`` header without its port (``[::1]:8080`` -> ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: the rules of the module docstring around ``app``."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + HEADERS
            await send(message)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(
                secured, 405, "the dashboard is read-only: GET and HEAD only", [(b"allow", b"GET, HEAD")]
            )
            return
        if self.token is None:
            if _host_of(headers.get("host", "")).lower() not in LOOPBACK:
                await _plain(secured, 421, "this dashboard answers to a loopback Host only")
                return
            await self.app(scope, receive, secured)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = dict(query).get("token")
        if given is not None and self._valid(given):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope.get("path", "/") + (f"?{rest}" if rest else "")
            cookie = f"{COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/"
            await _plain(
                secured, 303, "", [(b"location", location.encode()), (b"set-cookie", cookie.encode())]
            )
            return
        if self._valid(_bearer(headers.get("authorization", ""))) or self._valid(_cookie(headers)):
            await self.app(scope, receive, secured)
            return
        await _plain(secured, 401, "this dashboard needs its token: open the address printed when it started")

    def _valid(self, given: str | None) -> bool:
        return bool(given) and self.token is not None and hmac.compare_digest(given or "", self.token)


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _cookie(headers: dict[str, str]) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header: no token
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


async def _plain(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = (text + "\n").encode() if text else b""
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})
