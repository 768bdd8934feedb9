"""Tidegate's own event types (`sh.tidegate.*`; Keptn has no equivalent of these), one contract for every
home that sends or reads them.

Around the sequencer:

- `sh.tidegate.tick` (on `events`): "a timer of this key may be due". The shell's timer task sends
  one per due key; data `{project, stage, service}`; its id derives from the key and the deadline, so
  two workers (or a restart) sending the same tick produce one effect.
- `sh.tidegate.sequence.control` (on `events`): pause, resume or abort the sequences of one
  keptnContext in one key; data `{project, stage, service, state: pause|resume|abort}`,
  `shkeptncontext` set. The gateway sends one per key the context touches (one stage when the
  request names a stage).
- `sh.tidegate.task.cancelled` (on `tasks.<task>`, next to the task's `.triggered`): the sequencer
  stopped waiting for this task (the sequence was aborted or timed out); `triggeredid` = the task's
  `.triggered` id, data `{project, stage, service, task, reason: aborted|timedOut, message}`.
  A connector should stop the work if it can and must not report it as done. Keptn never told
  running executors (keptn#5557, #5259).

Around remediation (all on `events`):
- `sh.tidegate.remediation.escalated` (key project/stage/service): automation gave up on a problem
  (its actions ran out, remediation.yaml has none for it, or the project's action cap was reached).
  Data `{project, stage, service, labels, reason, message, problem, actionsTried: [{name, action,
  description, value}]}`; notification connectors route it to people.
- `sh.tidegate.remediation.quota.requested` (key `project//`): a service asks its project for one
  action of the hourly cap. Data `{project, stage: "", service: "", requester: {stage, service},
  triggeredid, action}`. It is keyed by the project so that one worker owns the project's count
  (co-partitioning: a table entry may only change while an event with the same key is processed).
- `sh.tidegate.remediation.quota.granted` / `.denied` (key of the requester): the answer; data
  `{project, stage, service, triggeredid, message}`.
- `sh.tidegate.remediation.tick` (key project/stage/service): "a deferred action of this key may be
  due" (after a cooldown); sent by the shell's timer, its id derives from the key and the deadline.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from tidegate.schemas.events import KeptnEvent, format_time
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key

TICK_TYPE = "sh.tidegate.tick"
CONTROL_TYPE = "sh.tidegate.sequence.control"
TASK_CANCELLED_TYPE = "sh.tidegate.task.cancelled"
ESCALATED_TYPE = "sh.tidegate.remediation.escalated"
QUOTA_REQUESTED_TYPE = "sh.tidegate.remediation.quota.requested"
QUOTA_GRANTED_TYPE = "sh.tidegate.remediation.quota.granted"
QUOTA_DENIED_TYPE = "sh.tidegate.remediation.quota.denied"
REMEDIATION_TICK_TYPE = "sh.tidegate.remediation.tick"
#: Bookkeeping events that say nothing to a person (timer ticks, quota round trips).
BOOKKEEPING_PREFIXES = (TICK_TYPE, REMEDIATION_TICK_TYPE, "sh.tidegate.remediation.quota.")
TIDEGATE_SOURCE = "tidegate"


class ControlState(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"


class CancelReason(StrEnum):
    ABORTED = "aborted"
    TIMED_OUT = "timedOut"


def tick_event(key: Key, deadline: datetime) -> KeptnEvent:
    """The tick for `key`'s timer due at `deadline` (same key and deadline, same id)."""
    return KeptnEvent(
        id=derived_id(f"tick:{key}", format_time(deadline)),
        source=TIDEGATE_SOURCE,
        type=TICK_TYPE,
        time=deadline,
        data={"project": key.project, "stage": key.stage, "service": key.service},
    )


def control_event(
    key: Key,
    keptn_context: str,
    state: ControlState | str,
    *,
    event_id: str | None = None,
    time: datetime | None = None,
) -> KeptnEvent:
    """A pause/resume/abort for the sequences of `keptn_context` in `key`."""
    event = KeptnEvent(
        source=TIDEGATE_SOURCE,
        type=CONTROL_TYPE,
        shkeptncontext=keptn_context,
        data={
            "project": key.project,
            "stage": key.stage,
            "service": key.service,
            "state": ControlState(state).value,
        },
    )
    update: dict[str, object] = {}
    if event_id is not None:
        update["id"] = event_id
    if time is not None:
        update["time"] = time
    return event.model_copy(update=update) if update else event


def remediation_tick(key: Key, deadline: datetime, source: str = "tidegate-remediator") -> KeptnEvent:
    """The tick for `key`'s deferred action due at `deadline` (same key and deadline, same id)."""
    return KeptnEvent(
        id=derived_id(f"remediation-tick:{key}", format_time(deadline)),
        source=source,
        type=REMEDIATION_TICK_TYPE,
        time=deadline,
        data={"project": key.project, "stage": key.stage, "service": key.service},
    )
