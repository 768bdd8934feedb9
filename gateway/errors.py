"""API errors: Keptn's error body `{"code", "message"}`, plus `problems` naming each field and rule.

Handlers turn FastAPI's request validation errors, unknown routes and methods, and unexpected
failures into the same body, so a client sees one shape for every refusal (Keptn's CLI prints the
`message`), and the message says what is wrong, where, and what to send instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from tidegate.schemas.errors import TidegateError

from .rules import Problem

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """What every refused request gets back."""

    code: int
    message: str
    problems: list[dict[str, str]] | None = None


class ApiError(TidegateError):
    def __init__(self, status: int, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.status, "message": self.message}
        if self.problems:
            out["problems"] = [{"field": p.field, "message": p.message} for p in self.problems]
        return out


def invalid(problems: Sequence[Problem], what: str = "the request") -> ApiError:
    listed = "; ".join(str(p) for p in problems)
    return ApiError(400, f"{what} is invalid: {listed}", problems)


def not_found(what: str, name: str, hint: str = "") -> ApiError:
    return ApiError(404, f"{what} {name!r} does not exist" + (f"; {hint}" if hint else ""))


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def _location(loc: Sequence[str | int]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        return f"{where}:" + ".".join(rest) if rest else where
    return ".".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            message = str(item.get("msg", "is invalid")).removeprefix("Value error, ")
            problems.append(Problem(_location(item.get("loc", ())), message))
        return JSONResponse(invalid(problems).body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "the request cannot be served"
        if error.status_code == 404 and message == "Not Found":
            message = (f"no such route: {request.method} {request.url.path}; the API's routes are listed at "
                       "/docs (Keptn's api, controlPlane, resource-service, mongodb-datastore and secrets APIs)")
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs for the methods it takes"
        return JSONResponse({"code": error.status_code, "message": message}, status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # The exception text may hold request data: the log gets the type and the trace, the client neither.
        log.error("%s %s failed with %s", request.method, request.url.path, type(error).__name__, exc_info=error)
        return JSONResponse({"code": 500, "message": f"the gateway failed to answer {request.method} "
                                                     f"{request.url.path} ({type(error).__name__}); see its log"},
                            status_code=500)
