"""The approver in the worker: answers `approval.triggered` on `tasks.approval` (stateless)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tidegate.agents.approver.core import decide_approval
from tidegate.agents.kernel import Agent, Decision, Emit, Hosted, Position
from tidegate.agents.shell import WorkerContext
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key


def decide(state: None, event: KeptnEvent, _config: None, _now: datetime,
           _position: Position | None = None) -> Decision[Any]:
    """The approver's answer as a decision: its replies go to `events`, keyed like the approval.
    The replies' time is the approval's own (`decide_approval`), so a redelivery re-sends identical events."""
    key = Key.of_data(event.data)
    return Decision(None, tuple(Emit(reply, key) for reply in decide_approval(event)))


AGENT: Agent[Any, None] = Agent(name="approver", inputs=("tasks.approval",), decide=decide)


def hosted(_ctx: WorkerContext) -> Hosted[Any, None]:
    return Hosted(AGENT, None)
