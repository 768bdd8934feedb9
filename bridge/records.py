"""Stored events and transitions as the Bridge reads them: typed, with times parsed. Pure: no I/O.

The history store hands out events as their JSON form (structured CloudEvents) and transitions as
`Transition.to_json_dict()`; the view models below read these two small types instead of raw dicts,
so a missing or odd field is handled once, here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tidegate.schemas.events import EventType

# The start of time for records whose time cannot be read (they sort first instead of breaking a page).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as written in events (`2024-05-01T12:00:00.000Z`), in UTC; None if unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def mapping(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one when the value is anything else."""
    return value if isinstance(value, dict) else {}


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored Keptn event."""

    id: str
    type: str
    parsed: EventType
    time: datetime
    source: str
    keptn_context: str | None
    triggered_id: str | None
    data: dict[str, Any]
    body: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, body: dict[str, Any]) -> EventRecord:
        event_type = text(body.get("type")) or ""
        data = body.get("data")
        return cls(
            id=text(body.get("id")) or "",
            type=event_type,
            parsed=EventType.parse(event_type),
            time=parse_time(body.get("time")) or EPOCH,
            source=text(body.get("source")) or "",
            keptn_context=text(body.get("shkeptncontext")),
            triggered_id=text(body.get("triggeredid")),
            data=data if isinstance(data, dict) else {},
            body=body,
        )

    @property
    def project(self) -> str | None:
        return text(self.data.get("project"))

    @property
    def stage(self) -> str | None:
        return text(self.data.get("stage"))

    @property
    def service(self) -> str | None:
        return text(self.data.get("service"))

    @property
    def result(self) -> str | None:
        return text(self.data.get("result"))

    @property
    def status(self) -> str | None:
        return text(self.data.get("status"))

    @property
    def message(self) -> str | None:
        return text(self.data.get("message"))

    def payload(self) -> str:
        """The whole event as indented JSON, for the payload viewer."""
        return json.dumps(self.body, indent=2, sort_keys=False, default=str)


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One state change an agent recorded (queued, started, paused, aborted, ...)."""

    id: str
    agent: str
    kind: str
    time: datetime
    stage: str
    service: str
    sequence: str | None
    sequence_triggered_id: str | None
    task: str | None
    result: str | None
    status: str | None
    message: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, body: dict[str, Any]) -> TransitionRecord:
        detail = body.get("detail")
        return cls(
            id=text(body.get("id")) or "",
            agent=text(body.get("agent")) or "",
            kind=text(body.get("kind")) or "",
            time=parse_time(body.get("time")) or EPOCH,
            stage=text(body.get("stage")) or "",
            service=text(body.get("service")) or "",
            sequence=text(body.get("sequence")),
            sequence_triggered_id=text(body.get("sequenceTriggeredId")),
            task=text(body.get("task")),
            result=text(body.get("result")),
            status=text(body.get("status")),
            message=text(body.get("message")),
            detail=detail if isinstance(detail, dict) else {},
        )


TimelineItem = EventRecord | TransitionRecord


def timeline_items(raw: list[tuple[int, dict[str, Any]]]) -> list[TimelineItem]:
    """The history's timeline entries (`{"kind": "event"|"transition", ...}`) as records, in order."""
    items: list[TimelineItem] = []
    for _position, entry in raw:
        kind = entry.get("kind")
        body = entry.get(kind) if isinstance(kind, str) else None
        if not isinstance(body, dict):
            continue
        items.append(EventRecord.of(body) if kind == "event" else TransitionRecord.of(body))
    return items
