"""The timeline of one keptnContext across stages: every sequence run, its tasks and their events. Pure.

    build_timeline(items, view=..., stage_order=[...], now=...) -> Timeline

Grouping follows how the sequencer links events (reference §3.3):
- a `<stage>.<sequence>.triggered` opens a run in its stage; the `<stage>.<sequence>.finished` with
  `triggeredid` = that event's id (or, failing that, the stage's current run) closes it;
- a `<task>.triggered` belongs to the current run of its stage (one context is one service, and a
  stage runs one sequence of a service at a time, so "current" is unambiguous);
- `<task>.started|status.changed|finished` and Tidegate's task cancellation carry `triggeredid` = the
  task's `.triggered` id;
- transitions (queued, paused, resumed, aborted, ...) and controls, problems and escalations become
  notes of the run they concern.
A task is finished when it has as many `.finished` as `.started` events and at least one (Keptn's
rule); its result is the worst of its finished results, as the sequencer aggregates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tidegate.readside.history.sequences import SequenceView
from tidegate.schemas.tidegate_events import (
    BOOKKEEPING_PREFIXES,
    CONTROL_TYPE,
    ESCALATED_TYPE,
    TASK_CANCELLED_TYPE,
)

from .records import EventRecord, TimelineItem, TransitionRecord, text
from .states import is_failure

PROBLEM_TYPE = "sh.keptn.events.problem"

_NOTE_TEXT = {
    "queued": "accepted by the sequencer",
    "waiting": "waiting: another sequence of this service holds the stage",
    "started": "started",
    "paused": "paused",
    "resumed": "resumed",
    "timed_out": "timed out",
    "aborted": "aborted",
    "task_delayed": "next task scheduled for later (triggeredAfter)",
    "waiting_for_approval": "waiting for approval",
    "escalated": "escalated to people",
    "deferred": "action deferred (cooldown)",
    "quota_denied": "action denied: the project's hourly action limit is reached",
    "duplicate_declined": "declined: this problem is already being remediated",
    "config_error": "remediation configuration error",
}


@dataclass(frozen=True, slots=True)
class Note:
    time: datetime
    text: str
    tone: str = "neutral"


@dataclass(slots=True)
class TaskRun:
    """One task of a sequence run: its `.triggered` event and the replies to it."""

    name: str
    triggered: EventRecord
    replies: list[EventRecord] = field(default_factory=list)

    @property
    def events(self) -> list[EventRecord]:
        return [self.triggered, *self.replies]

    def _of_kind(self, kind: str) -> list[EventRecord]:
        return [e for e in self.replies if e.parsed.is_task and e.parsed.kind == kind]

    @property
    def started(self) -> list[EventRecord]:
        return self._of_kind("started")

    @property
    def finished(self) -> list[EventRecord]:
        return self._of_kind("finished")

    @property
    def cancelled(self) -> EventRecord | None:
        return next((e for e in self.replies if e.type == TASK_CANCELLED_TYPE), None)

    @property
    def done(self) -> bool:
        finished = len(self.finished)
        return finished > 0 and finished >= len(self.started)

    @property
    def result(self) -> str | None:
        """Keptn's aggregation: fail if any result is not pass/warning, else warning if any, else pass."""
        results = [e.result for e in self.finished]
        if not results:
            return None
        if any(r not in ("pass", "warning") for r in results):
            return "fail"
        return "warning" if "warning" in results else "pass"

    @property
    def status(self) -> str | None:
        statuses = [e.status for e in self.finished]
        if not statuses:
            return None
        for worst in ("errored", "aborted"):
            if worst in statuses:
                return worst
        return "succeeded" if all(s == "succeeded" for s in statuses) else "unknown"

    @property
    def answered_by(self) -> list[str]:
        """Who replied (the sources of `.started`/`.finished`), in order, once each."""
        return list(dict.fromkeys(e.source for e in self.replies if e.source and e.type != TASK_CANCELLED_TYPE))

    @property
    def message(self) -> str | None:
        for event in reversed(self.finished):
            if event.message:
                return event.message
        cancelled = self.cancelled
        return cancelled.message if cancelled is not None else None

    def state(self, run_open: bool) -> str:
        """`finished`, `running` (started, not all finished), `cancelled`, `waiting for approval`,
        `waiting for an executor` (triggered, nobody started it) or `not answered` (the run ended)."""
        if self.done:
            return "finished"
        if self.cancelled is not None:
            return "cancelled"
        if self.started:
            return "running" if run_open else "not finished"
        if not run_open:
            return "not answered"
        return "waiting for approval" if self.name == "approval" else "waiting for an executor"

    def ended(self) -> datetime | None:
        if self.done:
            return max(e.time for e in self.finished)
        cancelled = self.cancelled
        return cancelled.time if cancelled is not None else None

    def duration(self, now: datetime) -> timedelta:
        return (self.ended() or now) - self.triggered.time


@dataclass(slots=True)
class SequenceRun:
    """One sequence in one stage (a delivery, a rollback, one round of a remediation loop)."""

    stage: str
    name: str
    triggered: EventRecord | None
    tasks: list[TaskRun] = field(default_factory=list)
    finished: EventRecord | None = None
    notes: list[Note] = field(default_factory=list)
    last_transition: str | None = None

    @property
    def id(self) -> str | None:
        return self.triggered.id if self.triggered is not None else None

    @property
    def started_at(self) -> datetime | None:
        if self.triggered is not None:
            return self.triggered.time
        return self.tasks[0].triggered.time if self.tasks else None

    @property
    def result(self) -> str | None:
        return self.finished.result if self.finished is not None else None

    def state(self, current: str | None) -> str:
        """Finished: the status of its finished event; else the stage state of the sequence view
        (`current`, when this run is the stage's latest) or what its transitions said."""
        if self.finished is not None:
            return self.finished.status or "succeeded"
        if current:
            return current
        return {"timed_out": "timedOut", "aborted": "aborted", "paused": "paused",
                "waiting_for_approval": "waitingForApproval", "queued": "triggered"}.get(
            self.last_transition or "", "started" if self.tasks else "triggered")

    def duration(self, now: datetime) -> timedelta | None:
        start = self.started_at
        if start is None:
            return None
        end = self.finished.time if self.finished is not None else now
        return end - start


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as the page shows it, with its state resolved."""

    run: SequenceRun
    state: str
    is_open: bool
    duration: timedelta | None


@dataclass(frozen=True, slots=True)
class StageLane:
    stage: str
    runs: list[RunRow]


@dataclass(frozen=True, slots=True)
class Timeline:
    keptn_context: str
    lanes: list[StageLane]
    notes: list[Note]
    event_count: int
    started_at: datetime | None
    updated_at: datetime | None
    problem_title: str | None = None

    def runs(self) -> list[RunRow]:
        return [row for lane in self.lanes for row in lane.runs]

    def open_runs(self) -> list[RunRow]:
        return [row for row in self.runs() if row.is_open]


_OPEN_STATES = frozenset({"triggered", "waiting", "started", "waitingForApproval", "paused"})


class _Builder:
    def __init__(self) -> None:
        self.runs: list[SequenceRun] = []
        self.by_trigger: dict[str, SequenceRun] = {}
        self.current: dict[str, SequenceRun] = {}
        self.tasks: dict[str, TaskRun] = {}
        self.notes: list[Note] = []
        self.problem_title: str | None = None

    def run_for(self, stage: str, name: str = "") -> SequenceRun:
        run = self.current.get(stage)
        if run is None:
            run = SequenceRun(stage=stage, name=name, triggered=None)
            self.runs.append(run)
            self.current[stage] = run
        return run

    def note(self, stage: str | None, note: Note) -> None:
        if stage:
            self.run_for(stage).notes.append(note)
        else:
            self.notes.append(note)

    def event(self, event: EventRecord) -> None:
        parsed = event.parsed
        stage = event.stage
        if any(event.type.startswith(prefix) for prefix in BOOKKEEPING_PREFIXES):
            return
        if parsed.is_sequence and parsed.stage:
            self._sequence_event(event, parsed.stage, parsed.sequence or "", parsed.kind)
        elif parsed.is_task and parsed.kind == "triggered" and stage:
            new_task = TaskRun(name=parsed.task or "", triggered=event)
            self.run_for(stage).tasks.append(new_task)
            self.tasks[event.id] = new_task
        elif parsed.is_task or event.type == TASK_CANCELLED_TYPE:
            answered = self.tasks.get(event.triggered_id or "")
            if answered is not None:
                answered.replies.append(event)
            else:
                self.note(stage, Note(event.time, f"{event.type} from {event.source or 'unknown'} answers no "
                                                  "task of this run", "warning"))
        elif event.type == CONTROL_TYPE:
            state = text(event.data.get("state")) or "?"
            self.note(stage, Note(event.time, f"{state} requested ({event.source or 'unknown'})", "neutral"))
        elif event.type == ESCALATED_TYPE:
            message = event.message or text(event.data.get("reason")) or "no automatic action is left"
            self.note(stage, Note(event.time, f"escalated: {message}", "fail"))
        elif event.type == PROBLEM_TYPE:
            state = text(event.data.get("State")) or text(event.data.get("state")) or "reported"
            title = text(event.data.get("ProblemTitle")) or text(event.data.get("problemTitle")) or "problem"
            self.note(stage, Note(event.time, f"problem {title!r} {state.lower()}", "info"))
        else:
            self.note(stage, Note(event.time, f"{event.type} from {event.source or 'unknown'}"))

    def _sequence_event(self, event: EventRecord, stage: str, name: str, kind: str | None) -> None:
        if kind == "triggered":
            if event.id in self.by_trigger:
                return
            run = SequenceRun(stage=stage, name=name, triggered=event)
            self.runs.append(run)
            self.by_trigger[event.id] = run
            self.current[stage] = run
            problem = event.data.get("problem")
            if isinstance(problem, dict) and self.problem_title is None:
                self.problem_title = text(problem.get("problemTitle")) or text(problem.get("ProblemTitle"))
            return
        run = self.by_trigger.get(event.triggered_id or "") or self.run_for(stage, name)
        if kind == "finished":
            run.finished = event
        else:
            run.notes.append(Note(event.time, f"{event.type} from {event.source or 'unknown'}"))

    def transition(self, transition: TransitionRecord) -> None:
        if not transition.stage:
            return
        run = self.by_trigger.get(transition.sequence_triggered_id or "") or self.run_for(
            transition.stage, transition.sequence or ""
        )
        kind = transition.kind
        if kind in ("task_triggered", "task_started", "task_finished", "finished"):
            return  # the events themselves are shown
        run.last_transition = kind
        wording = _NOTE_TEXT.get(kind, kind.replace("_", " "))
        if transition.message and kind not in ("started",):
            wording = f"{wording}: {transition.message}"
        tone = "fail" if kind in ("timed_out", "aborted", "escalated", "config_error") else "neutral"
        run.notes.append(Note(transition.time, wording, tone))


def build_timeline(
    keptn_context: str,
    items: Iterable[TimelineItem],
    *,
    view: SequenceView | None,
    stage_order: Sequence[str] = (),
    now: datetime,
) -> Timeline:
    """The timeline of a context from its stored events and transitions (in stored order)."""
    builder = _Builder()
    records = list(items)
    for item in records:
        if isinstance(item, EventRecord):
            builder.event(item)
        else:
            builder.transition(item)
    lanes: dict[str, list[RunRow]] = {}
    for run in builder.runs:
        current = None
        if view is not None and run.finished is None:
            stage_state = view.stage(run.stage)
            if stage_state is not None and (stage_state.triggered_id in (None, run.id)):
                current = stage_state.state
        state = run.state(current)
        lanes.setdefault(run.stage, []).append(
            RunRow(run=run, state=state, is_open=state in _OPEN_STATES, duration=run.duration(now))
        )
    order = {name: index for index, name in enumerate(stage_order)}
    first_seen = {name: index for index, name in enumerate(lanes)}
    ordered = sorted(lanes, key=lambda name: (order.get(name, len(order)), first_seen[name]))
    times = [item.time for item in records]
    return Timeline(
        keptn_context=keptn_context,
        lanes=[StageLane(stage=name, runs=lanes[name]) for name in ordered],
        notes=builder.notes,
        event_count=sum(1 for item in records if isinstance(item, EventRecord)),
        started_at=min(times) if times else None,
        updated_at=max(times) if times else None,
        problem_title=builder.problem_title or (view.problem_title if view is not None else None),
    )


def failed_tasks(timeline: Timeline) -> list[tuple[str, TaskRun]]:
    """(stage, task) of every finished task that failed or errored, for the summary at the top."""
    return [
        (lane.stage, task)
        for lane in timeline.lanes
        for row in lane.runs
        for task in row.run.tasks
        if task.done and is_failure(task.result, task.status)
    ]
