"""The server's two guards, as ASGI middleware: a bearer token and a cap on request bodies.

``BearerToken``: with a token configured, every request but the open paths (``/healthz``, the
page and its static files, which carry no data) needs ``Authorization: Bearer <token>``. A
browser cannot put that header on ``<img>`` or ``EventSource`` requests, so the page keeps the
token in the cookie ``itemrec_token`` (``SameSite=Strict``: no other site can send it), which
counts the same. Comparison takes constant time.

``UploadLimit``: a body larger than ``max_bytes`` gets 413 before the application reads any of
it (by ``Content-Length``, or by counting a chunked body). The rest of the body is drained,
up to a bound, so that the client reads the 413 instead of a reset connection.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import CookieError, SimpleCookie

TOKEN_COOKIE = "itemrec_token"
OPEN_PATHS = ("/", "/healthz", "/favicon.ico")
OPEN_PREFIXES = ("/static/",)
DRAIN_FACTOR = 4  # a body beyond 4x the cap is not drained: the connection is closed


async def send_json(send, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def presented_token(scope) -> str | None:
    """The token of the ``Authorization: Bearer`` header, else of the page's cookie."""
    authorization = _header(scope, b"authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    try:
        cookie = SimpleCookie(_header(scope, b"cookie") or "")
    except CookieError:
        return None
    return cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None


class BearerToken:
    """Refuse requests without the token with 401 (see the module docstring)."""

    def __init__(self, app, token: str):
        self.app, self._token = app, token.encode()

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        open_path = path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
        if scope["type"] != "http" or open_path:
            return await self.app(scope, receive, send)
        token = presented_token(scope)
        if token is None or not hmac.compare_digest(token.encode(), self._token):
            error = "missing token" if token is None else "wrong token"
            body = {"error": f"{error}: send 'Authorization: Bearer <token>'"}
            return await send_json(send, 401, body, [(b"www-authenticate", b"Bearer")])
        return await self.app(scope, receive, send)


class UploadLimit:
    """Answer 413 to a request body larger than ``max_bytes`` (see the module docstring)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit():
            if int(length) > self.max_bytes:
                return await self._refuse(receive, send, already=0)
            return await self.app(scope, receive, send)
        if _header(scope, b"transfer-encoding") is None:
            return await self.app(scope, receive, send)
        # A chunked body: read it up to the cap, then hand it on.
        messages, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                if not message.get("more_body"):
                    return await self._too_large(send)
                return await self._refuse(receive, send, already=size)
            messages.append(message)
            if not message.get("more_body"):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, receive, send, already: int) -> None:
        drained = already
        while drained <= DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await self._too_large(send)

    async def _too_large(self, send) -> None:
        megabytes = self.max_bytes / 2**20
        body = {"error": f"request body larger than the limit of {megabytes:g} MiB"}
        await send_json(send, 413, body, [(b"connection", b"close")])
