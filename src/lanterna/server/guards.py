"""ASGI middleware that guards every route before it runs.

``RequestGuard`` refuses a request whose path or query string holds a NUL byte (raw or
``%00``) with a 400, before any route, so no parameter carrying one reaches a database
driver (PostgreSQL refuses NUL in text; SQLite would silently store it). When the public
URL is https it adds ``Strict-Transport-Security`` to every response. ``PublicApiCors``
answers CORS on the public API only.

``SlowBodyGuard`` answers 408 when a client stops sending its request body for longer
than ``body_timeout_ms`` (a stalled or trickling upload cannot hold the request open).

``trust_proxies`` believes ``X-Forwarded-For``/``-Proto`` only from the proxies named in
the ``forwarded_allow_ips`` setting (uvicorn's own proxy handling is switched off: it
trusts any local peer), so a client cannot pick its own address for the login limits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import PlainTextResponse, Response

from ..errors import DomainError
from .errors import error_response

Scope = dict[str, Any]
Receive = Any
Send = Any
App = Any

HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
NUL_MESSAGE = "A path or query parameter contains a NUL byte (%00), which is not allowed."


def has_nul(scope: Scope) -> bool:
    """Whether the request's path or query string holds a NUL byte, raw or %-encoded
    (``%00`` is its only encoding; the decoded path is checked too)."""
    if "\x00" in scope.get("path", ""):
        return True
    for raw in (scope.get("raw_path") or b"", scope.get("query_string") or b""):
        if b"\x00" in raw or b"%00" in raw:
            return True
    return False


def bad_request(scope: Scope, message: str) -> Response:
    """A 400 with ``message``: the API's JSON error body, or plain text for the dashboard."""
    if scope["path"].startswith("/api"):
        return error_response(400, message)
    return PlainTextResponse(message, status_code=400)


class RequestGuard:
    """Refuse NUL bytes in the path or query string with a 400 before any route runs;
    with ``hsts``, add Strict-Transport-Security to every response."""

    def __init__(self, app: App, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.hsts:
            send = _with_header(send, HSTS)
        if has_nul(scope):
            await bad_request(scope, NUL_MESSAGE)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyTimeout(DomainError):
    """408: the client stopped sending its request body."""

    status = 408
    error = "RequestTimeoutError"


class SlowBodyGuard:
    """Give each part of a request body at most ``seconds`` to arrive; a request whose
    client is slower is answered 408 (the route reading the body gets
    :class:`BodyTimeout`). Once the body is complete, ``receive`` is passed through
    untouched (it then waits for the client to disconnect, which may take any time)."""

    def __init__(self, app: App, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        body_done = False

        async def receiving() -> dict[str, Any]:
            nonlocal body_done
            if body_done:
                message: dict[str, Any] = await receive()
                return message
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except asyncio.TimeoutError:
                raise BodyTimeout(
                    f"The request body did not arrive within {self.seconds:g} s"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, receiving, send)


def _with_header(send: Send, header: tuple[bytes, bytes]) -> Send:
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), header]
        await send(message)

    return sending


class PublicApiCors:
    """CORS for the public API only (``/api/public/...``, OTLP's ``/v1/...``): any
    origin, never credentials (browser SDKs authenticate with a header, not cookies).
    Dashboard routes, which do use cookies, get no CORS headers, so other sites'
    scripts cannot read them."""

    def __init__(self, app: App) -> None:
        from starlette.middleware.cors import CORSMiddleware

        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["*"],
            allow_headers=["*"],
            allow_credentials=False,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("/api/public/", "/v1/")):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def trust_proxies(app: Any, forwarded_allow_ips: str) -> None:
    """Put uvicorn's proxy-header handling in front of ``app`` (a FastAPI app) for the
    proxies named in ``forwarded_allow_ips``; nothing when it is empty."""
    hosts = [h.strip() for h in forwarded_allow_ips.split(",") if h.strip()]
    if hosts:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=hosts)
