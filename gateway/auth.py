"""Token auth: Keptn's `x-token` header, compared in constant time. The token is never logged."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from .errors import ApiError

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
