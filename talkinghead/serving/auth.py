"""Who may talk to the server, checked on every request before any route runs (a plain ASGI middleware).

- Without a token the server is for this computer only: requests must come from a loopback address and
  name a local host (a web page cannot reach it through DNS rebinding).
- With a token every API and page request needs it: `Authorization: Bearer TOKEN`, or the session cookie
  the login form sets (HttpOnly, SameSite=Strict; it holds a keyed hash, not the token). The token never
  travels in a URL. Only the login form itself is open.
- Form posts and deletes from another web site (an Origin that is not this server) are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "talkinghead_session"
OPEN_PATHS = ("/login", "/static/style.css")  # the login form and its looks
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"talkinghead-session-v1", hashlib.sha256).hexdigest()


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _hostname(host_header: str) -> str:
    return (urlsplit("//" + host_header).hostname or "").lower()


def token_ok(headers: Headers, token: str) -> bool:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        return True
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and hmac.compare_digest(value.encode(), session_value(token).encode()):
            return True
    return False


class Guard:
    """ASGI middleware enforcing the rules in the module docstring, and adding security headers."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._check(scope, headers)
        if refusal is not None:
            await self._answer(send, *refusal)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _check(self, scope: Scope, headers: Headers) -> tuple[int, str, str, list[tuple[bytes, bytes]]] | None:
        path, method = scope["path"], scope["method"]
        host = headers.get("host", "")
        if self.token is None:
            client = scope.get("client")
            if not is_loopback(client[0] if client else None):
                return (
                    403,
                    "local_only",
                    ("This server only answers this computer; start it with --token to serve others."),
                    [],
                )
            name = _hostname(host)
            if name not in LOCAL_NAMES and not name.endswith(".localhost"):
                return 403, "bad_host", "This server only answers requests addressed to localhost.", []
        elif path not in OPEN_PATHS and not token_ok(headers, self.token):
            if method == "GET" and path == "/":
                return 303, "login", "Log in first.", [(b"location", b"/login")]
            return (
                401,
                "unauthorized",
                "This server needs its token: send 'Authorization: Bearer TOKEN'.",
                [(b"www-authenticate", b"Bearer")],
            )
        origin = headers.get("origin")
        cross = origin and origin != "null" and urlsplit(origin).netloc.lower() != host.lower()
        if method not in ("GET", "HEAD", "OPTIONS") and cross:
            return 403, "cross_site", "Requests from other web sites are refused.", []
        return None

    @staticmethod
    async def _answer(send: Send, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]]) -> None:
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": head + extra + SECURITY_HEADERS})
        await send({"type": "http.response.body", "body": body})
