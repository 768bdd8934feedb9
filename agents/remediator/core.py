"""The remediator's decisions for one key and one event (pure: no I/O).

    decide(state, event, remediation, settings, now, position) -> Decision(state, outputs)

Inputs it acts on:
- `sh.keptn.event.get-action.triggered` (from `tasks.get-action`): always answered, `.started` at
  once, then `.finished`:
  - with the next action of remediation.yaml for the problem (`action: {name, action, description,
    value}`, `get-action: {actionIndex: N+1}`), actions chosen by `rootCause`, then `problemTitle`,
    then `default` (Keptn's order, §5.2). The step counter is per problem (keptnContext) in this
    state, so the loop advances however the sequence payload was merged;
  - `succeeded/fail` + escalation when the actions are exhausted or there are none for the problem;
  - `errored/fail` + escalation when remediation.yaml is missing or unusable (message names the file);
  - `succeeded/fail` without action when the same problem (same ProblemID, else the same title and
    root cause) is already being remediated in another run: one problem, one remediation;
  - `succeeded/pass` "problem closed" when the problem's alert has resolved, after an abort of the
    run (see below), so no stale action from the merged payload is ever executed.
  Safety Keptn lacked: after an action on a service, the next one waits `cooldown` (the `.finished`
  is deferred; a tick ends the wait), and with `max_actions_per_hour > 0` every action needs a grant
  from its project (a quota request keyed by the project, answered by the worker that owns that key).
  A denied grant fails the step and escalates.
- `sh.keptn.events.problem` with `State: CLOSED`: the problem is closed; if its run is still going,
  the remediator sends the sequencer's `sh.tidegate.sequence.control` abort for that keptnContext
  (the sequencer exposes it: the run ends `aborted`, running tasks get `task.cancelled`, no
  follow-up sequence), and answers a get-action still waiting for it with pass "problem closed".
- `sh.keptn.event.<stage>.remediation.finished`: pass/warning marks the problem resolved, aborted
  marks it aborted (a new run for the same problem may then start); fail keeps it open (the shipyard's
  loop re-triggers the run with the same context).
- the remediator's own quota and tick events (`agents.remediator.events`).

A redelivered input changes nothing: its offset is at or below the one its key applied from that
partition (`position`, where the host read it), or its id is among the last ones applied
(`agents.dedupe`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from tidegate.agents.kernel import Position
from tidegate.agents.remediator.events import GET_ACTION, REMEDIATION_SEQUENCE
from tidegate.agents.remediator.model import (
    ActionTaken,
    PendingAnswer,
    ProblemRecord,
    ProblemStatus,
    RemediationState,
    Waiting,
)
from tidegate.agents.remediator.outputs import (
    AuditKind,
    AuditRecord,
    Decision,
    Emit,
    Ignored,
    IgnoreReason,
    Output,
)
from tidegate.agents.remediator.settings import RemediatorSettings
from tidegate.schemas.events import EventType, KeptnEvent, Result, Status, TaskKind, task_type
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.schemas.payloads import GetActionTriggered, Problem, ProblemEvent
from tidegate.schemas.remediation import Action, Remediation
from tidegate.schemas.tidegate_events import (
    ESCALATED_TYPE,
    QUOTA_DENIED_TYPE,
    QUOTA_GRANTED_TYPE,
    QUOTA_REQUESTED_TYPE,
    REMEDIATION_TICK_TYPE,
    ControlState,
    control_event,
)

QUOTA_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class RemediationFileProblem:
    """remediation.yaml exists but cannot be used; `message` names the file and what is wrong."""

    path: str
    message: str


RemediationInput = Remediation | RemediationFileProblem | None
"""What the shell found for the key: the file, why it is unusable, or None when there is none."""


@dataclass(frozen=True, slots=True)
class _Reply:
    """Where a get-action answer goes: the task it answers."""

    triggered_id: str
    keptn_context: str
    gitcommitid: str | None
    labels: dict[str, Any] | None


def decide(
    state: RemediationState | None,
    event: KeptnEvent,
    remediation: RemediationInput,
    settings: RemediatorSettings,
    now: datetime,
    position: Position | None = None,
) -> Decision[RemediationState]:
    """The new state of the event's key and what to send. `state` is never modified. `position`: where
    the host read the event (None: no offsets; the remembered ids alone recognise a redelivery)."""
    work = _Work(state, event, remediation, settings, now, position)
    work.handle()
    return work.decision()


def next_deadline(state: RemediationState | None) -> datetime | None:
    """When the shell must send this key a tick: the earliest end of a cooldown an action waits for."""
    if state is None:
        return None
    return min(
        (p.due_at for p in state.pending if p.waiting is Waiting.COOLDOWN and p.due_at is not None), default=None
    )


def problem_identity(problem: Problem) -> str:
    """What makes two runs the same problem: the ProblemID (the alert's fingerprint), else title and root cause."""
    if problem.ProblemID:
        return f"id:{problem.ProblemID}"
    return f"title:{problem.rootCause or ''}|{problem.problemTitle or ''}"


def is_relevant(event_type: str) -> bool:
    """Whether the remediator acts on events of this type at all (the shell lets the rest of `events`
    pass before they are decoded)."""
    parsed = EventType.parse(event_type)
    if parsed.category == "problem" or event_type in (
        QUOTA_REQUESTED_TYPE, QUOTA_GRANTED_TYPE, QUOTA_DENIED_TYPE, REMEDIATION_TICK_TYPE,
    ):
        return True
    if parsed.is_sequence and parsed.sequence == REMEDIATION_SEQUENCE and parsed.kind == "finished":
        return True
    return parsed.is_task and parsed.task == GET_ACTION and parsed.kind == TaskKind.TRIGGERED.value


class _Work:
    """One decision in progress: a private copy of the state plus the outputs collected so far."""

    def __init__(
        self,
        state: RemediationState | None,
        event: KeptnEvent,
        remediation: RemediationInput,
        settings: RemediatorSettings,
        now: datetime,
        position: Position | None = None,
    ) -> None:
        self.original = state
        self.state = state.model_copy(deep=True) if state is not None else None
        self.event = event
        self.remediation = remediation
        self.settings = settings
        self.now = now
        self.position = position
        self.key = Key.of_data(event.data)
        self.outputs: list[Output] = []
        self.changed = False

    # ------------------------------------------------------------------ entry points

    def handle(self) -> None:
        event = self.event
        if self.original is not None:
            before = self.original.handled_before(event.id, self.position)
            if before is not None:
                self._ignore(IgnoreReason.DUPLICATE, f"{event.type}: {before}")
                return
        if self.state is not None:
            # Expired problems must not count as duplicates in this very decision.
            self._forget_old_problems(self.state)
        parsed = event.parsed_type
        if parsed.is_task and parsed.task == GET_ACTION and parsed.kind == TaskKind.TRIGGERED.value:
            self._on_get_action()
        elif parsed.category == "problem":
            self._on_problem()
        elif parsed.is_sequence and parsed.sequence == REMEDIATION_SEQUENCE and parsed.kind == "finished":
            self._on_remediation_finished()
        elif event.type == QUOTA_REQUESTED_TYPE:
            self._on_quota_request()
        elif event.type in (QUOTA_GRANTED_TYPE, QUOTA_DENIED_TYPE):
            self._on_quota_answer(granted=event.type == QUOTA_GRANTED_TYPE)
        elif event.type == REMEDIATION_TICK_TYPE:
            self._on_tick()
        else:
            self._ignore(IgnoreReason.UNHANDLED_TYPE, f"the remediator does not act on {event.type}")

    def decision(self) -> Decision[RemediationState]:
        if not self.changed or self.state is None:
            return Decision(self.original, tuple(self.outputs))
        state = self.state
        state.remember(self.event.id, self.position, self.settings.remembered_inputs)
        self._forget_old_problems(state)
        return Decision(state, tuple(self.outputs))

    def _forget_old_problems(self, state: RemediationState) -> None:
        # A problem nobody mentioned for the TTL is forgotten (its CLOSED may have been lost), so it
        # cannot block a new remediation of the same problem forever.
        cutoff = self.now - self.settings.problem_ttl
        waiting = {p.keptn_context for p in state.pending}
        kept = [p for p in state.problems if p.updated_at >= cutoff or p.keptn_context in waiting]
        limit = self.settings.remembered_problems
        while len(kept) > limit:
            oldest_done = next((p for p in kept if not p.status.active and p.keptn_context not in waiting), None)
            kept.remove(oldest_done if oldest_done is not None else kept[0])
        state.problems = kept

    # ------------------------------------------------------------------ get-action

    def _on_get_action(self) -> None:
        event = self.event
        key = self.key
        if not (key.project and key.stage and key.service):
            self._ignore(
                IgnoreReason.INVALID,
                f"{event.type} (id {event.id}) has no project, stage or service in its data: a remediation runs "
                "for one service in one stage",
            )
            return
        reply = _Reply(
            triggered_id=event.id,
            keptn_context=event.shkeptncontext or "",
            gitcommitid=event.gitcommitid,
            labels=event.data.get("labels") if isinstance(event.data.get("labels"), dict) else None,
        )
        state = self._key_state()
        self._emit_started(reply)
        try:
            data = GetActionTriggered.model_validate(event.data)
        except ValidationError as error:
            self._finish(reply, Status.ERRORED, Result.FAIL,
                         f"get-action.triggered (id {event.id}) has a payload the remediator cannot read: "
                         f"{_first_error(error)}; the problem block must be an object with problemTitle and rootCause")
            return
        if not reply.keptn_context:
            self._finish(reply, Status.ERRORED, Result.FAIL,
                         f"get-action.triggered (id {event.id}) has no shkeptncontext: the remediator counts the "
                         "steps of a problem per run, so the event must carry the run's keptnContext")
            return
        problem = data.problem
        record = state.problem(reply.keptn_context)
        if record is None:
            record = self._open_problem(reply.keptn_context, problem)
            duplicate = self._active_duplicate(record)
            if duplicate is not None:
                self._decline_duplicate(reply, record, duplicate)
                return
        else:
            record.updated_at = self.now
            if self._answer_inactive(reply, record):
                return
        self._next_action(reply, record)

    def _open_problem(self, context: str, problem: Problem) -> ProblemRecord:
        assert self.state is not None
        record = ProblemRecord(
            keptn_context=context,
            identity=problem_identity(problem),
            title=problem.problemTitle or "",
            root_cause=problem.rootCause or "",
            problem=problem.model_dump(mode="json", exclude_none=True),
            opened_at=self.now,
            updated_at=self.now,
        )
        self.state.problems.append(record)
        return record

    def _active_duplicate(self, record: ProblemRecord) -> ProblemRecord | None:
        assert self.state is not None
        return next(
            (p for p in self.state.problems
             if p is not record and p.identity == record.identity and p.status.active),
            None,
        )

    def _decline_duplicate(self, reply: _Reply, record: ProblemRecord, duplicate: ProblemRecord) -> None:
        record.status = ProblemStatus.DECLINED
        record.duplicate_of = duplicate.keptn_context
        message = (
            f"problem '{_name(record)}' of {self.key.service} in {self.key.stage} is already being remediated in "
            f"run {duplicate.keptn_context} (status {duplicate.status.value}, {duplicate.steps} action(s) so far); "
            "this run takes no action so that two remediations never act on one problem"
        )
        self._finish(reply, Status.SUCCEEDED, Result.FAIL, message)
        self._audit(AuditKind.DUPLICATE_DECLINED, reply, record, result=Result.FAIL, message=message,
                    detail={"duplicate_of": duplicate.keptn_context})

    def _answer_inactive(self, reply: _Reply, record: ProblemRecord) -> bool:
        """Answer a get-action for a problem no longer open; False when the problem is (again) open."""
        if record.status is ProblemStatus.CLOSED:
            # Abort first (same key, same partition, so the sequencer sees it before the answer): a pass
            # would otherwise let the run go on to `action` with the previous action still in its payload.
            self._emit_abort(reply.keptn_context, purpose=f"{reply.triggered_id}:abort")
            message = f"problem '{_name(record)}' is closed (its alert resolved); no further action"
            self._finish(reply, Status.SUCCEEDED, Result.PASS, message)
            self._audit(AuditKind.CLOSED_ANSWERED, reply, record, result=Result.PASS, message=message)
            return True
        if record.status is ProblemStatus.ESCALATED:
            self._finish(reply, Status.SUCCEEDED, Result.FAIL,
                         f"problem '{_name(record)}' was escalated to people after {record.steps} action(s); "
                         "the remediator takes no further action for this run")
            return True
        if record.status is ProblemStatus.DECLINED:
            self._finish(reply, Status.SUCCEEDED, Result.FAIL,
                         f"this run duplicates run {record.duplicate_of}, which remediates problem "
                         f"'{_name(record)}'; no action")
            return True
        # Resolved or aborted, then triggered again with the same context: the problem is back.
        record.status = ProblemStatus.OPEN
        return False

    def _next_action(self, reply: _Reply, record: ProblemRecord) -> None:
        remediation = self.remediation
        where = f"{self.key.project}/{self.key.stage}/{self.key.service}"
        if remediation is None:
            message = (
                f"no remediation.yaml for service '{self.key.service}' in stage '{self.key.stage}' of project "
                f"'{self.key.project}': upload one (service, stage or project level) listing the actions for "
                f"problem '{_name(record)}'"
            )
            self._config_error(reply, record, message)
            return
        if isinstance(remediation, RemediationFileProblem):
            self._config_error(reply, record, f"{remediation.path} cannot be used: {remediation.message}")
            return
        actions = remediation.actions_for(record.root_cause, record.title)
        if not actions:
            wanted = " or ".join(f"'{w}'" for w in dict.fromkeys(x for x in (record.root_cause, record.title) if x))
            message = (
                f"remediation.yaml of {where} has no actions for problem '{_name(record)}': add a problemType "
                f"{wanted or 'for it'} or 'default' with actionsOnOpen; escalated to people"
            )
            self._escalate(reply, record, "no_actions", message)
            self._finish(reply, Status.SUCCEEDED, Result.FAIL, message)
            return
        index = record.steps
        if index >= len(actions):
            tried = ", ".join(f"'{a.name or a.action}'" for a in record.actions) or "none"
            message = (
                f"all {len(actions)} action(s) for problem '{_name(record)}' were tried ({tried}) and it is still "
                "open; escalated to people"
            )
            self._escalate(reply, record, "exhausted", message)
            self._finish(reply, Status.SUCCEEDED, Result.FAIL, message)
            return
        pending = PendingAnswer(
            triggered_id=reply.triggered_id,
            keptn_context=reply.keptn_context,
            gitcommitid=reply.gitcommitid,
            labels=reply.labels,
            waiting=Waiting.COOLDOWN,
            index=index,
            total=len(actions),
            action=_action_block(actions[index]),
            since=self.now,
        )
        self._proceed(pending, record)

    def _config_error(self, reply: _Reply, record: ProblemRecord, message: str) -> None:
        self._finish(reply, Status.ERRORED, Result.FAIL, message)
        self._audit(AuditKind.CONFIG_ERROR, reply, record, result=Result.FAIL, status=Status.ERRORED, message=message)
        self._escalate(reply, record, "configuration", message)

    # ------------------------------------------------------------------ cooldown, quota, grant

    def _proceed(self, pending: PendingAnswer, record: ProblemRecord) -> None:
        """Hand out the action now, or park it until the cooldown ends or the project grants it."""
        state = self.state
        assert state is not None
        state.pending = [p for p in state.pending if p.triggered_id != pending.triggered_id]
        reply = _reply_of(pending)
        if state.last_action_at is not None:
            cooldown_end = state.last_action_at + self.settings.cooldown
            if cooldown_end > self.now:
                pending.waiting = Waiting.COOLDOWN
                pending.due_at = cooldown_end
                state.pending.append(pending)
                self.changed = True
                self._audit(
                    AuditKind.DEFERRED, reply, record, action=pending.action.get("name"),
                    message=f"the last action on {self.key.service} was at {state.last_action_at.isoformat()}; "
                            f"the next waits for the {_seconds(self.settings.cooldown)} cooldown, until "
                            f"{cooldown_end.isoformat()}",
                    detail={"due_at": cooldown_end.isoformat()}, purpose_suffix=cooldown_end.isoformat(),
                )
                return
        if self.settings.capped:
            pending.waiting = Waiting.QUOTA
            pending.due_at = None
            state.pending.append(pending)
            self._emit(KeptnEvent(
                id=derived_id(pending.triggered_id, "quota.requested"),
                source=self.settings.source,
                type=QUOTA_REQUESTED_TYPE,
                time=self.now,
                shkeptncontext=pending.keptn_context,
                data={
                    "project": self.key.project, "stage": "", "service": "",
                    "requester": {"stage": self.key.stage, "service": self.key.service},
                    "triggeredid": pending.triggered_id,
                    "action": pending.action.get("action"),
                },
            ), Key(self.key.project))
            return
        self._grant(pending, record)

    def _grant(self, pending: PendingAnswer, record: ProblemRecord) -> None:
        state = self.state
        assert state is not None
        state.pending = [p for p in state.pending if p.triggered_id != pending.triggered_id]
        action = pending.action
        record.steps = pending.index + 1
        record.updated_at = self.now
        record.actions.append(ActionTaken(
            index=pending.index, name=str(action.get("name") or ""), action=str(action.get("action") or ""),
            description=str(action.get("description") or ""), value=action.get("value"),
            at=self.now, triggered_id=pending.triggered_id,
        ))
        state.last_action_at = self.now
        reply = _reply_of(pending)
        message = (
            f"action {pending.index + 1} of {pending.total} for problem '{_name(record)}': "
            f"{action.get('name') or action.get('action')} ({action.get('action')})"
        )
        self._finish(reply, Status.SUCCEEDED, Result.PASS, message, action=action, next_index=pending.index + 1)
        self._audit(AuditKind.ACTION_SELECTED, reply, record, result=Result.PASS, message=message,
                    action=str(action.get("name") or action.get("action")),
                    detail={"index": pending.index, "of": pending.total, "waited_seconds":
                            round((self.now - pending.since).total_seconds(), 3)})

    def _on_tick(self) -> None:
        state = self.state
        due = [] if state is None else [
            p for p in state.pending
            if p.waiting is Waiting.COOLDOWN and p.due_at is not None and p.due_at <= self.now
        ]
        if not due:
            self._ignore(IgnoreReason.NOTHING_TO_DO, f"no deferred action of {self.key} is due")
            return
        assert state is not None
        for pending in due:
            record = state.problem(pending.keptn_context)
            if record is None:
                state.pending = [p for p in state.pending if p is not pending]
                self.changed = True
                continue
            self._proceed(pending, record)

    def _on_quota_request(self) -> None:
        event = self.event
        requester = event.data.get("requester")
        triggered_id = event.data.get("triggeredid")
        if self.key.stage or self.key.service or not self.key.project:
            self._ignore(IgnoreReason.INVALID, f"{event.type} (id {event.id}) must be keyed by its project alone "
                                               "(data.stage and data.service empty)")
            return
        if not isinstance(requester, dict) or not requester.get("stage") or not requester.get("service") \
                or not isinstance(triggered_id, str) or not triggered_id:
            self._ignore(IgnoreReason.INVALID, f"{event.type} (id {event.id}) needs data.requester.stage, "
                                               "data.requester.service and data.triggeredid")
            return
        state = self._key_state()
        state.grants = [g for g in state.grants if g > self.now - QUOTA_WINDOW]
        cap = self.settings.max_actions_per_hour
        target = Key(self.key.project, str(requester["stage"]), str(requester["service"]))
        data: dict[str, Any] = {
            "project": target.project, "stage": target.stage, "service": target.service,
            "triggeredid": triggered_id,
        }
        if cap == 0 or len(state.grants) < cap:
            state.grants.append(self.now)
            data["message"] = f"action {len(state.grants)} of at most {cap or 'unlimited'} in project " \
                              f"'{self.key.project}' this hour"
            event_type, purpose = QUOTA_GRANTED_TYPE, "granted"
        else:
            next_free = min(state.grants) + QUOTA_WINDOW
            data["message"] = (
                f"project '{self.key.project}' already had {len(state.grants)} remediation actions in the last "
                f"hour, the cap (TIDEGATE_REMEDIATION_MAX_ACTIONS_PER_HOUR={cap}); the next is possible after "
                f"{next_free.isoformat()}"
            )
            event_type, purpose = QUOTA_DENIED_TYPE, "denied"
        self.changed = True
        self._emit(KeptnEvent(
            id=derived_id(event.id, purpose), source=self.settings.source, type=event_type, time=self.now,
            shkeptncontext=event.shkeptncontext, data=data,
        ), target)

    def _on_quota_answer(self, *, granted: bool) -> None:
        event = self.event
        triggered_id = event.data.get("triggeredid")
        state = self.state
        pending = state.pending_for(triggered_id) if state is not None and isinstance(triggered_id, str) else None
        if state is None or pending is None or pending.waiting is not Waiting.QUOTA:
            self._ignore(IgnoreReason.NOTHING_TO_DO,
                         f"{event.type} (id {event.id}) answers {triggered_id}, which waits for no grant here "
                         "(answered already, or its problem closed)")
            return
        record = state.problem(pending.keptn_context)
        if record is None:
            state.pending = [p for p in state.pending if p is not pending]
            self.changed = True
            return
        if granted:
            self._grant(pending, record)
            return
        state.pending = [p for p in state.pending if p is not pending]
        reply = _reply_of(pending)
        message = f"{event.data.get('message') or 'the project action cap is reached'}; escalated to people"
        self._audit(AuditKind.QUOTA_DENIED, reply, record, result=Result.FAIL, message=message,
                    action=str(pending.action.get("name") or ""))
        self._escalate(reply, record, "quota", message)
        self._finish(reply, Status.SUCCEEDED, Result.FAIL, message)

    # ------------------------------------------------------------------ problems and sequence ends

    def _on_problem(self) -> None:
        event = self.event
        try:
            data = ProblemEvent.model_validate(event.data)
        except ValidationError as error:
            self._ignore(IgnoreReason.INVALID, f"{event.type} (id {event.id}) has unreadable data: {_first_error(error)}")
            return
        if (data.State or "").upper() != "CLOSED":
            self._ignore(IgnoreReason.UNHANDLED_TYPE,
                         f"{event.type} with State {data.State!r}: open problems start a remediation through "
                         "<stage>.remediation.triggered, which the sequencer runs")
            return
        context = event.shkeptncontext
        if not context or not (self.key.project and self.key.stage and self.key.service):
            self._ignore(IgnoreReason.INVALID,
                         f"{event.type} (id {event.id}) closes a problem but lacks the shkeptncontext or the "
                         "project/stage/service of the run it belongs to")
            return
        state = self._key_state()
        record = state.problem(context)
        if record is None:
            # The run may still be queued: remember the problem as closed and stop the run anyway.
            problem = Problem(State="CLOSED", ProblemID=data.ProblemID, problemTitle=data.ProblemTitle,
                              ProblemURL=data.ProblemURL, ImpactedEntity=data.ImpactedEntity)
            record = self._open_problem(context, problem)
            record.status = ProblemStatus.CLOSED
            self._emit_abort(context, purpose=f"{event.id}:abort")
        elif record.status is ProblemStatus.CLOSED:
            self._ignore(IgnoreReason.NOTHING_TO_DO, f"the problem of run {context} is closed already")
            return
        else:
            was_open = record.status is ProblemStatus.OPEN
            record.status = ProblemStatus.CLOSED
            record.updated_at = self.now
            if was_open:
                self._emit_abort(context, purpose=f"{event.id}:abort")
        self.changed = True
        for pending in [p for p in state.pending if p.keptn_context == context]:
            state.pending.remove(pending)
            self._finish(_reply_of(pending), Status.SUCCEEDED, Result.PASS,
                         f"problem '{_name(record)}' closed (its alert resolved) while the action waited; no action")
        self.outputs.append(self._audit_record(
            AuditKind.PROBLEM_CLOSED, context, record, task=None, task_triggered_id=None,
            message=f"problem '{_name(record)}' closed; run {context} stopped", purpose=event.id,
        ))

    def _on_remediation_finished(self) -> None:
        event = self.event
        context = event.shkeptncontext or ""
        record = self.original.problem(context) if self.original is not None else None
        if record is None or record.status is not ProblemStatus.OPEN:
            self._ignore(IgnoreReason.NOTHING_TO_DO, f"no open problem of run {context} in {self.key}")
            return
        state = self.state
        assert state is not None
        record = state.problem(context)
        assert record is not None
        status = str(event.data.get("status") or "")
        result = str(event.data.get("result") or "")
        if status == Status.ABORTED.value:
            record.status = ProblemStatus.ABORTED
        elif status != Status.ERRORED.value and result in (Result.PASS.value, Result.WARNING.value):
            record.status = ProblemStatus.RESOLVED
        else:
            # The evaluation still fails: the shipyard's loop triggers the run again with the next action.
            self._ignore(IgnoreReason.NOTHING_TO_DO, f"run {context} finished with {result or 'no result'}; "
                                                     "the problem stays open for the next iteration")
            return
        record.updated_at = self.now
        state.pending = [p for p in state.pending if p.keptn_context != context]
        self.changed = True
        self.outputs.append(self._audit_record(
            AuditKind.REMEDIATION_FINISHED, context, record, task=None, task_triggered_id=None,
            result=result or None, status=status or None,
            message=f"remediation of problem '{_name(record)}' ended {record.status.value} after "
                    f"{record.steps} action(s)",
            purpose=event.id,
        ))

    # ------------------------------------------------------------------ outputs

    def _key_state(self) -> RemediationState:
        if self.state is None:
            self.state = RemediationState(project=self.key.project, stage=self.key.stage, service=self.key.service)
        self.changed = True
        return self.state

    def _emit(self, event: KeptnEvent, key: Key) -> None:
        self.changed = True
        self.outputs.append(Emit(event, key))

    def _emit_started(self, reply: _Reply) -> None:
        self._emit(KeptnEvent(
            id=derived_id(reply.triggered_id, "started"),
            source=self.settings.source,
            type=task_type(GET_ACTION, TaskKind.STARTED),
            time=self.now,
            shkeptncontext=reply.keptn_context or None,
            triggeredid=reply.triggered_id,
            gitcommitid=reply.gitcommitid,
            data={**self._common(reply), "status": Status.SUCCEEDED.value},
        ), self.key)

    def _finish(
        self,
        reply: _Reply,
        status: Status,
        result: Result,
        message: str,
        *,
        action: dict[str, Any] | None = None,
        next_index: int | None = None,
    ) -> None:
        data: dict[str, Any] = {
            **self._common(reply), "status": status.value, "result": result.value, "message": message,
        }
        if action is not None:
            data["action"] = action
        if next_index is not None:
            data["get-action"] = {"actionIndex": next_index}
        self._emit(KeptnEvent(
            id=derived_id(reply.triggered_id, "finished"),
            source=self.settings.source,
            type=task_type(GET_ACTION, TaskKind.FINISHED),
            time=self.now,
            shkeptncontext=reply.keptn_context or None,
            triggeredid=reply.triggered_id,
            gitcommitid=reply.gitcommitid,
            data=data,
        ), self.key)

    def _common(self, reply: _Reply) -> dict[str, Any]:
        data: dict[str, Any] = {"project": self.key.project, "stage": self.key.stage, "service": self.key.service}
        if reply.labels:
            data["labels"] = reply.labels
        return data

    def _escalate(self, reply: _Reply, record: ProblemRecord, reason: str, message: str) -> None:
        record.status = ProblemStatus.ESCALATED
        record.updated_at = self.now
        self._emit(KeptnEvent(
            id=derived_id(reply.triggered_id, "escalated"),
            source=self.settings.source,
            type=ESCALATED_TYPE,
            time=self.now,
            shkeptncontext=reply.keptn_context or None,
            triggeredid=reply.triggered_id,
            gitcommitid=reply.gitcommitid,
            data={
                **self._common(reply),
                "reason": reason,
                "message": message,
                "problem": record.problem,
                "actionsTried": [taken.summary() for taken in record.actions],
            },
        ), self.key)
        self._audit(AuditKind.ESCALATED, reply, record, result=Result.FAIL, message=message,
                    detail={"reason": reason, "actions_tried": len(record.actions)})

    def _emit_abort(self, context: str, *, purpose: str) -> None:
        self._emit(control_event(self.key, context, ControlState.ABORT, event_id=derived_id(purpose, "abort"),
                                 time=self.now), self.key)

    def _audit(
        self,
        kind: AuditKind,
        reply: _Reply,
        record: ProblemRecord,
        *,
        result: Result | None = None,
        status: Status | None = None,
        message: str | None = None,
        action: str | None = None,
        detail: dict[str, Any] | None = None,
        purpose_suffix: str = "",
    ) -> None:
        self.changed = True
        self.outputs.append(self._audit_record(
            kind, reply.keptn_context, record, task=GET_ACTION, task_triggered_id=reply.triggered_id,
            result=result.value if result else None, status=status.value if status else None,
            message=message, action=action, detail=detail,
            purpose=f"{reply.triggered_id}{':' + purpose_suffix if purpose_suffix else ''}",
        ))

    def _audit_record(
        self,
        kind: AuditKind,
        context: str,
        record: ProblemRecord,
        *,
        task: str | None,
        task_triggered_id: str | None,
        purpose: str,
        result: str | None = None,
        status: str | None = None,
        message: str | None = None,
        action: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        return AuditRecord(
            id=derived_id(purpose, f"audit:remediator:{kind.value}"),
            kind=kind,
            time=self.now,
            keptn_context=context or None,
            key=self.key,
            task=task,
            task_triggered_id=task_triggered_id,
            result=result,
            status=status,
            message=message,
            problem=_name(record),
            action=action,
            detail={"step": record.steps, "problem_status": record.status.value, **(detail or {})},
        )

    def _ignore(self, reason: IgnoreReason, detail: str) -> None:
        self.outputs.append(Ignored(reason, detail))


def _reply_of(pending: PendingAnswer) -> _Reply:
    return _Reply(pending.triggered_id, pending.keptn_context, pending.gitcommitid, pending.labels)


def _action_block(action: Action) -> dict[str, Any]:
    """The `action` block of get-action.finished (§2.4), which the action provider reads."""
    return {"name": action.name, "action": action.action, "description": action.description, "value": action.value}


def _name(record: ProblemRecord) -> str:
    return record.title or record.root_cause or "(untitled problem)"


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():g} s"


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "data"
    return f"{where}: {first.get('msg', 'invalid')}"
