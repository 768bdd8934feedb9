"""What analytics needs from an audit event: a few small facts, read once. Pure: no I/O.

An event gives zero or more facts; everything else about it is dropped. Facts carry the event's
own time (not when it was read), its keptnContext and its stage and service, so the figures
computed from them do not depend on the order or the number of times the events arrived.

| event | fact |
|---|---|
| `<stage>.<sequence>.triggered` | SequenceTriggered; for `remediation` also ProblemOpened |
| `<stage>.<sequence>.finished` | SequenceFinished; `remediation` with pass/warning also ProblemClosed |
| `deployment.triggered` / `.finished`, `rollback.triggered`, `action.triggered` | TaskTriggered / TaskFinished |
| `action.finished` | TaskFinished (the action's name comes from its `.triggered`) |
| `evaluation.finished` / `.invalidated` | EvaluationFinished / EvaluationInvalidated |
| `sh.keptn.events.problem` | ProblemOpened (State OPEN) or ProblemClosed (State CLOSED) |
| `sh.tidegate.remediation.escalated` | Escalated |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tidegate.schemas.events import PROBLEM_TYPE, KeptnEvent
from tidegate.schemas.payloads import action_name
from tidegate.schemas.tidegate_events import ESCALATED_TYPE

REMEDIATION = "remediation"
TIMED_TASKS = frozenset({"deployment", "rollback", "action"})
PASSING = frozenset({"pass", "warning"})


@dataclass(frozen=True, slots=True)
class Where:
    """The event's keptnContext, stage, service and time (UTC)."""

    context: str
    stage: str
    service: str
    time: datetime


@dataclass(frozen=True, slots=True)
class SequenceTriggered:
    id: str
    at: Where
    sequence: str


@dataclass(frozen=True, slots=True)
class SequenceFinished:
    id: str
    at: Where
    sequence: str
    result: str
    status: str

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded" and self.result in PASSING


@dataclass(frozen=True, slots=True)
class TaskTriggered:
    id: str
    at: Where
    task: str
    action: str | None = None  # for `action`: which action (action.action, else action.name)


@dataclass(frozen=True, slots=True)
class TaskFinished:
    id: str
    at: Where
    task: str
    triggered_id: str
    result: str
    status: str

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded" and self.result in PASSING


@dataclass(frozen=True, slots=True)
class EvaluationFinished:
    id: str
    at: Where
    triggered_id: str | None
    result: str
    status: str
    score: float | None
    failed_slis: tuple[str, ...]  # indicators whose status was fail


@dataclass(frozen=True, slots=True)
class EvaluationInvalidated:
    id: str
    triggered_id: str


@dataclass(frozen=True, slots=True)
class ProblemOpened:
    id: str
    at: Where
    title: str


@dataclass(frozen=True, slots=True)
class ProblemClosed:
    id: str
    at: Where
    how: str  # "closed" (the problem's CLOSED event) or "remediated" (its remediation passed)


@dataclass(frozen=True, slots=True)
class Escalated:
    id: str
    at: Where
    reason: str


Fact = (
    SequenceTriggered
    | SequenceFinished
    | TaskTriggered
    | TaskFinished
    | EvaluationFinished
    | EvaluationInvalidated
    | ProblemOpened
    | ProblemClosed
    | Escalated
)


def facts_of(event: KeptnEvent) -> tuple[Fact, ...]:
    """The facts `event` holds (none for most events)."""
    data = event.data
    at = Where(
        context=event.shkeptncontext or "",
        stage=_text(data.get("stage")),
        service=_text(data.get("service")),
        time=_utc(event.time),
    )
    parsed = event.parsed_type
    if parsed.is_sequence:
        sequence = parsed.sequence or ""
        if parsed.kind == "triggered":
            opened: tuple[Fact, ...] = ()
            if sequence == REMEDIATION:
                opened = (ProblemOpened(event.id, at, _problem_title(data)),)
            return (SequenceTriggered(event.id, at, sequence), *opened)
        finished = SequenceFinished(event.id, at, sequence, _text(data.get("result")), _text(data.get("status")))
        if sequence == REMEDIATION and finished.succeeded:
            return finished, ProblemClosed(event.id, at, "remediated")
        return (finished,)
    if parsed.is_task:
        return _task_facts(event, at, parsed.task or "", parsed.kind or "")
    if event.type == PROBLEM_TYPE:
        state = _problem_field(data, "State").upper()
        if state == "OPEN":
            return (ProblemOpened(event.id, at, _problem_title(data)),)
        if state == "CLOSED":
            return (ProblemClosed(event.id, at, "closed"),)
        return ()
    if event.type == ESCALATED_TYPE:
        return (Escalated(event.id, at, _text(data.get("reason")) or "unknown"),)
    return ()


def _task_facts(event: KeptnEvent, at: Where, task: str, kind: str) -> tuple[Fact, ...]:
    data = event.data
    if task == "evaluation":
        if kind == "finished":
            return (_evaluation(event, at),)
        if kind == "invalidated" and event.triggeredid:
            return (EvaluationInvalidated(event.id, event.triggeredid),)
        return ()
    if task not in TIMED_TASKS:
        return ()
    if kind == "triggered":
        action = action_name(data.get("action")) if task == "action" else None
        return (TaskTriggered(event.id, at, task, action),)
    if kind == "finished" and event.triggeredid:
        return (TaskFinished(event.id, at, task, event.triggeredid, _text(data.get("result")), _text(data.get("status"))),)
    return ()


def _evaluation(event: KeptnEvent, at: Where) -> EvaluationFinished:
    data = event.data
    block = data.get("evaluation") if isinstance(data.get("evaluation"), Mapping) else {}
    assert isinstance(block, Mapping)
    score = block.get("score")
    failed: list[str] = []
    results = block.get("indicatorResults")
    for indicator in results if isinstance(results, list) else []:
        if not isinstance(indicator, Mapping) or indicator.get("status") != "fail":
            continue
        value = indicator.get("value")
        metric = value.get("metric") if isinstance(value, Mapping) else None
        name = metric if isinstance(metric, str) and metric else _text(indicator.get("displayName"))
        if name:
            failed.append(name)
    return EvaluationFinished(
        id=event.id,
        at=at,
        triggered_id=event.triggeredid,
        result=_text(data.get("result")) or "fail",
        status=_text(data.get("status")) or "succeeded",
        score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
        failed_slis=tuple(sorted(set(failed))),
    )


def _problem_field(data: Mapping[str, Any], name: str) -> str:
    # Keptn's problem payload is capitalised; Go read it case-insensitively (reference §2.4 QUIRK).
    for block in (data, data.get("problem")):
        if isinstance(block, Mapping):
            for key, value in block.items():
                if isinstance(key, str) and key.lower() == name.lower() and isinstance(value, str):
                    return value
    return ""


def _problem_title(data: Mapping[str, Any]) -> str:
    return _problem_field(data, "ProblemTitle") or _problem_field(data, "rootCause")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
