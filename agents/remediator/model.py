"""The remediator's state for one key, as kept in the `remediations` table (JSON).

A service key (`project/stage/service`) holds the problems of that service, each identified by its
keptnContext (one remediation run = one context, re-triggered in a loop with the same context), with
the step counter that says which action comes next. Keptn kept that counter in the merged sequence
payload, where a Go merge quirk froze it after two steps; here it lives in the agent's own state.

A project key (`project//`) holds only the times of the actions granted in the last hour, for the
project's cap.

Both remember the inputs they applied as every agent does (`agents.dedupe.Remembered`: the offset
applied per input partition and digests of the last ids); a record with the earlier `seen` list is
migrated when read.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from tidegate.agents.dedupe import Remembered


class ProblemStatus(StrEnum):
    OPEN = "open"  # being remediated: the next get-action gets the next action
    ESCALATED = "escalated"  # automation gave up; people have it. Still blocks a duplicate remediation
    CLOSED = "closed"  # the alert resolved; any further get-action ends the loop
    RESOLVED = "resolved"  # the remediation sequence finished with pass/warning
    ABORTED = "aborted"  # the remediation sequence was aborted
    DECLINED = "declined"  # a duplicate of a problem already being remediated: never started

    @property
    def active(self) -> bool:
        """Someone (the loop or people) is dealing with it: a second remediation would collide."""
        return self in (ProblemStatus.OPEN, ProblemStatus.ESCALATED)


class ActionTaken(BaseModel):
    """One action handed out for a problem."""

    index: int
    name: str
    action: str
    description: str = ""
    value: Any = None
    at: datetime
    triggered_id: str  # the get-action.triggered it answered

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "description": self.description, "value": self.value}


class ProblemRecord(BaseModel):
    keptn_context: str
    identity: str  # what makes two contexts the same problem (ProblemID, else title/root cause)
    title: str = ""
    root_cause: str = ""
    status: ProblemStatus = ProblemStatus.OPEN
    steps: int = 0  # actions handed out so far = index of the next one
    actions: list[ActionTaken] = Field(default_factory=list)
    problem: dict[str, Any] = Field(default_factory=dict)  # the problem block as received
    opened_at: datetime
    updated_at: datetime
    duplicate_of: str | None = None  # for DECLINED: the context already remediating it


class Waiting(StrEnum):
    COOLDOWN = "cooldown"
    QUOTA = "quota"


class PendingAnswer(BaseModel):
    """A get-action that got `.started` and waits for the cooldown to end or the project's grant."""

    triggered_id: str
    keptn_context: str
    gitcommitid: str | None = None
    labels: dict[str, Any] | None = None
    waiting: Waiting
    due_at: datetime | None = None  # set while waiting for the cooldown
    index: int
    total: int = 0  # how many actions the problem has (for messages)
    action: dict[str, Any]  # name, action, description, value
    since: datetime


class RemediationState(Remembered):
    project: str
    stage: str = ""
    service: str = ""
    problems: list[ProblemRecord] = Field(default_factory=list)
    pending: list[PendingAnswer] = Field(default_factory=list)
    last_action_at: datetime | None = None
    grants: list[datetime] = Field(default_factory=list)  # project key only: actions granted, last hour

    def problem(self, keptn_context: str) -> ProblemRecord | None:
        return next((p for p in self.problems if p.keptn_context == keptn_context), None)

    def pending_for(self, triggered_id: str) -> PendingAnswer | None:
        return next((p for p in self.pending if p.triggered_id == triggered_id), None)
