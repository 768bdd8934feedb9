"""An in-memory driver for the sequencer and approver cores: no Kafka, virtual time.

It is the reference for the agent hosts (agents.hosts: the loop and Faust) and uses only the cores'
public API:
- an event on `events` goes to `decide()` with the state of its key (`project/stage/service`);
  the state is round-tripped through JSON each time, as the hosts' state topic stores it;
- `Emit` outputs are published again (to `events` or `tasks.<task>`), `AuditRecord`s collected,
  `Ignored` outputs counted;
- on `tasks.<task>` it plays the connectors: `approval` goes to the approver core (and, per the
  approval policy, a simulated human); any other task is answered with `.started` then `.finished`
  carrying the configured result, or not at all (`silent`);
- time is virtual: when nothing is in flight, the clock jumps to the earliest `next_deadline()` of
  any key (or the next scheduled input) and the due keys get a `tick_event`.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tidegate.agents.approver import APPROVAL_FINISHED, approved_result, decide_approval
from tidegate.schemas.errors import TidegateError
from tidegate.schemas.events import EventType, KeptnEvent, Result, Status, TaskKind, format_time, task_type
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.schemas.tidegate_events import tick_event

from .core import decide, next_deadline
from .model import STATE_CODEC, KeyState, SequencerConfig
from .outputs import AuditKind, AuditRecord, Emit, Ignored

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
SIMULATED_CONNECTOR = "tidegate-simulate/connector"
SIMULATED_HUMAN = "tidegate-simulate/human"


class Reply(StrEnum):
    """How a simulated connector answers a task."""

    PASS = "pass"
    WARNING = "warning"
    FAIL = "fail"
    ERRORED = "errored"
    SILENT = "silent"  # never answers: the started timeout (or the task's timeout) ends the sequence
    HANG = "hang"  # answers .started but never .finished: only the task's `timeout` property ends it


class ApprovalPolicy(StrEnum):
    """What the simulated human does with approvals the approver leaves open (manual ones)."""

    AUTO = "auto"  # decides as if they were automatic: approve pass/warning, decline anything else
    APPROVE = "approve"
    DECLINE = "decline"
    HOLD = "hold"  # nobody answers: the sequence stays waitingForApproval


class RuleError(TidegateError, ValueError):
    """A `--respond` rule that cannot be read."""


@dataclass(frozen=True, slots=True)
class RespondRule:
    task: str
    reply: Reply
    stage: str | None = None  # None: every stage

    @classmethod
    def parse(cls, text: str) -> RespondRule:
        """`TASK=RESULT[@STAGE]`, e.g. `test=fail@staging` or `deployment=silent`."""
        task, sep, rest = text.partition("=")
        reply_text, _, stage = rest.partition("@")
        choices = ", ".join(r.value for r in Reply)
        if not sep or not task.strip() or not reply_text.strip():
            raise RuleError(f"respond rule '{text}' is not TASK=RESULT[@STAGE], e.g. test=fail@staging")
        try:
            reply = Reply(reply_text.strip().lower())
        except ValueError:
            raise RuleError(f"respond rule '{text}': result '{reply_text}' is not one of {choices}") from None
        if task.strip() == "approval":
            raise RuleError(f"respond rule '{text}': approvals are answered by the approver; use --approve")
        return cls(task.strip(), reply, stage.strip() or None)


@dataclass(frozen=True, slots=True)
class Responders:
    """The simulated connectors' answers; a stage-specific rule beats a general one, the last given wins."""

    rules: tuple[RespondRule, ...] = ()
    default: Reply = Reply.PASS

    def reply_for(self, task: str, stage: str | None) -> Reply:
        for rule in reversed(self.rules):
            if rule.task == task and rule.stage is not None and rule.stage == stage:
                return rule.reply
        for rule in reversed(self.rules):
            if rule.task == task and rule.stage is None:
                return rule.reply
        return self.default


@dataclass(frozen=True, slots=True)
class Published:
    """One event put on a topic, in publication order."""

    event: KeptnEvent
    key: Key
    destination: str  # `events` or `tasks.<task>`

    def to_json_dict(self) -> dict[str, Any]:
        event = self.event
        return {
            "id": event.id,
            "type": event.type,
            "time": format_time(event.time),
            "shkeptncontext": event.shkeptncontext,
            "triggeredid": event.triggeredid,
            "key": str(self.key),
            "data": event.data,
            "topic": self.destination,
            "source": event.source,
        }


@dataclass(slots=True)
class SequenceSummary:
    """Where one sequence ended up (or stands, if still active)."""

    keptn_context: str
    key: Key
    sequence: str
    triggered_id: str
    state: str
    result: str | None = None
    status: str | None = None
    message: str | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "shkeptncontext": self.keptn_context,
            "key": str(self.key),
            "sequence": self.sequence,
            "triggeredid": self.triggered_id,
            "state": self.state,
            "result": self.result,
            "status": self.status,
            "message": self.message,
            "tasks": self.tasks,
        }


class SimulationLimitError(TidegateError, RuntimeError):
    """The run did not settle within the event budget (usually a sequence that triggers itself)."""


_TERMINAL = {AuditKind.FINISHED: "finished", AuditKind.TIMED_OUT: "timedOut", AuditKind.ABORTED: "aborted"}


class Driver:
    """Routes events between the cores and simulated connectors, on a virtual clock."""

    def __init__(
        self,
        config: SequencerConfig,
        *,
        responders: Responders | None = None,
        approval: ApprovalPolicy = ApprovalPolicy.AUTO,
        start: datetime = EPOCH,
        max_events: int = 10_000,
        roundtrip_state: bool = True,
    ) -> None:
        self.config = config
        self.responders = responders or Responders()
        self.approval = approval
        self.now = start
        self.max_events = max_events
        self.roundtrip_state = roundtrip_state
        self.states: dict[Key, KeyState] = {}
        self.published: list[Published] = []
        self.audit: list[AuditRecord] = []
        self.ignored: list[tuple[KeptnEvent, Ignored]] = []
        self.ignored_counts: Counter[str] = Counter()
        self.processed = 0
        self._in_flight: deque[Published] = deque()
        self._scheduled: list[tuple[datetime, int, KeptnEvent]] = []
        self._arrival = itertools.count()

    # ------------------------------------------------------------------ inputs

    def publish(self, event: KeptnEvent, *, at: datetime | None = None) -> None:
        """An outside producer sends `event` to `events` (now, or at virtual time `at`)."""
        if at is not None and at > self.now:
            heapq.heappush(self._scheduled, (at, next(self._arrival), event))
        else:
            self._send(event, Key.of_data(event.data), "events")

    def state(self, key: Key) -> KeyState | None:
        return self.states.get(key)

    # ------------------------------------------------------------------ the loop

    def run(self, *, until: datetime | None = None) -> None:
        """Process until nothing is in flight and no timer or scheduled input is left (or `until`)."""
        while True:
            self._release_scheduled()
            if self._in_flight:
                self._consume(self._in_flight.popleft())
                continue
            moment = self._next_moment()
            if moment is None or (until is not None and moment > until):
                if until is not None and until > self.now:
                    self.now = until
                return
            self.now = max(self.now, moment)
            self._release_scheduled()
            for key, state in self.states.items():
                deadline = next_deadline(state)
                if deadline is not None and deadline <= self.now:
                    self._in_flight.append(Published(tick_event(key, deadline), key, "events"))

    def _next_moment(self) -> datetime | None:
        moments = [d for d in (next_deadline(s) for s in self.states.values()) if d is not None]
        if self._scheduled:
            moments.append(self._scheduled[0][0])
        return min(moments, default=None)

    def _release_scheduled(self) -> None:
        while self._scheduled and self._scheduled[0][0] <= self.now:
            _, _, event = heapq.heappop(self._scheduled)
            self._send(event, Key.of_data(event.data), "events")

    def _send(self, event: KeptnEvent, key: Key, destination: str) -> None:
        published = Published(event, key, destination)
        self.published.append(published)
        self._in_flight.append(published)

    def _consume(self, item: Published) -> None:
        self.processed += 1
        if self.processed > self.max_events:
            raise SimulationLimitError(
                f"the simulation did not settle after {self.max_events} events (virtual time "
                f"{format_time(self.now)}): a sequence probably triggers itself forever through triggeredOn. "
                "Check the shipyard's triggeredOn selectors, or allow more events."
            )
        if item.destination == "events":
            self._sequencer(item)
        else:
            self._connector(item)

    # ------------------------------------------------------------------ the sequencer (as the shell does it)

    def _sequencer(self, item: Published) -> None:
        stored = self.states.get(item.key)
        if stored is not None and self.roundtrip_state:
            stored = STATE_CODEC.decode(STATE_CODEC.encode(stored))
        decision = decide(stored, item.event, self.config, self.now)
        if decision.state is not None:
            self.states[item.key] = decision.state
        for output in decision.outputs:
            if isinstance(output, Emit):
                self._send(output.event, output.key, output.destination)
            elif isinstance(output, AuditRecord):
                self.audit.append(output)
            elif isinstance(output, Ignored):
                self.ignored.append((item.event, output))
                self.ignored_counts[output.reason.value] += 1

    # ------------------------------------------------------------------ simulated connectors

    def _connector(self, item: Published) -> None:
        event = item.event
        parsed = EventType.parse(event.type)
        if not (parsed.is_task and parsed.kind == TaskKind.TRIGGERED.value and parsed.task):
            return  # e.g. a cancellation: the simulated work is instantaneous, nothing to stop
        if parsed.task == "approval":
            self._approve(item)
            return
        reply = self.responders.reply_for(parsed.task, event.stage)
        if reply is Reply.SILENT:
            return
        self._answer(item, parsed.task, "started", SIMULATED_CONNECTOR, {"status": Status.SUCCEEDED.value})
        if reply is Reply.HANG:
            return
        result, status = (Result.FAIL, Status.ERRORED) if reply is Reply.ERRORED else (Result(reply.value),
                                                                                         Status.SUCCEEDED)
        self._answer(item, parsed.task, "finished", SIMULATED_CONNECTOR, {
            "status": status.value, "result": result.value, "message": f"simulated {reply.value}",
        })

    def _approve(self, item: Published) -> None:
        replies = decide_approval(item.event, now=self.now)
        for reply in replies:
            self._send(reply, item.key, "events")
        if any(r.type == APPROVAL_FINISHED for r in replies) or self.approval is ApprovalPolicy.HOLD:
            return
        if self.approval is ApprovalPolicy.AUTO:
            good = approved_result(item.event.data) in (Result.PASS.value, Result.WARNING.value)
            decision = Result.PASS if good else Result.FAIL
        else:
            decision = Result.PASS if self.approval is ApprovalPolicy.APPROVE else Result.FAIL
        self._answer(item, "approval", "finished", SIMULATED_HUMAN, {
            "status": Status.SUCCEEDED.value, "result": decision.value,
            "message": f"{'approved' if decision is Result.PASS else 'declined'} by the simulated human "
                       f"(--approve {self.approval.value})",
        })

    def _answer(self, item: Published, task: str, kind: str, source: str, fields: dict[str, Any]) -> None:
        trigger = item.event
        data: dict[str, Any] = {name: trigger.data[name] for name in ("project", "stage", "service", "labels")
                                if name in trigger.data}
        data.update(fields)
        self._send(
            KeptnEvent(
                id=derived_id(trigger.id, f"simulate:{source}:{kind}"),
                source=source,
                type=task_type(task, kind),
                time=self.now,
                shkeptncontext=trigger.shkeptncontext,
                triggeredid=trigger.id,
                gitcommitid=trigger.gitcommitid,
                data=data,
            ),
            item.key,
            "events",
        )

    # ------------------------------------------------------------------ results

    def summary(self) -> list[SequenceSummary]:
        """Each sequence seen, in the order it first appeared, with its final (or current) state."""
        by_id: dict[str, SequenceSummary] = {}
        for record in self.audit:
            summary = by_id.get(record.sequence_triggered_id)
            if summary is None:
                summary = SequenceSummary(record.keptn_context, record.key, record.sequence,
                                          record.sequence_triggered_id, state="triggered")
                by_id[record.sequence_triggered_id] = summary
            if record.kind is AuditKind.TASK_FINISHED:
                summary.tasks.append({"name": record.task, "result": record.result, "status": record.status})
            if record.kind in _TERMINAL:
                summary.state = _TERMINAL[record.kind]
                summary.result, summary.status, summary.message = record.result, record.status, record.message
        for state in self.states.values():
            for run in state.sequences:
                summary = by_id.get(run.triggered_id)
                if summary is None:
                    continue
                summary.state = run.state.value
                summary.result, summary.status = run.last_result, run.last_status
                if run.current is not None:
                    phase = "started" if run.current.started else "triggered" if run.current.dispatched \
                        else "delayed"
                    summary.tasks.append({"name": run.current.name, "state": phase})
        return list(by_id.values())
