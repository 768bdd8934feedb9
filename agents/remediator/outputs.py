"""What a remediator decision asks its host to do: the agents' one output family (`agents.kernel`).

- `Emit`: send an event to `events` with key `Emit.key` (task replies, escalations, quota requests
  and answers, sequence controls).
- `AuditRecord`: a remediation step or safety decision (a `kernel.Transition`), for `audit` as
  `sh.tidegate.audit.remediator.<kind>`;
  the same fields as the sequencer's audit record where they mean the same (id, kind, time,
  shkeptncontext, key, task, task_triggered_id, result, status, message, detail), plus the problem
  and the action. Its id is deterministic, so the history store drops replays.
- `Ignored`: the input changed nothing; `dead_letter=True` means it is invalid and belongs in the DLQ.
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

AGENT = "remediator"
__all__ = ["AGENT", "AuditKind", "AuditRecord", "Decision", "Emit", "IgnoreReason", "Ignored", "Output"]


class AuditKind(StrEnum):
    ACTION_SELECTED = "action_selected"  # an action was handed out (step N of a problem)
    DEFERRED = "deferred"  # the action waits: the service's cooldown runs
    QUOTA_DENIED = "quota_denied"  # the project's hourly cap is reached
    ESCALATED = "escalated"  # automation gave up; people were told
    DUPLICATE_DECLINED = "duplicate_declined"  # the problem is already being remediated in another run
    CONFIG_ERROR = "config_error"  # remediation.yaml missing or unusable
    PROBLEM_CLOSED = "problem_closed"  # the alert resolved; the run is stopped
    CLOSED_ANSWERED = "closed_answered"  # a get-action for a closed problem ended the loop
    REMEDIATION_FINISHED = "remediation_finished"  # the remediation sequence of a problem ended


@dataclass(frozen=True, slots=True)
class AuditRecord(kernel.Transition):
    id: str
    kind: AuditKind
    time: datetime
    keptn_context: str | None
    key: Key
    task: str | None = None
    task_triggered_id: str | None = None
    result: str | None = None
    status: str | None = None
    message: str | None = None
    problem: str | None = None
    action: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_event(self) -> KeptnEvent:
        """The record as an audit CloudEvent (`sh.tidegate.audit.remediator.<kind>`)."""
        return transition_event(agent=AGENT, kind=self.kind.value, id=self.id, time=self.time,
                                keptn_context=self.keptn_context, data=self.to_json_dict())

    def to_record(self) -> KafkaRecord:
        """`encode(self.to_event(), self.key)`, byte for byte, without the event."""
        return transition_record(agent=AGENT, kind=self.kind.value, id=self.id, time=self.time,
                                 keptn_context=self.keptn_context, data=self.to_json_dict(), key=self.key)

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "time": format_time(self.time),
            "key": str(self.key),
        }
        optional = {
            "shkeptncontext": self.keptn_context,
            "task": self.task,
            "task_triggered_id": self.task_triggered_id,
            "result": self.result,
            "status": self.status,
            "message": self.message,
            "problem": self.problem,
            "action": self.action,
        }
        return transition_fields(out, optional, self.detail)


class IgnoreReason(StrEnum):
    DUPLICATE = "duplicate"  # input id handled before (redelivery)
    INVALID = "invalid"  # cannot be processed as sent: DLQ
    UNHANDLED_TYPE = "unhandled_type"  # not an event the remediator acts on
    NOTHING_TO_DO = "nothing_to_do"  # e.g. a tick with nothing due, a grant for no pending action


@dataclass(frozen=True, slots=True)
class Ignored(kernel.Ignored[IgnoreReason]):
    """The input changed nothing; `dead_letter` is True for IgnoreReason.INVALID."""


Output = Emit | AuditRecord | Ignored
