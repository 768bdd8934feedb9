"""Keptn's mongodb-datastore queries under `/api/mongodb-datastore`, answered from the history store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tidegate.readside.history.store import EventFilter, QueryError

from ..auth import require_token
from ..context import Gateway, gateway
from ..errors import invalid
from ..models import EventList
from ..rules import Problem, parse_filter
from .control_plane import _time_param

router = APIRouter(prefix="/api/mongodb-datastore", tags=["mongodb-datastore"], dependencies=[Depends(require_token)])

Gw = Annotated[Gateway, Depends(gateway)]

# Filter keys the store has columns for; any other key is matched on the event's JSON.
_COLUMNS = {
    "data.project": "project",
    "data.stage": "stage",
    "data.service": "service",
    "shkeptncontext": "keptn_context",
    "triggeredid": "triggered_id",
    "id": "event_id",
    "source": "source",
}


@router.get("/event", response_model=EventList, summary="Stored events, newest first")
async def events(
    gw: Gw,
    project: str | None = None,
    stage: str | None = None,
    service: str | None = None,
    keptnContext: str | None = None,
    type: str | None = None,
    eventID: str | None = None,
    source: str | None = None,
    root: bool = False,
    fromTime: str | None = None,
    beforeTime: str | None = None,
    page_size: Annotated[int | None, Query(alias="pageSize", ge=1, le=500)] = None,
    next_page_key: Annotated[str | None, Query(alias="nextPageKey")] = None,
) -> EventList:
    where = EventFilter(
        project=project,
        stage=stage,
        service=service,
        keptn_context=keptnContext,
        type=type,
        event_id=eventID,
        source=source,
        root=root,
        from_time=_time_param("fromTime", fromTime),
        before_time=_time_param("beforeTime", beforeTime),
    )
    try:
        page = gw.history.events(where, page_size=page_size, next_page_key=next_page_key)
    except QueryError as error:
        raise invalid([Problem("query:nextPageKey", str(error))]) from None
    return EventList(events=page.items, nextPageKey=page.next_page_key, totalCount=page.total_count,
                     pageSize=page.page_size)


@router.get("/event/type/{eventType}", response_model=EventList,
            summary="Stored events of one type matching a filter (data.project or shkeptncontext required)")
async def events_by_type(
    eventType: str,
    gw: Gw,
    filter: Annotated[str, Query(description="e.g. data.project:sockshop AND data.stage:dev,staging")],
    excludeInvalidated: bool = False,
    fromTime: str | None = None,
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
) -> EventList:
    parsed = parse_filter(filter)
    if isinstance(parsed, Problem):
        raise invalid([Problem("query:filter", parsed.message)])
    columns: dict[str, str] = {}
    data_filters: dict[str, list[str]] = {}
    for name, values in parsed.items():
        if name in _COLUMNS and len(values) == 1:
            columns[_COLUMNS[name]] = values[0]
        else:
            data_filters[name] = values
    where = EventFilter(
        type=eventType,
        exclude_invalidated=excludeInvalidated,
        from_time=_time_param("fromTime", fromTime),
        **columns,  # type: ignore[arg-type]
    )
    page = gw.history.events_matching(where, data_filters, limit=limit)
    return EventList(events=page.items, totalCount=page.total_count, pageSize=page.page_size)
