"""Remediations as the Bridge shows them: each problem, the actions taken, their results and the
re-evaluations. Pure: built from a remediation context's stored events.

Since Keptn 0.8.3 a remediation is a shipyard sequence (reference §5.2): `get-action` picks the next
action from remediation.yaml (`get-action.finished` carries it in `data.action`), `action` runs it,
`evaluation` checks whether it helped, and the loop repeats while the evaluation fails. Tidegate's
remediator adds `sh.tidegate.remediation.escalated` when it gives up, and a `sh.keptn.events.problem`
with State CLOSED ends the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidegate.readside.history.sequences import SequenceView

from .records import EventRecord, TimelineItem, mapping, number, text
from .states import label, tone
from .timeline import ESCALATED_TYPE, PROBLEM_TYPE


@dataclass(slots=True)
class ActionStep:
    """One action of a remediation: what was chosen, how it ended, and the evaluation after it."""

    number: int
    name: str
    action: str
    description: str
    value: str
    chosen_at: datetime
    result: str | None = None
    status: str | None = None
    message: str | None = None
    answered_by: str | None = None
    evaluation_result: str | None = None
    evaluation_score: float | None = None
    evaluation_id: str | None = None

    @property
    def state(self) -> str:
        if self.result is None:
            return "running"
        if self.evaluation_result is None:
            return "waiting for the re-evaluation"
        return "helped" if self.evaluation_result in ("pass", "warning") else "did not help"


@dataclass(slots=True)
class RemediationRun:
    keptn_context: str
    project: str
    stage: str
    service: str
    title: str
    root_cause: str | None
    opened_at: datetime
    state: str
    state_label: str
    tone: str
    problem_open: bool = True
    closed_at: datetime | None = None
    steps: list[ActionStep] = field(default_factory=list)
    escalation: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.escalation:
            return "escalated"
        if not self.problem_open:
            return "problem closed"
        if self.steps and self.steps[-1].evaluation_result in ("pass", "warning"):
            return "resolved by " + self.steps[-1].name
        return label(self.state)


def _value_text(value: Any) -> str:
    if value is None or value == {}:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def remediation_run(view: SequenceView, items: Iterable[TimelineItem]) -> RemediationRun:
    state = view.state
    problem_stage = view.stages[0].name if view.stages else ""
    run = RemediationRun(
        keptn_context=view.keptn_context,
        project=view.project,
        stage=problem_stage,
        service=view.service,
        title=view.problem_title or "problem",
        root_cause=None,
        opened_at=view.time,
        state=state,
        state_label=label(state),
        tone=tone(state, view.result),
    )
    pending_actions: dict[str, ActionStep] = {}  # action.triggered id -> step
    for item in items:
        if not isinstance(item, EventRecord):
            continue
        _apply(run, item, pending_actions)
    return run


def _apply(run: RemediationRun, event: EventRecord, pending_actions: dict[str, ActionStep]) -> None:
    parsed = event.parsed
    data = event.data
    if parsed.is_sequence and parsed.kind == "triggered":
        problem = mapping(data.get("problem"))
        if problem and len(run.steps) == 0:
            run.title = text(problem.get("problemTitle")) or text(problem.get("ProblemTitle")) or run.title
            run.root_cause = text(problem.get("rootCause")) or text(problem.get("RootCause"))
            run.stage = event.stage or run.stage
    elif parsed.is_task and parsed.task == "get-action" and parsed.kind == "finished":
        action = data.get("action") if isinstance(data.get("action"), dict) else None
        if action is None:
            if event.result == "fail" and event.message:
                run.notes.append(event.message)
            return
        run.steps.append(ActionStep(
            number=len(run.steps) + 1,
            name=text(action.get("name")) or text(action.get("action")) or "action",
            action=text(action.get("action")) or "",
            description=text(action.get("description")) or "",
            value=_value_text(action.get("value")),
            chosen_at=event.time,
        ))
    elif parsed.is_task and parsed.task == "action" and parsed.kind == "triggered" and run.steps:
        pending_actions[event.id] = run.steps[-1]
    elif parsed.is_task and parsed.task == "action" and parsed.kind == "finished":
        step = pending_actions.get(event.triggered_id or "") or (run.steps[-1] if run.steps else None)
        if step is not None:
            step.result, step.status, step.message = event.result, event.status, event.message
            step.answered_by = event.source or None
    elif parsed.is_task and parsed.task == "evaluation" and parsed.kind == "finished" and run.steps:
        step = run.steps[-1]
        block = mapping(data.get("evaluation"))
        step.evaluation_result = text(block.get("result")) or event.result
        step.evaluation_score = number(block.get("score"))
        step.evaluation_id = event.id
    elif event.type == ESCALATED_TYPE:
        run.escalation = event.message or text(data.get("reason")) or "no automatic action is left"
    elif event.type == PROBLEM_TYPE:
        state = (text(data.get("State")) or text(data.get("state")) or "").upper()
        if state == "CLOSED":
            run.problem_open = False
            run.closed_at = event.time
