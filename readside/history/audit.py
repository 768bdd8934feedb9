"""Reading the audit topic: every record becomes an `AuditEntry`, a seen event or a transition.

This is the only module that knows the shape of audit records (streams/audit.py writes them): a
consumed or emitted Keptn event appears unchanged; a state transition is an event of type
`sh.tidegate.audit.<agent>.<kind>` whose data holds the transition's fields (the sequencer's
`AuditRecord.to_json_dict()`: `key`, `sequence`, `sequence_triggered_id`, `task`, `result`, ...).
If that shape changes, only this module changes. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tidegate.schemas.errors import TidegateError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.audit import as_transition, transition_fields
from tidegate.streams.codec import DecodeError, KafkaRecord, decode_record


@dataclass(frozen=True, slots=True)
class SeenEvent:
    """A Keptn event an agent consumed or emitted."""

    event: KeptnEvent

    @property
    def id(self) -> str:
        return self.event.id

    @property
    def keptn_context(self) -> str | None:
        return self.event.shkeptncontext


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change an agent recorded (a sequence queued, started, paused, finished, ...)."""

    id: str
    agent: str
    kind: str
    time: datetime
    keptn_context: str | None
    key: Key
    sequence: str | None = None
    sequence_triggered_id: str | None = None
    task: str | None = None
    task_triggered_id: str | None = None
    result: str | None = None
    status: str | None = None
    message: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """The form the gateway shows (stream and timeline): Keptn-like camelCase names."""
        out: dict[str, Any] = {
            "id": self.id,
            "agent": self.agent,
            "kind": self.kind,
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "shkeptncontext": self.keptn_context,
            "project": self.key.project,
            "stage": self.key.stage,
            "service": self.key.service,
        }
        optional = {
            "sequence": self.sequence,
            "sequenceTriggeredId": self.sequence_triggered_id,
            "task": self.task,
            "taskTriggeredId": self.task_triggered_id,
            "result": self.result,
            "status": self.status,
            "message": self.message,
        }
        return transition_fields(out, optional, self.detail)


AuditEntry = SeenEvent | Transition


class AuditFormatError(TidegateError, ValueError):
    """An audit record that is neither a Keptn event nor a transition; the message says why."""


def entry_of_record(record: KafkaRecord, *, timestamp: datetime | None = None) -> AuditEntry:
    """The entry a raw audit record holds. Raises AuditFormatError."""
    try:
        event = decode_record(record, timestamp=timestamp)
    except DecodeError as error:
        raise AuditFormatError(error.reason) from error
    return entry_of_event(event, record_key=record.key)


def entry_of_event(event: KeptnEvent, *, record_key: bytes | None = None) -> AuditEntry:
    """A decoded audit event as an entry: transitions are recognised by their type."""
    transition = as_transition(event)
    if transition is None:
        return SeenEvent(event)
    data = event.data
    return Transition(
        id=event.id,
        agent=transition.agent,
        kind=transition.kind,
        time=event.time if event.time.tzinfo else event.time.replace(tzinfo=UTC),
        keptn_context=event.shkeptncontext or _text(data.get("shkeptncontext")),
        key=_key_of(data, record_key),
        sequence=_text(data.get("sequence")),
        sequence_triggered_id=_text(data.get("sequence_triggered_id") or data.get("sequenceTriggeredId")),
        task=_text(data.get("task")),
        task_triggered_id=_text(data.get("task_triggered_id") or data.get("taskTriggeredId")),
        result=_text(data.get("result")),
        status=_text(data.get("status")),
        message=_text(data.get("message")),
        detail=dict(data["detail"]) if isinstance(data.get("detail"), dict) else {},
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _key_of(data: dict[str, Any], record_key: bytes | None) -> Key:
    # Prefer explicit fields, then the transition's `key` field, then the Kafka record key.
    if isinstance(data.get("project"), str) and data["project"]:
        return Key.of_data(data)
    for raw in (data.get("key"), record_key):
        if isinstance(raw, str | bytes) and raw:
            try:
                return Key.parse(raw)
            except (ValueError, UnicodeDecodeError):
                continue
    return Key("")
