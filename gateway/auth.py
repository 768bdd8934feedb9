"""Token auth: Keptn's `x-token` header, compared in constant time. The token is never logged.

Without a token (local mode, loopback only) every request must name a loopback host (`Host:
127.0.0.1:8080`, `localhost`): a web page elsewhere could otherwise reach the API through a DNS name
that resolves to 127.0.0.1 (DNS rebinding), since the browser sends no token that could be missing.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ApiError
from .settings import is_loopback

TOKEN_HEADER = "x-token"

_scheme = APIKeyHeader(name=TOKEN_HEADER, auto_error=False, description="the API token (TIDEGATE_API_TOKEN)")


def token_matches(expected: str, given: str | None) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


async def require_token(request: Request, token: Annotated[str | None, Depends(_scheme)]) -> None:
    expected: str | None = request.app.state.api_token
    if expected is None:
        return  # local mode, allowed only on loopback (checked when the settings were read)
    if token is None:
        raise ApiError(401, f"missing {TOKEN_HEADER} header: send the API token (tidegate auth stores it for the CLI)")
    if not token_matches(expected, token):
        raise ApiError(401, f"the {TOKEN_HEADER} header does not match the API token of this gateway")


def loopback_host(host_header: str | None) -> bool:
    """The Host header names a loopback address (`127.0.0.1:8080`, `localhost`, `[::1]:8080`)."""
    if not host_header:
        return False
    try:
        host = urlsplit(f"//{host_header}").hostname or ""
    except ValueError:
        return False
    return is_loopback(host)


class LoopbackHostOnly:
    """ASGI middleware for local mode: a request whose Host is not a loopback name gets 403."""

    MESSAGE = ("this gateway runs without an API token and answers only requests addressed to a loopback "
               "host such as 127.0.0.1 or localhost; use that address, or give the gateway a token")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"host"), None)
            if not loopback_host(host):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = json.dumps({"code": 403, "message": self.MESSAGE}).encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
