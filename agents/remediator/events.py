"""Tidegate's own events around remediation (Keptn has none of these). All travel on `events`.

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

from schemas.events import KeptnEvent, format_time
from streams.ids import derived_id
from streams.keys import Key

ESCALATED_TYPE = "sh.tidegate.remediation.escalated"
QUOTA_REQUESTED_TYPE = "sh.tidegate.remediation.quota.requested"
QUOTA_GRANTED_TYPE = "sh.tidegate.remediation.quota.granted"
QUOTA_DENIED_TYPE = "sh.tidegate.remediation.quota.denied"
REMEDIATION_TICK_TYPE = "sh.tidegate.remediation.tick"
REMEDIATION_SEQUENCE = "remediation"
GET_ACTION = "get-action"

#: Every event type the remediator consumes from `events` (besides problems and remediation.finished).
OWN_TYPES = frozenset({QUOTA_REQUESTED_TYPE, QUOTA_GRANTED_TYPE, QUOTA_DENIED_TYPE, REMEDIATION_TICK_TYPE})


def remediation_tick(key: Key, deadline: datetime, source: str = "tidegate-remediator") -> KeptnEvent:
    """The tick for `key`'s deferred action due at `deadline` (same key and deadline, same id)."""
    return KeptnEvent(
        id=derived_id(f"remediation-tick:{key}", format_time(deadline)),
        source=source,
        type=REMEDIATION_TICK_TYPE,
        time=deadline,
        data={"project": key.project, "stage": key.stage, "service": key.service},
    )
