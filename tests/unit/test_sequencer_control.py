"""Pause, resume and abort by keptnContext (Keptn §3.6), plus Tidegate's cancellation event."""

from __future__ import annotations

import pytest

from tests.unit.test_sequencer_helpers import (
    MINUTE,
    T0,
    Bus,
    config_for,
    events_of_type,
    key,
    kinds,
    load_shipyard,
    only_task,
    reply,
    tasks_of,
    trigger,
)
from tidegate.agents.sequencer import (
    CONTROL_TYPE,
    TASK_CANCELLED_TYPE,
    AuditKind,
    ControlState,
    IgnoreReason,
    SequenceState,
    control_event,
    next_deadline,
)
from tidegate.schemas.events import KeptnEvent

SHIPYARD = load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: control}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}, {name: release, triggeredAfter: 10m}]
    - name: staging
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
        - name: cleanup
          triggeredOn: [{event: dev.delivery.finished, selector: {match: {result: pass}}}]
          tasks: [{name: cleanup}]
""")
CONFIG = config_for(SHIPYARD)
DEV = key("dev")


def control(state: ControlState, context: str = "ctx-1", stage: str = "dev") -> KeptnEvent:
    return control_event(key(stage), context, state)


def test_pause_holds_the_next_task_and_resume_releases_it() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    paused = bus.send(control(ControlState.PAUSE))
    assert kinds(paused) == [AuditKind.PAUSED]
    assert paused.emitted == []  # the running task is not interrupted
    finished = bus.respond(deployment)
    assert tasks_of(finished) == []
    assert kinds(finished) == [AuditKind.TASK_FINISHED]  # finished, but nothing dispatched
    assert bus.state(DEV).sequences[0].state is SequenceState.PAUSED

    resumed = bus.send(control(ControlState.RESUME))
    assert AuditKind.RESUMED in kinds(resumed)
    assert only_task(resumed).type == "sh.keptn.event.test.triggered"
    assert bus.state(DEV).sequences[0].state is SequenceState.STARTED


def test_pause_holds_a_delayed_task_and_resume_sends_it_when_due() -> None:
    bus = Bus(CONFIG)
    test = only_task(bus.respond(only_task(bus.send(trigger("dev", "delivery")))))
    bus.respond(test)  # release is delayed 10m
    assert next_deadline(bus.state(DEV)) == T0 + 10 * MINUTE
    bus.send(control(ControlState.PAUSE))
    assert next_deadline(bus.state(DEV)) is None  # a paused sequence sends nothing
    resumed = bus.send(control(ControlState.RESUME), at=T0 + 20 * MINUTE)
    assert only_task(resumed).type == "sh.keptn.event.release.triggered"


def test_a_sequence_of_a_paused_run_that_arrives_later_starts_paused() -> None:
    bus = Bus(CONFIG)
    staging = key("staging")
    bus.send(control(ControlState.PAUSE, stage="staging"))  # the gateway sent it to every key of the run
    arrived = bus.send(trigger("staging", "delivery"))
    assert tasks_of(arrived) == []
    assert kinds(arrived) == [AuditKind.QUEUED, AuditKind.PAUSED]
    assert bus.state(staging).sequences[0].state is SequenceState.PAUSED
    resumed = bus.send(control(ControlState.RESUME, stage="staging"))
    assert only_task(resumed).type == "sh.keptn.event.deployment.triggered"


def test_abort_ends_the_run_with_a_cancellation_and_no_follow_ups() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery", context="a")))
    bus.send(trigger("dev", "delivery", context="a"))  # a second sequence of the same run, queued
    bus.send(trigger("dev", "delivery", context="b"))  # another run, queued
    aborted = bus.send(control(ControlState.ABORT, context="a"))

    finished = events_of_type(aborted, "sh.keptn.event.dev.delivery.finished")
    assert len(finished) == 2
    assert {(f.data["status"], f.data["result"]) for f in finished} == {("aborted", "pass")}
    assert {f.shkeptncontext for f in finished} == {"a"}
    [cancelled] = events_of_type(aborted, TASK_CANCELLED_TYPE)
    assert cancelled.triggeredid == deployment.id
    assert cancelled.data["task"] == "deployment" and cancelled.data["reason"] == "aborted"
    assert [e.destination for e in aborted.emitted if e.event.type == TASK_CANCELLED_TYPE] == ["tasks.deployment"]
    # No follow-ups, although both staging sequences would fire on pass.
    assert [e for e in aborted.emitted if e.key != DEV] == []
    assert kinds(aborted).count(AuditKind.ABORTED) == 2
    # The other run gets the lock at once.
    assert only_task(aborted).shkeptncontext == "b"
    assert [r.keptn_context for r in bus.state(DEV).sequences] == ["b"]

    late = bus.send(reply(deployment, "finished"))
    assert [i.reason for i in late.ignored] == [IgnoreReason.UNKNOWN_TRIGGEREDID]


def test_abort_of_a_paused_sequence_waiting_for_its_delay_sends_no_cancellation() -> None:
    bus = Bus(CONFIG)
    test = only_task(bus.respond(only_task(bus.send(trigger("dev", "delivery")))))
    bus.respond(test)  # release delayed, not yet sent to any connector
    bus.send(control(ControlState.PAUSE))
    aborted = bus.send(control(ControlState.ABORT))
    assert events_of_type(aborted, TASK_CANCELLED_TYPE) == []
    assert len(events_of_type(aborted, "sh.keptn.event.dev.delivery.finished")) == 1


def test_a_sequence_of_an_aborted_run_that_arrives_later_is_not_started() -> None:
    bus = Bus(CONFIG)
    bus.send(control(ControlState.ABORT, stage="staging"))
    arrived = bus.send(trigger("staging", "delivery"))
    assert tasks_of(arrived) == []
    [finished] = events_of_type(arrived, "sh.keptn.event.staging.delivery.finished")
    assert (finished.data["status"], finished.data["result"]) == ("aborted", "pass")
    assert "aborted" in finished.data["message"]
    assert kinds(arrived) == [AuditKind.ABORTED]


def test_controls_only_touch_their_own_run() -> None:
    bus = Bus(CONFIG)
    only_task(bus.send(trigger("dev", "delivery", context="a")))
    decision = bus.send(control(ControlState.PAUSE, context="zzz"))
    assert bus.state(DEV).sequences[0].state is SequenceState.STARTED
    assert decision.emitted == [] and decision.audit == []
    assert bus.state(DEV).paused_contexts == ["zzz"]  # remembered for zzz's sequences yet to come


@pytest.mark.parametrize("state", [ControlState.PAUSE, ControlState.RESUME, ControlState.ABORT])
def test_a_control_that_changes_nothing_is_ignored(state: ControlState) -> None:
    bus = Bus(CONFIG)
    only_task(bus.send(trigger("dev", "delivery", context="a")))
    if state is not ControlState.RESUME:
        bus.send(control(state, context="a"))
    before = bus.state(DEV)
    repeated = bus.send(control(state, context="a"))
    assert repeated.state is before
    assert [i.reason for i in repeated.ignored] == [IgnoreReason.NOTHING_DUE]
    # A resume for a key that has never seen anything creates no state.
    assert bus.send(control(ControlState.RESUME, context="a", stage="staging")).state is None


@pytest.mark.parametrize(
    ("data", "context", "words"),
    [
        ({"project": "sockshop", "stage": "dev", "service": "carts", "state": "stop"}, "ctx-1", "pause, resume or abort"),
        ({"project": "sockshop", "stage": "dev", "service": "carts", "state": "pause"}, None, "shkeptncontext"),
        ({"project": "sockshop", "stage": "dev", "state": "pause"}, "ctx-1", "service"),
    ],
)
def test_an_invalid_control_goes_to_the_dlq(data: dict[str, str], context: str | None, words: str) -> None:
    bus = Bus(CONFIG)
    decision = bus.send(KeptnEvent(type=CONTROL_TYPE, shkeptncontext=context, data=data))
    [ignored] = decision.ignored
    assert ignored.dead_letter
    assert words in ignored.detail
    assert decision.state is None
