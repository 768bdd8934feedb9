"""A keptnContext's events, live: `GET /api/v1/stream/{keptnContext}` (server-sent events).

The stream first replays what the history already has, then sends each new entry as the audit
follower stores it. Messages:
- `event`: a Keptn event (JSON, structured form);
- `transition`: a state change an agent recorded (queued, started, paused, finished, ...);
- `state`: the sequence state after the entries before it (Keptn's SequenceState model + `result`).
Each message's `id` is a cursor `<event row>-<transition row>` in storage order, so a client that
reconnects with `Last-Event-ID` gets only what it has not seen, even entries that arrived late with
earlier times.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from sse_starlette.sse import EventSourceResponse

from tidegate.readside.history.store import TimelineCursor

from ..auth import require_token
from ..context import Gateway, gateway
from ..rules import keptn_context_for

router = APIRouter(prefix="/api/v1", tags=["stream"], dependencies=[Depends(require_token)])

Gw = Annotated[Gateway, Depends(gateway)]

# Wake up this often even without a notice, so a stream fed by another replica's writes (PostgreSQL)
# still moves; a notice from this replica's follower wakes it at once.
POLL_SECONDS = 2.0


@router.get(
    "/stream/{keptnContext}",
    summary="Follow a keptnContext live (server-sent events: event, transition, state)",
    response_class=EventSourceResponse,
)
async def stream(
    keptnContext: str,
    request: Request,
    gw: Gw,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    context = keptn_context_for(keptnContext)
    return EventSourceResponse(_messages(gw, request, context, parse_cursor(last_event_id)), ping=10)


def parse_cursor(text: str | None) -> TimelineCursor:
    """`<event row>-<transition row>` from Last-Event-ID; anything else starts from the beginning."""
    found = _CURSOR.fullmatch(text or "")
    return (int(found[1]), int(found[2])) if found else (0, 0)


# ASCII digits (str.isdigit also takes "²"), few enough to fit a database's 64-bit integer.
_CURSOR = re.compile(r"([0-9]{1,18})-([0-9]{1,18})")


def format_cursor(cursor: TimelineCursor) -> str:
    return f"{cursor[0]}-{cursor[1]}"


async def _messages(
    gw: Gateway, request: Request, context: str, cursor: TimelineCursor
) -> AsyncIterator[dict[str, Any]]:
    gw.metrics.streams.inc()
    try:
        with gw.notices.watch(context) as notices:
            last_state: dict[str, Any] | None = None
            while True:
                before = cursor
                items, cursor = await asyncio.to_thread(gw.history.timeline_since, context, cursor)
                for index, item in enumerate(items):
                    kind = item["kind"]
                    # Only the batch's last message moves the resume point: a client cut off mid-batch
                    # gets the whole batch again (it drops ids it has seen) rather than missing part of it.
                    resume = cursor if index == len(items) - 1 else before
                    yield {"event": kind, "id": format_cursor(resume), "data": json.dumps(item[kind])}
                view = await asyncio.to_thread(gw.history.sequence, context)
                state = view.to_json_dict() if view is not None else None
                if state is not None and state != last_state:
                    last_state = state
                    yield {"event": "state", "id": format_cursor(cursor), "data": json.dumps(state)}
                if await request.is_disconnected():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(notices.get(), timeout=POLL_SECONDS)
    finally:
        gw.metrics.streams.dec()
