"""The sequencer's pure core: `decide(state, event, config, now) -> Decision` for one key.

Inputs it acts on (everything else is `Ignored`):
- `sh.keptn.event.<stage>.<sequence>.triggered`: queue the sequence of the shipyard (snapshotted now)
  and start it when the stage lock is free;
- `sh.keptn.event.<task>.started|finished` with `triggeredid` = an open task of this key: count the
  replies; the task completes when finished == started > 0; then the next task, or the end;
- `sh.tidegate.tick`: fire due timers (triggeredAfter delays, the started timeout, task timeouts);
- `sh.tidegate.sequence.control`: pause, resume or abort one keptnContext in this key.

Determinism: every output id is `derived_id(input.id, purpose)` with a purpose unique within the
decision, and applied inputs are remembered (their offset per input partition when the host gives
one, and a small window of id digests: see `model`), so a redelivered input changes nothing.
The input state is never modified: the core works on a copy of the parts it changes (`_working_copy`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from msgspec.structs import replace

from tidegate.agents.dedupe import handled_before, remember
from tidegate.agents.kernel import Position
from tidegate.agents.merge import merge
from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError
from tidegate.schemas.events import (
    EventType,
    KeptnEvent,
    Result,
    Status,
    TaskKind,
    format_time,
    sequence_type,
    task_type,
)
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.schemas.shipyard import Sequence, Shipyard, Task
from tidegate.schemas.tidegate_events import (
    CONTROL_TYPE,
    TASK_CANCELLED_TYPE,
    TICK_TYPE,
    CancelReason,
    ControlState,
)

from ._durations import format_duration
from .model import (
    STATE_CODEC,
    WANTS_LOCK,
    CurrentTask,
    KeyState,
    SequencerConfig,
    SequenceRun,
    SequenceState,
    TaskSnapshot,
)
from .outputs import AuditKind, AuditRecord, Decision, Emit, Ignored, IgnoreReason, Output
from .rules import aggregate, follow_ups, stops_sequence, task_payload

APPROVAL_TASK = "approval"
TIMEOUT_PROPERTY = "timeout"
_STARTED = TaskKind.STARTED.value  # plain strings: an enum's `.value` is a descriptor call per use
_REPLY_KINDS = frozenset({_STARTED, TaskKind.FINISHED.value})


def decide(state: KeyState | None, event: KeptnEvent, config: SequencerConfig, now: datetime,
           position: Position | None = None) -> Decision[KeyState]:
    """Apply one event of this key to its state; return the new state and the outputs.

    `position`: where the host read the event (None: no offsets, the id window alone recognises a
    redelivery)."""
    if state is not None:
        repeat = handled_before(state.applied, state.recent, event.id, position)
        if repeat is not None:
            return Decision(state, (Ignored(IgnoreReason.DUPLICATE, repeat),))
    work = _Work(state, event, config, now)
    work.handle()
    return work.decision(position)


def next_deadline(state: KeyState | None) -> datetime | None:
    """The earliest moment a tick for this key can change something (None: no timer pending)."""
    if state is None:
        return None
    moments: list[datetime] = []
    for run in state.sequences:
        task = run.current
        if task is None:
            continue
        if task.dispatched:
            if task.started_deadline is not None and task.started == 0 and task.finished == 0:
                moments.append(task.started_deadline)
            if task.timeout_deadline is not None:
                moments.append(task.timeout_deadline)
        elif task.due_at is not None and run.state is SequenceState.STARTED and state.lock == run.triggered_id:
            moments.append(task.due_at)
    return min(moments, default=None)


class _Work:
    """One decision in progress: a private copy of the state plus the outputs collected so far."""

    def __init__(self, state: KeyState | None, event: KeptnEvent, config: SequencerConfig, now: datetime):
        self.original = state
        self.state = _working_copy(state) if state is not None else None
        self.event = event
        self.config = config
        self.now = now
        self.outputs: list[Output] = []
        self.purposes: set[str] = set()
        self.changed = False
        self._key_of: KeyState | None = None  # the state `_key_value` was built for
        self._key_value = Key("")

    # ------------------------------------------------------------------ entry points

    def handle(self) -> None:
        event_type = self.event.parsed_type
        if self.event.type == TICK_TYPE:
            self._on_tick()
        elif self.event.type == CONTROL_TYPE:
            self._on_control()
        elif event_type.is_sequence and event_type.kind == "triggered":
            self._on_sequence_triggered(event_type)
        elif event_type.is_task and event_type.kind in _REPLY_KINDS:
            self._on_task_reply(event_type)
        else:
            self._ignore(IgnoreReason.UNHANDLED_TYPE, f"the sequencer does not act on {self.event.type}")
            return
        if self.state is not None:
            self._schedule()

    def decision(self, position: Position | None) -> Decision[KeyState]:
        if not self.changed:
            return Decision(self.original, tuple(self.outputs))
        state = self.state
        assert state is not None
        # Remember the input (new objects: the working copy shares these with the state it was given).
        state.applied, state.recent = remember(state.applied, state.recent, self.event.id, position,
                                               self.config.remembered_inputs)
        return Decision(state, tuple(self.outputs))

    # ------------------------------------------------------------------ sequence triggered

    def _on_sequence_triggered(self, event_type: EventType) -> None:
        event = self.event
        missing = [name for name in ("project", "stage", "service") if not isinstance(event.data.get(name), str)
                   or not event.data.get(name)]
        if missing:
            self._reject_input(
                f"{event.type} (id {event.id}) has no {', '.join(missing)} in its data: a sequence runs for one "
                "service in one stage, so set data.project, data.stage and data.service"
            )
            return
        project, stage, service = str(event.project), str(event.stage), str(event.service)
        if stage != event_type.stage:
            self._reject_input(
                f"{event.type} (id {event.id}) names stage '{event_type.stage}' in its type but data.stage is "
                f"'{stage}': send the event with the same stage in both"
            )
            return
        if not event.shkeptncontext:
            self._reject_input(
                f"{event.type} (id {event.id}) has no shkeptncontext: send it through the gateway, which assigns "
                "one, or set the shkeptncontext attribute"
            )
            return
        state = self._key_state(Key(project, stage, service))
        if state is None:
            return
        if state.sequence(event.id) is not None:
            self._ignore(IgnoreReason.DUPLICATE, f"sequence {event.id} is already active")
            return
        context = event.shkeptncontext
        name = str(event_type.sequence)
        if context in state.aborted_contexts:
            self._finish_unstarted(
                name, Status.ABORTED, Result.PASS, AuditKind.ABORTED,
                f"Sequence '{stage}.{name}' was not started: run {context} was aborted in this stage before "
                "this sequence arrived",
            )
            return
        definition, problem = self._definition(project, stage, name)
        if definition is None:
            self._finish_unstarted(name, Status.ERRORED, Result.FAIL, AuditKind.FINISHED,
                                   f"Unable to start sequence '{name}' in stage '{stage}' of project "
                                   f"'{project}': {problem}")
            return
        run = SequenceRun(
            triggered_id=event.id,
            keptn_context=context,
            name=name,
            order=state.next_order,
            triggered_at=self.now,
            gitcommitid=event.gitcommitid,
            tasks=[TaskSnapshot.of(task) for task in definition.tasks],
            payload={**event.data, "project": project, "stage": stage, "service": service},
        )
        state.sequences.append(run)
        size = STATE_CODEC.size(state)
        if size > self.config.max_state_bytes:
            # Kept, the trigger's data would make the key's state too large to store (and one key's state
            # record that the broker refuses would stop every key's progress): the sequence ends here.
            state.sequences.pop()
            self._finish_unstarted(name, Status.ERRORED, Result.FAIL, AuditKind.FINISHED,
                                   f"Unable to start sequence '{name}' in stage '{stage}' of project '{project}': "
                                   f"with this trigger's data the service's state would hold {size} bytes, over "
                                   f"the limit of {self.config.max_state_bytes} bytes (TIDEGATE_MAX_STATE_BYTES). "
                                   "Send less data with the trigger (it is kept until the sequence ends), or "
                                   "trigger again once the service's queued sequences have finished")
            return
        state.next_order += 1
        self.changed = True
        self._audit(AuditKind.QUEUED, run)
        if context in state.paused_contexts:
            self._pause(run)

    def _definition(self, project: str, stage: str, name: str) -> tuple[Sequence | None, str]:
        """The sequence definition to snapshot, or None and what is wrong with it."""
        shipyard: Shipyard | None = self.config.shipyard_for(project)
        if shipyard is None:
            return None, "the project has no shipyard. Upload a shipyard for the project, then trigger again"
        stage_def = shipyard.stage(stage)
        if stage_def is None:
            return None, (f"the shipyard has no stage '{stage}' (stages: {', '.join(shipyard.stage_names)}). "
                          "Add the stage to the shipyard or trigger one of its stages")
        definition = stage_def.sequence(name, remediation_wait=self.config.remediation_wait)
        if definition is None:
            known = sorted({seq.name for seq in stage_def.sequences} | {"evaluation", "remediation"})
            return None, (f"stage '{stage}' has no sequence '{name}' (sequences: {', '.join(known)}). "
                          "Add the sequence to the stage in the shipyard or trigger one of these")
        if not definition.tasks:
            return None, f"sequence '{name}' has no tasks. Add at least one task to it in the shipyard"
        for task in definition.tasks:
            for field, text in (("triggeredAfter", task.triggeredAfter), (TIMEOUT_PROPERTY, _timeout_text(task))):
                if text is None:
                    continue
                try:
                    length = parse_duration(text)
                except DurationError as err:
                    return None, f"task '{task.name}' has an invalid {field}: {err}"
                if field == TIMEOUT_PROPERTY and length <= timedelta(0):
                    return None, (f"task '{task.name}' has timeout '{text}': a timeout must be longer than "
                                  "zero, e.g. 30m")
        return definition, ""

    def _finish_unstarted(self, name: str, status: Status, result: Result, kind: AuditKind, message: str) -> None:
        """End a sequence that never ran: its `.finished` answers the trigger, with no follow-ups."""
        event = self.event
        key = self._key
        data: dict[str, Any] = {"project": key.project, "stage": key.stage, "service": key.service}
        if isinstance(event.data.get("labels"), dict):
            data["labels"] = event.data["labels"]
        data.update({"status": status.value, "result": result.value, "message": message})
        self._emit(
            KeptnEvent(
                id=self._id(f"{event.id}:finished"),
                source=self.config.source,
                type=sequence_type(key.stage, name, "finished"),
                time=self.now,
                shkeptncontext=event.shkeptncontext,
                triggeredid=event.id,
                gitcommitid=event.gitcommitid,
                data=data,
            ),
            key,
        )
        self.changed = True
        self.outputs.append(self._audit_record(
            kind, str(event.shkeptncontext), name, event.id, index=None,
            fields={"result": result.value, "status": status.value, "message": message, "detail": {"started": False}},
        ))

    # ------------------------------------------------------------------ task replies

    def _on_task_reply(self, event_type: EventType) -> None:
        event = self.event
        state = self.state
        triggered_id = event.triggeredid
        run = _run_of_task(state, triggered_id) if state is not None and triggered_id else None
        if run is None or run.current is None:
            self._ignore(IgnoreReason.UNKNOWN_TRIGGEREDID,
                         f"{event.type} (id {event.id}) answers {triggered_id or 'no triggeredid'}, which is not "
                         "an open task of this key (finished, aborted, timed out or never triggered here)")
            return
        task = run.current
        if task.name != event_type.task:
            self._ignore(IgnoreReason.UNKNOWN_TRIGGEREDID,
                         f"{event.type} (id {event.id}) answers {triggered_id}, which is a '{task.name}' task")
            return
        self.changed = True
        task.started_deadline = None  # any reply proves a connector took the task
        if event_type.kind == _STARTED:
            task.started += 1
            if task.started == 1:
                self._audit(AuditKind.TASK_STARTED, run, task=task.name, task_triggered_id=task.triggered_id,
                            detail={"source": event.source})
            return
        task.finished += 1
        task.results.append(_opt_str(event.data.get("result")))
        task.statuses.append(_opt_str(event.data.get("status")))
        task.properties = _merge_data(task.properties, event.data)
        task.message = _opt_str(event.data.get("message"))
        # Keptn's rule: complete when every started responder finished. A lone `.finished` never
        # completes a task, and a `.finished` before a second `.started` completes it early (#7172).
        if task.started > 0 and task.finished == task.started:
            self._complete_task(run)

    def _complete_task(self, run: SequenceRun) -> None:
        task = run.current
        assert task is not None
        result, status = aggregate(task.results, task.statuses)
        result_text, status_text = result.value, status.value
        run.payload = _merge_data(run.payload, task.properties)
        run.payload["result"] = result_text
        run.payload["status"] = status_text
        run.last_task, run.last_result, run.last_status = task.name, result_text, status_text
        run.last_message = task.message
        run.next_index = task.index + 1
        run.current = None
        self._audit(AuditKind.TASK_FINISHED, run, task=task.name, task_triggered_id=task.triggered_id,
                    result=result_text, status=status_text, message=task.message,
                    detail={"started": task.started, "finished": task.finished})
        if run.state is not SequenceState.PAUSED:  # paused: the next step waits for resume
            self._proceed(run)

    # ------------------------------------------------------------------ moving on

    def _proceed(self, run: SequenceRun) -> None:
        """After a task completed: finish the sequence, or dispatch the next task once it holds the lock."""
        if stops_sequence(run.last_result, run.last_status) or run.next_index >= len(run.tasks):
            self._finish(run, _status(run.last_status), _result(run.last_result), run.last_message,
                         AuditKind.FINISHED)
            return
        if self._acquire(run):
            run.state = SequenceState.STARTED
            self._start_task(run)
        else:
            run.state = SequenceState.WAITING
            self._audit(AuditKind.WAITING, run, detail={"lock": self._lock_holder_detail()})

    def _acquire(self, run: SequenceRun) -> bool:
        """Take the stage lock unless another sequence holds it or an older one waits for it (FIFO)."""
        state = self._state
        if state.lock == run.triggered_id:
            return True
        if state.lock is not None:
            return False
        if any(other.state in WANTS_LOCK and other.order < run.order for other in state.sequences):
            return False
        state.lock = run.triggered_id
        return True

    def _schedule(self) -> None:
        """Hand a free lock to the oldest sequence that wants it, until one keeps it."""
        state = self._state
        while state.lock is None:
            waiting = sorted((r for r in state.sequences if r.state in WANTS_LOCK), key=lambda r: r.order)
            if not waiting:
                return
            run = waiting[0]
            state.lock = run.triggered_id
            self.changed = True
            if run.state is SequenceState.TRIGGERED:
                self._audit(AuditKind.STARTED, run)
            run.state = SequenceState.STARTED
            if run.current is not None and not run.current.dispatched:
                if run.current.due_at is None or run.current.due_at <= self.now:
                    self._send_task(run)
            else:
                self._start_task(run)

    def _start_task(self, run: SequenceRun) -> None:
        """Begin task `next_index`: dispatch now, or after its `triggeredAfter` delay (holding the lock)."""
        task = run.tasks[run.next_index]
        delay = parse_duration(task.triggeredAfter) if task.triggeredAfter else timedelta(0)
        run.current = CurrentTask(index=run.next_index, name=task.name, due_at=self.now + delay)
        if delay > timedelta(0):
            self._audit(AuditKind.TASK_DELAYED, run, task=task.name,
                        detail={"due_at": _iso(self.now + delay), "triggeredAfter": task.triggeredAfter})
        else:
            self._send_task(run)

    def _send_task(self, run: SequenceRun) -> None:
        current = run.current
        assert current is not None
        task = run.tasks[current.index]
        event = KeptnEvent(
            id=self._id(f"{run.triggered_id}:task:{current.index}:triggered"),
            source=self.config.source,
            type=task_type(task.name, TaskKind.TRIGGERED),
            time=self.now,
            shkeptncontext=run.keptn_context,
            gitcommitid=run.gitcommitid,
            data=task_payload(run.payload, task),
        )
        self._emit(event, self._key, topic="tasks", task=task.name)
        current.triggered_id = event.id
        current.dispatched_at = self.now
        current.due_at = None
        current.started_deadline = self.now + self.config.started_timeout
        timeout = _timeout_text(task)
        current.timeout_deadline = self.now + parse_duration(timeout) if timeout else None
        self._audit(AuditKind.TASK_TRIGGERED, run, task=task.name, task_triggered_id=event.id)
        if task.name == APPROVAL_TASK:
            # Waiting for a human must not hold up the other sequences of this service (Keptn's rule).
            run.state = SequenceState.WAITING_FOR_APPROVAL
            self._release(run)
            self._audit(AuditKind.WAITING_FOR_APPROVAL, run, task=task.name, task_triggered_id=event.id)

    def _finish(self, run: SequenceRun, status: Status, result: Result, message: str | None,
                kind: AuditKind, cancel: CancelReason | None = None) -> None:
        """Emit `<stage>.<sequence>.finished`, drop the run, and (normal end only) trigger follow-ups."""
        key = self._key
        data: dict[str, Any] = {"project": key.project, "stage": key.stage, "service": key.service}
        if isinstance(run.payload.get("labels"), dict):
            data["labels"] = run.payload["labels"]
        data.update({"status": status.value, "result": result.value, "message": message or ""})
        task = run.current
        if cancel is not None and task is not None and task.dispatched:
            self._emit_cancellation(run, task, cancel, message or "")
        self._emit(
            KeptnEvent(
                id=self._id(f"{run.triggered_id}:finished"),
                source=self.config.source,
                type=sequence_type(key.stage, run.name, "finished"),
                time=self.now,
                shkeptncontext=run.keptn_context,
                triggeredid=run.triggered_id,
                gitcommitid=run.gitcommitid,
                data=data,
            ),
            key,
        )
        self._release(run)
        self._state.sequences = [r for r in self._state.sequences if r is not run]
        self.changed = True
        self._audit(kind, run, task=task.name if task else run.last_task,
                    task_triggered_id=task.triggered_id if task else None,
                    result=result.value, status=status.value, message=message or "")
        if kind is AuditKind.FINISHED:  # abort and timeout never trigger follow-ups (Keptn §1.2)
            self._trigger_follow_ups(run, result)

    def _trigger_follow_ups(self, run: SequenceRun, result: Result) -> None:
        shipyard = self.config.shipyard_for(self._key.project)
        if shipyard is None:
            return
        data = dict(run.payload)
        if "message" in data:  # it described the last task, not the new sequence (as §3.4 clears it)
            data["message"] = ""
        for follow_up in follow_ups(
            shipyard, self._key.stage, run.name, result.value, run.last_task, remediation_wait=self.config.remediation_wait
        ):
            key = Key(self._key.project, follow_up.stage, self._key.service)
            self._emit(
                KeptnEvent(
                    id=self._id(f"{run.triggered_id}:follow-up:{follow_up.stage}:{follow_up.sequence}"),
                    source=self.config.source,
                    type=sequence_type(follow_up.stage, follow_up.sequence, "triggered"),
                    time=self.now,
                    shkeptncontext=run.keptn_context,
                    data={**data, "stage": follow_up.stage},
                ),
                key,
            )

    def _emit_cancellation(self, run: SequenceRun, task: CurrentTask, reason: CancelReason, message: str) -> None:
        key = self._key
        self._emit(
            KeptnEvent(
                id=self._id(f"{run.triggered_id}:task:{task.index}:cancelled"),
                source=self.config.source,
                type=TASK_CANCELLED_TYPE,
                time=self.now,
                shkeptncontext=run.keptn_context,
                triggeredid=task.triggered_id,
                gitcommitid=run.gitcommitid,
                data={"project": key.project, "stage": key.stage, "service": key.service,
                      "task": task.name, "reason": reason.value, "message": message},
            ),
            key, topic="tasks", task=task.name,
        )

    def _release(self, run: SequenceRun) -> None:
        if self._state.lock == run.triggered_id:
            self._state.lock = None

    # ------------------------------------------------------------------ timers

    def _on_tick(self) -> None:
        if self.state is None:
            self._ignore(IgnoreReason.NOTHING_DUE, "no sequence is active for this key")
            return
        state = self._key_state(Key.of_data(self.event.data))
        if state is None:
            return
        fired = False
        for run in sorted(state.sequences, key=lambda r: r.order):
            task = run.current
            if task is None or not _holds(state, run):
                continue
            if task.dispatched:
                fired = self._fire_task_timers(run, task) or fired
            elif (task.due_at is not None and task.due_at <= self.now and run.state is SequenceState.STARTED
                  and state.lock == run.triggered_id):
                self._send_task(run)
                fired = True
        if fired:
            self.changed = True
        else:
            self._ignore(IgnoreReason.NOTHING_DUE, "no timer of this key is due")

    def _fire_task_timers(self, run: SequenceRun, task: CurrentTask) -> bool:
        where = f"Sequence '{self._key.stage}.{run.name}'"
        if (task.started_deadline is not None and task.started == 0 and task.finished == 0
                and task.started_deadline <= self.now):
            waited = format_duration(self.config.started_timeout)
            self._finish(
                run, Status.ERRORED, Result.FAIL,
                f"{where} timed out while waiting for task {task_type(task.name, 'triggered')} to receive a "
                f"correlating .started or .finished event (none within {waited}). Check that a connector "
                f"subscribes to tasks.{task.name} and is running.",
                AuditKind.TIMED_OUT, CancelReason.TIMED_OUT,
            )
            return True
        if task.timeout_deadline is not None and task.timeout_deadline <= self.now:
            limit = _timeout_text(run.tasks[task.index])
            self._finish(
                run, Status.ERRORED, Result.FAIL,
                f"{where} timed out: task '{task.name}' did not finish within its timeout of {limit} "
                f"(shipyard property 'timeout'; {task.started} started, {task.finished} finished). The task "
                f"was cancelled; check the connector for tasks.{task.name} or raise the timeout.",
                AuditKind.TIMED_OUT, CancelReason.TIMED_OUT,
            )
            return True
        return False

    # ------------------------------------------------------------------ pause / resume / abort

    def _on_control(self) -> None:
        event = self.event
        raw_state = event.data.get("state")
        context = event.shkeptncontext
        try:
            control = ControlState(str(raw_state))
        except ValueError:
            self._reject_input(f"{CONTROL_TYPE} (id {event.id}) has state {raw_state!r}: use pause, resume or abort")
            return
        if not context:
            self._reject_input(f"{CONTROL_TYPE} (id {event.id}) has no shkeptncontext: say which run to {control}")
            return
        missing = [name for name in ("project", "stage", "service") if not event.data.get(name)]
        if missing:
            self._reject_input(f"{CONTROL_TYPE} (id {event.id}) has no {', '.join(missing)} in its data: send one "
                               "control event per project/stage/service the run touches")
            return
        if self.state is None and control is ControlState.RESUME:
            self._ignore(IgnoreReason.NOTHING_DUE, f"run {context} has nothing to resume in this key")
            return
        state = self._key_state(Key.of_data(event.data))
        if state is None:
            return
        runs = [r for r in sorted(state.sequences, key=lambda r: r.order) if r.keptn_context == context]
        paused = [r for r in runs if r.state is SequenceState.PAUSED]
        remembered = {
            ControlState.PAUSE: context in state.paused_contexts and len(paused) == len(runs),
            ControlState.RESUME: context not in state.paused_contexts and not paused,
            ControlState.ABORT: context in state.aborted_contexts and not runs,
        }
        if remembered[control]:
            self._ignore(IgnoreReason.NOTHING_DUE, f"run {context} is already in the state '{control.value}' "
                                                   "asks for in this key")
            return
        limit = self.config.remembered_contexts
        self.changed = True
        if control is ControlState.PAUSE:
            # Remembered so that a sequence of this run arriving later starts paused.
            if context not in state.paused_contexts:
                state.paused_contexts = [*state.paused_contexts, context][-limit:]
            for run in runs:
                if run.state is not SequenceState.PAUSED:
                    self._pause(run)
        elif control is ControlState.RESUME:
            state.paused_contexts = [c for c in state.paused_contexts if c != context]
            for run in paused:
                if _holds(state, run):
                    self._resume(run)
        else:
            # Remembered so that a sequence of this run arriving later is not started.
            state.paused_contexts = [c for c in state.paused_contexts if c != context]
            if context not in state.aborted_contexts:
                state.aborted_contexts = [*state.aborted_contexts, context][-limit:]
            for run in runs:
                self._finish(run, Status.ABORTED, Result.PASS,
                             f"Sequence '{self._key.stage}.{run.name}' was aborted", AuditKind.ABORTED,
                             CancelReason.ABORTED)

    def _pause(self, run: SequenceRun) -> None:
        """The running task is not interrupted; its replies are counted, but the next step waits."""
        run.state_before_pause = run.state
        run.state = SequenceState.PAUSED
        self._release(run)
        self.changed = True
        self._audit(AuditKind.PAUSED, run, detail={"state_before_pause": run.state_before_pause.value})

    def _resume(self, run: SequenceRun) -> None:
        before = run.state_before_pause or SequenceState.TRIGGERED
        run.state_before_pause = None
        self._audit(AuditKind.RESUMED, run, detail={"state_before_pause": before.value})
        task = run.current
        if before in WANTS_LOCK:
            run.state = before
        elif task is None:  # its task completed while paused
            run.state = SequenceState.STARTED
            self._proceed(run)
        elif not task.dispatched:  # a delayed task: it must hold the lock again before it is sent
            run.state = SequenceState.WAITING
        else:  # its task is still running; it needs the lock only for the next one
            run.state = before

    # ------------------------------------------------------------------ helpers

    @property
    def _state(self) -> KeyState:
        assert self.state is not None
        return self.state

    @property
    def _key(self) -> Key:
        # Built once per decision (every audit record needs it); the core never changes a state's key
        # fields, and `_key_state` creates the only other state a decision can have.
        state = self._state
        if self._key_of is not state:
            self._key_value = Key(state.project, state.stage, state.service)
            self._key_of = state
        return self._key_value

    def _key_state(self, key: Key) -> KeyState | None:
        """The working state for `key`, created on first use; None (and a DLQ entry) if misrouted."""
        if self.state is None:
            self.state = KeyState(project=key.project, stage=key.stage, service=key.service)
            return self.state
        if Key(self.state.project, self.state.stage, self.state.service) != key:
            self._reject_input(f"event {self.event.id} for {key} was delivered to the state of {self._key}: the "
                               "message key must be project/stage/service of the event's data")
            return None
        return self.state

    def _lock_holder_detail(self) -> str | None:
        holder = self._state.sequence(self._state.lock) if self._state.lock else None
        return f"{holder.name} ({holder.keptn_context})" if holder else None

    def _id(self, purpose: str) -> str:
        unique = purpose
        counter = 1
        while unique in self.purposes:  # never expected; keeps ids unique if a step repeats in one decision
            counter += 1
            unique = f"{purpose}#{counter}"
        self.purposes.add(unique)
        return derived_id(self.event.id, unique)

    def _emit(self, event: KeptnEvent, key: Key, topic: str = "events", task: str | None = None) -> None:
        self.outputs.append(Emit(event, key, f"tasks.{task}" if topic == "tasks" else "events"))

    def _audit(self, kind: AuditKind, run: SequenceRun, **fields: Any) -> None:
        current = run.current
        index = current.index if current is not None else run.next_index
        self.outputs.append(self._audit_record(kind, run.keptn_context, run.name, run.triggered_id, index, fields))

    def _audit_record(self, kind: AuditKind, context: str, sequence: str, triggered_id: str, index: int | None,
                      fields: dict[str, Any]) -> AuditRecord:
        """`fields`: the record's optional fields, passed as one dict (unpacking `**fields` twice cost more)."""
        # A StrEnum formats as its value, without the `.value` descriptor call.
        return AuditRecord(
            id=self._id(f"audit:{kind}:{triggered_id}:{index if index is not None else '-'}"),
            kind=kind, time=self.now, keptn_context=context, key=self._key, sequence=sequence,
            sequence_triggered_id=triggered_id, **fields,
        )

    def _ignore(self, reason: IgnoreReason, detail: str) -> None:
        self.outputs.append(Ignored(reason, detail))

    def _reject_input(self, detail: str) -> None:
        self._ignore(IgnoreReason.INVALID, detail)


def _run_of_task(state: KeyState, triggered_id: str) -> SequenceRun | None:
    """The active sequence whose current task was triggered with `triggered_id`."""
    for run in state.sequences:
        current = run.current
        if current is not None and current.triggered_id == triggered_id:
            return run
    return None


def _working_copy(state: KeyState) -> KeyState:
    """A copy of `state` the core may change without touching `state` (a deep copy cost ~35% of a decision).

    Fresh: the KeyState, each SequenceRun and CurrentTask (their fields are reassigned), and the lists
    the core appends to in place (`sequences`, `results`, `statuses`). Shared: everything the core only
    ever replaces, never changes in place: the task snapshots, `payload` and `properties` (each merge
    returns a new dict), `applied`, `recent` and the context lists.
    """
    return replace(state, sequences=[_run_copy(run) for run in state.sequences])


def _run_copy(run: SequenceRun) -> SequenceRun:
    task = run.current
    if task is None:
        return replace(run)
    return replace(run, current=replace(task, results=list(task.results), statuses=list(task.statuses)))


def _holds(state: KeyState, run: SequenceRun) -> bool:
    """Whether `run` is still active (it may have ended earlier in the same decision)."""
    return any(r is run for r in state.sequences)


def _merge_data(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    merged = merge(earlier, later)
    assert isinstance(merged, dict)
    return merged


def _timeout_text(task: Task | TaskSnapshot) -> str | None:
    props = task.properties or {}
    value = props.get(TIMEOUT_PROPERTY)
    return None if value is None else str(value)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_STATUSES = {status.value: status for status in Status}
_RESULTS = {result.value: result for result in Result}


def _status(value: str | None) -> Status:
    return _STATUSES.get(value or "", Status.UNKNOWN)


def _result(value: str | None) -> Result:
    return _RESULTS.get(value or "", Result.FAIL)


def _iso(moment: datetime) -> str:
    return format_time(moment)
