"""The sequence-state view (Keptn's `/v1/sequence`): one record per keptnContext, one sub-state per stage.

`apply(view, entry)` folds one audit entry into the view of its keptnContext and returns the new
view; the store keeps the result. Pure: no I/O, no clock.

States are Keptn's (§3.2): a stage is `triggered` while queued, `started`/`waiting`/`waitingForApproval`/
`paused` while running, and afterwards the `status` of its `<stage>.<sequence>.finished` event
(`succeeded`, `errored`, `aborted`) or `timedOut`. The overall state is the state of the stage that
changed last while any stage still runs, and `finished` (or `aborted`, `timedOut`) once none does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tidegate.schemas.events import EventType, KeptnEvent, format_time

from .audit import AuditEntry, SeenEvent, Transition

RUNNING_STATES = frozenset({"triggered", "started", "waiting", "waitingForApproval", "paused"})
FINAL_OVERALL = frozenset({"finished", "aborted", "timedOut"})
_FAILED_RESULTS = frozenset({"fail", "failed"})
_FAILED_STATUSES = frozenset({"errored", "aborted", "unknown"})

# Transition kinds (agents/sequencer AuditKind values) and the stage state they lead to.
_STATE_OF_KIND = {
    "queued": "triggered",
    "started": "started",
    "waiting": "waiting",
    "waiting_for_approval": "waitingForApproval",
    "paused": "paused",
    "resumed": "started",
    "timed_out": "timedOut",
    "aborted": "aborted",
}
_TASK_KINDS = frozenset({"task_delayed", "task_triggered", "task_started", "task_finished"})


@dataclass(frozen=True, slots=True)
class StageState:
    name: str
    sequence: str
    state: str
    changed: int  # order of the last change inside the view: the overall state follows the latest
    triggered_id: str | None = None
    image: str | None = None
    result: str | None = None
    latest_event: dict[str, str] | None = None
    latest_failed_event: dict[str, str] | None = None
    latest_evaluation: dict[str, Any] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "sequence": self.sequence, "state": self.state}
        optional = {
            "image": self.image,
            "result": self.result,
            "latestEvent": self.latest_event,
            "latestFailedEvent": self.latest_failed_event,
            "latestEvaluation": self.latest_evaluation,
        }
        out.update({name: value for name, value in optional.items() if value is not None})
        return out


@dataclass(frozen=True, slots=True)
class SequenceView:
    keptn_context: str
    project: str
    service: str
    name: str
    time: datetime
    updated: datetime
    stages: tuple[StageState, ...] = ()
    failed: bool = False
    last_result: str | None = None
    problem_title: str | None = None
    changes: int = 0

    @property
    def state(self) -> str:
        running = [stage for stage in self.stages if stage.state in RUNNING_STATES]
        if running:
            return max(running, key=lambda stage: stage.changed).state
        if any(stage.state == "aborted" for stage in self.stages):
            return "aborted"
        if any(stage.state == "timedOut" for stage in self.stages):
            return "timedOut"
        return "finished" if self.stages else "triggered"

    @property
    def done(self) -> bool:
        return self.state in FINAL_OVERALL

    @property
    def result(self) -> str | None:
        """`fail` if any stage failed, errored, timed out or was aborted; else the last finished result."""
        if self.failed:
            return "fail"
        return self.last_result

    def stage(self, name: str) -> StageState | None:
        for stage in self.stages:
            if stage.name == name:
                return stage
        return None

    def to_json_dict(self) -> dict[str, Any]:
        """Keptn's SequenceState model, plus `result` (Tidegate's summary of the run)."""
        out: dict[str, Any] = {
            "name": self.name,
            "service": self.service,
            "project": self.project,
            "time": format_time(self.time),
            "updated": format_time(self.updated),
            "shkeptncontext": self.keptn_context,
            "state": self.state,
            "stages": [stage.to_json_dict() for stage in self.stages],
        }
        if self.result is not None:
            out["result"] = self.result
        if self.problem_title:
            out["problemTitle"] = self.problem_title
        return out


def apply(view: SequenceView | None, entry: AuditEntry) -> SequenceView | None:
    """The view of the entry's keptnContext after the entry (None: the entry starts no sequence yet)."""
    if isinstance(entry, SeenEvent):
        return _apply_event(view, entry.event)
    return _apply_transition(view, entry)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _event_ref(event: KeptnEvent) -> dict[str, str]:
    return {"type": event.type, "id": event.id, "time": format_time(event.time)}


def _new_view(context: str, project: str, service: str, name: str, when: datetime) -> SequenceView:
    return SequenceView(keptn_context=context, project=project, service=service, name=name, time=when, updated=when)


def _with_stage(view: SequenceView, stage: StageState) -> SequenceView:
    changes = view.changes + 1
    stage = replace(stage, changed=changes)
    stages = [s for s in view.stages if s.name != stage.name]
    existing = view.stage(stage.name)
    if existing is None:
        stages.append(stage)
    else:
        stages.insert(view.stages.index(existing), stage)
    return replace(view, stages=tuple(stages), changes=changes)


def _apply_event(view: SequenceView | None, event: KeptnEvent) -> SequenceView | None:
    context = event.shkeptncontext
    parsed = event.parsed_type
    if not context:
        return view
    when = _utc(event.time)
    project, stage_name, service = event.project, event.stage, event.service
    if view is None:
        if not (parsed.is_sequence and parsed.kind == "triggered" and project and stage_name and service):
            return None
        view = _new_view(context, project, service, parsed.sequence or "", when)
        view = replace(view, problem_title=_problem_title(event.data))
    view = replace(view, updated=max(view.updated, when))
    if not stage_name:
        return view
    stage = view.stage(stage_name)
    if parsed.is_sequence:
        return _apply_sequence_event(view, stage, stage_name, parsed, event)
    if stage is None:
        return view
    stage = replace(stage, latest_event=_event_ref(event))
    if parsed.is_task and parsed.kind == "finished":
        if _is_failure(event.data.get("result"), event.data.get("status")):
            stage = replace(stage, latest_failed_event=_event_ref(event))
        if parsed.task == "evaluation" and isinstance(event.data.get("evaluation"), dict):
            evaluation = event.data["evaluation"]
            stage = replace(
                stage,
                latest_evaluation={
                    "result": evaluation.get("result") or event.data.get("result"),
                    "score": evaluation.get("score"),
                },
            )
    return _with_stage(view, stage)


def _apply_sequence_event(
    view: SequenceView, stage: StageState | None, stage_name: str, parsed: EventType, event: KeptnEvent
) -> SequenceView:
    sequence = parsed.sequence or ""
    if parsed.kind == "triggered":
        if stage is not None and stage.triggered_id == event.id:
            return view  # the same trigger seen twice (consumed and emitted)
        stage = StageState(
            name=stage_name,
            sequence=sequence,
            state="triggered",
            changed=0,
            triggered_id=event.id,
            image=_image(event.data) or (stage.image if stage else None),
            latest_event=_event_ref(event),
            latest_evaluation=stage.latest_evaluation if stage else None,
        )
        return _with_stage(view, stage)
    # `<stage>.<sequence>.finished`: the stage state becomes the finished event's status.
    result = _text(event.data.get("result"))
    status = _text(event.data.get("status")) or "succeeded"
    base = stage or StageState(name=stage_name, sequence=sequence, state="triggered", changed=0)
    finished = replace(
        base,
        sequence=sequence,
        state=status,
        result=result,
        latest_event=_event_ref(event),
        latest_failed_event=_event_ref(event) if _is_failure(result, status) else base.latest_failed_event,
    )
    view = replace(view, failed=view.failed or _is_failure(result, status), last_result=result or view.last_result)
    return _with_stage(view, finished)


def _apply_transition(view: SequenceView | None, transition: Transition) -> SequenceView | None:
    context = transition.keptn_context
    key = transition.key
    if not context or not key.stage:
        return view
    when = _utc(transition.time)
    kind = transition.kind
    if view is None:
        view = _new_view(context, key.project, key.service, transition.sequence or "", when)
    view = replace(view, updated=max(view.updated, when))
    stage = view.stage(key.stage) or StageState(
        name=key.stage,
        sequence=transition.sequence or view.name,
        state="triggered",
        changed=0,
        triggered_id=transition.sequence_triggered_id,
    )
    if stage.triggered_id and transition.sequence_triggered_id and stage.triggered_id != transition.sequence_triggered_id:
        if stage.state in RUNNING_STATES:
            # A late transition of an earlier run in this stage (a rollback already replaced it): only
            # its failure still counts for the whole sequence.
            ended_badly = kind in ("timed_out", "aborted") or (
                kind == "finished" and _is_failure(transition.result, transition.status)
            )
            return replace(view, failed=True) if ended_badly else view
        stage = replace(stage, sequence=transition.sequence or stage.sequence,
                        triggered_id=transition.sequence_triggered_id, result=None)
    if kind == "finished":
        status = transition.status or "succeeded"
        failed = _is_failure(transition.result, status)
        stage = replace(stage, state=status, result=transition.result or stage.result)
        view = replace(view, failed=view.failed or failed, last_result=transition.result or view.last_result)
    elif kind in _STATE_OF_KIND:
        stage = replace(stage, state=_STATE_OF_KIND[kind])
        if kind in ("timed_out", "aborted"):
            view = replace(view, failed=True)
    elif kind in _TASK_KINDS:
        if stage.state in ("triggered", "waiting", "waitingForApproval") and not (
            kind == "task_triggered" and transition.task == "approval"
        ):
            stage = replace(stage, state="started")
    else:
        return view  # a kind this view does not show
    return _with_stage(view, stage)


def _is_failure(result: Any, status: Any) -> bool:
    return (isinstance(result, str) and result in _FAILED_RESULTS) or (
        isinstance(status, str) and status in _FAILED_STATUSES
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _image(data: dict[str, Any]) -> str | None:
    change = data.get("configurationChange")
    values = change.get("values") if isinstance(change, dict) else None
    image = values.get("image") if isinstance(values, dict) else None
    return image if isinstance(image, str) and image else None


def _problem_title(data: dict[str, Any]) -> str | None:
    problem = data.get("problem")
    if not isinstance(problem, dict):
        return None
    for name, value in problem.items():
        if name.lower() == "problemtitle" and isinstance(value, str):
            return value
    return None


# --- (de)serialisation for the store ------------------------------------------------------------------


def stages_to_json(view: SequenceView) -> list[dict[str, Any]]:
    """The stages as the store keeps them (every field, including the change order)."""
    return [
        {
            "name": s.name,
            "sequence": s.sequence,
            "state": s.state,
            "changed": s.changed,
            "triggered_id": s.triggered_id,
            "image": s.image,
            "result": s.result,
            "latest_event": s.latest_event,
            "latest_failed_event": s.latest_failed_event,
            "latest_evaluation": s.latest_evaluation,
        }
        for s in view.stages
    ]


def stages_from_json(raw: list[dict[str, Any]]) -> tuple[StageState, ...]:
    return tuple(
        StageState(
            name=item["name"],
            sequence=item.get("sequence") or "",
            state=item.get("state") or "triggered",
            changed=int(item.get("changed") or 0),
            triggered_id=item.get("triggered_id"),
            image=item.get("image"),
            result=item.get("result"),
            latest_event=copy.deepcopy(item.get("latest_event")),
            latest_failed_event=copy.deepcopy(item.get("latest_failed_event")),
            latest_evaluation=copy.deepcopy(item.get("latest_evaluation")),
        )
        for item in raw
    )
