"""What a sequencer decision asks its host to do: the agents' one output family (`agents.kernel`).

- `Emit`: send an event. Task `.triggered` events and task cancellations go to `tasks.<task>`,
  everything else to `events`; the Kafka key is `Emit.key`.
- `AuditRecord`: a state transition of a sequence (a `kernel.Transition`), for `audit` (the read side
  builds timelines from these). Its id is deterministic like every output id, so the history store can
  drop replays.
- `Ignored`: the input changed nothing. `dead_letter=True` means the input is invalid and belongs in
  the DLQ; otherwise the host only counts it by `reason`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from tidegate.agents import kernel
from tidegate.agents.kernel import Decision, Emit
from tidegate.schemas.events import KeptnEvent, format_time
from tidegate.schemas.keys import Key
from tidegate.streams.audit import transition_event, transition_fields, transition_record
from tidegate.streams.codec import KafkaRecord

AUDIT_AGENT = "sequencer"
__all__ = ["AuditKind", "AuditRecord", "Decision", "Emit", "IgnoreReason", "Ignored", "Output"]


class AuditKind(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    WAITING = "waiting"
    TASK_DELAYED = "task_delayed"
    TASK_TRIGGERED = "task_triggered"
    TASK_STARTED = "task_started"
    TASK_FINISHED = "task_finished"
    WAITING_FOR_APPROVAL = "waiting_for_approval"
    PAUSED = "paused"
    RESUMED = "resumed"
    FINISHED = "finished"
    TIMED_OUT = "timed_out"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class AuditRecord(kernel.Transition):
    id: str
    kind: AuditKind
    time: datetime
    keptn_context: str
    key: Key
    sequence: str
    sequence_triggered_id: str
    task: str | None = None
    task_triggered_id: str | None = None
    result: str | None = None
    status: str | None = None
    message: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> KafkaRecord:
        """The record for `audit`: `encode(self.to_event(), self.key)`, byte for byte, without the event."""
        return transition_record(agent=AUDIT_AGENT, kind=self.kind.value, id=self.id, time=self.time,
                                 keptn_context=self.keptn_context, data=self._data(), key=self.key)

    def to_event(self) -> KeptnEvent:
        """The record as an audit CloudEvent (`sh.tidegate.audit.sequencer.<kind>`), keyed by `key`."""
        return transition_event(agent=AUDIT_AGENT, kind=self.kind.value, id=self.id, time=self.time,
                                keptn_context=self.keptn_context, data=self._data())

    def _data(self) -> dict[str, Any]:
        # `to_json_dict` without the fields the envelope carries (id, kind, time, shkeptncontext), built
        # directly: formatting the time only to drop it was a hot spot.
        data = transition_fields(self._fields(), self._optional(), self.detail)
        data.update({"project": self.key.project, "stage": self.key.stage, "service": self.key.service})
        return data

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "time": format_time(self.time),
            "shkeptncontext": self.keptn_context,
            **self._fields(),
        }
        return transition_fields(out, self._optional(), self.detail)

    def _fields(self) -> dict[str, Any]:
        return {"key": str(self.key), "sequence": self.sequence, "sequence_triggered_id": self.sequence_triggered_id}

    def _optional(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "task_triggered_id": self.task_triggered_id,
            "result": self.result,
            "status": self.status,
            "message": self.message,
        }


class IgnoreReason(StrEnum):
    DUPLICATE = "duplicate"  # input id handled before (redelivery)
    INVALID = "invalid"  # cannot be processed as sent: DLQ
    UNKNOWN_TRIGGEREDID = "unknown_triggeredid"  # reply to no open task of this key
    UNHANDLED_TYPE = "unhandled_type"  # not an event the sequencer acts on
    NOTHING_DUE = "nothing_due"  # a tick or control that found nothing to do


@dataclass(frozen=True, slots=True)
class Ignored(kernel.Ignored[IgnoreReason]):
    """The input changed nothing; `dead_letter` is True for IgnoreReason.INVALID."""


Output = Emit | AuditRecord | Ignored
