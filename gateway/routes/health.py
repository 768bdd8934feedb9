"""`/healthz` (the process answers), `/readyz` (Kafka and the history are usable), `/metrics`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..context import Gateway, gateway

router = APIRouter(tags=["health"])

Gw = Annotated[Gateway, Depends(gateway)]


@router.get("/healthz", summary="The gateway process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The gateway can serve: configuration loaded, Kafka and history usable",
            responses={503: {"description": "not ready; `reasons` says why"}})
async def readyz(gw: Gw) -> JSONResponse:
    reasons = gw.not_ready()
    if reasons:
        return JSONResponse({"status": "not ready", "reasons": reasons}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(gw: Gw) -> Response:
    return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)
