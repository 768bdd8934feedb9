"""Helpers shared by the sequencer tests (this module holds no tests itself).

`Bus` calls the pure core directly, one key's state at a time, with an explicit clock, so each test
controls exactly which event arrives when. Scenario tests use `agents.sequencer.Driver` instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from tidegate.agents.sequencer import (
    AuditKind,
    Decision,
    Emit,
    KeyState,
    SequencerConfig,
    decide,
    next_deadline,
    tick_event,
)
from tidegate.schemas.events import KeptnEvent, sequence_type, task_type
from tidegate.schemas.keys import Key
from tidegate.schemas.shipyard import Shipyard

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PROJECT = "sockshop"
SERVICE = "carts"


def load_shipyard(text: str) -> Shipyard:
    return Shipyard.model_validate(yaml.safe_load(text))


def config_for(shipyard: Shipyard | None, **settings: Any) -> SequencerConfig:
    return SequencerConfig(shipyard_for=lambda project: shipyard if project == PROJECT else None, **settings)


def key(stage: str, service: str = SERVICE) -> Key:
    return Key(PROJECT, stage, service)


def trigger(stage: str, sequence: str, *, context: str = "ctx-1", service: str = SERVICE,
            event_id: str | None = None, **data: Any) -> KeptnEvent:
    fields: dict[str, Any] = {"project": PROJECT, "stage": stage, "service": service, **data}
    event = KeptnEvent(type=sequence_type(stage, sequence, "triggered"), shkeptncontext=context, data=fields)
    return event.model_copy(update={"id": event_id}) if event_id else event


def reply(task_event: KeptnEvent, kind: str, *, result: str | None = "pass", status: str | None = "succeeded",
          event_id: str | None = None, **data: Any) -> KeptnEvent:
    """A connector's `.started` or `.finished` for a task `.triggered` event."""
    task = task_event.parsed_type.task
    assert task is not None, f"{task_event.type} is not a task event"
    fields: dict[str, Any] = {name: task_event.data[name] for name in ("project", "stage", "service")}
    if kind == "finished":
        if result is not None:
            fields["result"] = result
        if status is not None:
            fields["status"] = status
    fields.update(data)
    event = KeptnEvent(type=task_type(task, kind), shkeptncontext=task_event.shkeptncontext,
                       triggeredid=task_event.id, data=fields)
    return event.model_copy(update={"id": event_id}) if event_id else event


class Bus:
    """The states of all keys, fed by hand through `decide()`; records every decision's outputs."""

    def __init__(self, config: SequencerConfig, now: datetime = T0) -> None:
        self.config = config
        self.now = now
        self.states: dict[Key, KeyState] = {}
        self.emitted: list[Emit] = []

    def send(self, event: KeptnEvent, *, at: datetime | None = None) -> Decision:
        if at is not None:
            self.now = at
        target = Key.of_data(event.data)
        decision = decide(self.states.get(target), event, self.config, self.now)
        if decision.state is not None:
            self.states[target] = decision.state
        self.emitted.extend(decision.emitted)
        return decision

    def tick(self, target: Key, at: datetime) -> Decision:
        state = self.states[target]
        deadline = next_deadline(state)
        assert deadline is not None, f"{target} has no timer"
        return self.send(tick_event(target, deadline), at=at)

    def state(self, target: Key) -> KeyState:
        return self.states[target]

    def respond(self, task_event: KeptnEvent, result: str = "pass", status: str = "succeeded") -> Decision:
        """A well-behaved connector: `.started`, then `.finished`; returns the decision of the finished."""
        self.send(reply(task_event, "started"))
        return self.send(reply(task_event, "finished", result=result, status=status))


def tasks_of(decision: Decision) -> list[KeptnEvent]:
    """The task `.triggered` events a decision sent to `tasks.<task>`."""
    return [e.event for e in decision.emitted if e.task is not None and e.event.type.endswith(".triggered")]


def only_task(decision: Decision) -> KeptnEvent:
    sent = tasks_of(decision)
    assert len(sent) == 1, f"expected one task .triggered, got {[e.type for e in sent]}"
    return sent[0]


def events_of_type(decision: Decision, event_type: str) -> list[KeptnEvent]:
    return [e.event for e in decision.emitted if e.event.type == event_type]


def kinds(decision: Decision) -> list[AuditKind]:
    return [record.kind for record in decision.audit]


MINUTE = timedelta(minutes=1)
