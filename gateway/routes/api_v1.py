"""Keptn's api-service: `/api/v1/auth`, `/api/v1/metadata`, `/api/v1/event`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from tidegate.schemas.shipyard import API_VERSION

from ..auth import require_token
from ..context import Gateway, gateway
from ..ingest import accept_event
from ..models import EventIn, KeptnContextOut, Message, Metadata

router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[Depends(require_token)])

Gw = Annotated[Gateway, Depends(gateway)]


@router.post("/auth", response_model=Message, summary="Check the API token")
async def auth() -> Message:
    return Message(message="the token is valid")


@router.get("/metadata", response_model=Metadata, summary="What this control plane is")
async def metadata(gw: Gw) -> Metadata:
    return Metadata(
        namespace="tidegate",
        keptnlabel="tidegate",
        keptnversion=f"tidegate-{gw.version}",
        shipyardversion=API_VERSION.split("/", 1)[1],
        bridgeversion="",
        keptnservices={},
        # Tidegate keeps every project's files on its resources topic: no git upstream is needed, and
        # Keptn's CLI creates projects without --git-* flags when this is true (the flags are ignored).
        automaticprovisioning=True,
    )


@router.post(
    "/event",
    response_model=KeptnContextOut,
    summary="Send an event (sequence trigger, task reply, problem, monitoring configuration)",
)
async def post_event(body: EventIn, gw: Gw) -> KeptnContextOut:
    return KeptnContextOut(keptnContext=await accept_event(gw, body.model_dump(exclude_none=True)))
