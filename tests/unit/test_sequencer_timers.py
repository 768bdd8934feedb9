"""Durable timers: triggeredAfter delays, the started timeout, per-task timeouts, ticks, restarts."""

from __future__ import annotations

from datetime import timedelta

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
    STATE_CODEC,
    TASK_CANCELLED_TYPE,
    AuditKind,
    IgnoreReason,
    KeyState,
    decide,
    next_deadline,
    tick_event,
)

SHIPYARD = load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: timers}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - {name: deployment, properties: {timeout: 30m}}
            - {name: evaluation, triggeredAfter: 5m, properties: {timeframe: 5m}}
        - name: plain
          tasks: [{name: test}]
        - name: sloppy
          tasks: [{name: test, properties: {timeout: soon}}]
        - name: backwards
          tasks: [{name: test, properties: {timeout: -5m}}]
        - name: rollback
          triggeredOn: [{event: dev.plain.finished, selector: {match: {result: fail}}}]
          tasks: [{name: rollback}]
""")
CONFIG = config_for(SHIPYARD)
DEV = key("dev")


def test_triggered_after_delays_the_task_until_its_tick() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    after_deployment = bus.respond(deployment)
    assert tasks_of(after_deployment) == []
    assert AuditKind.TASK_DELAYED in kinds(after_deployment)
    assert next_deadline(bus.state(DEV)) == T0 + 5 * MINUTE

    early = bus.send(tick_event(DEV, T0 + MINUTE), at=T0 + MINUTE)
    assert [i.reason for i in early.ignored] == [IgnoreReason.NOTHING_DUE]
    assert early.state is bus.state(DEV)

    due = bus.tick(DEV, at=T0 + 5 * MINUTE)
    evaluation = only_task(due)
    assert evaluation.type == "sh.keptn.event.evaluation.triggered"
    assert evaluation.time == T0 + 5 * MINUTE
    assert evaluation.data["evaluation"] == {"timeframe": "5m"}


def test_a_task_without_started_times_out_the_sequence_with_a_cancellation_and_no_follow_up() -> None:
    bus = Bus(config_for(SHIPYARD, started_timeout=timedelta(minutes=2)))
    test = only_task(bus.send(trigger("dev", "plain", context="a")))
    bus.send(trigger("dev", "plain", context="b"))  # queued behind a
    assert next_deadline(bus.state(DEV)) == T0 + 2 * MINUTE

    timed_out = bus.tick(DEV, at=T0 + 2 * MINUTE)
    [finished] = events_of_type(timed_out, "sh.keptn.event.dev.plain.finished")
    assert (finished.data["status"], finished.data["result"]) == ("errored", "fail")
    assert "timed out while waiting for task sh.keptn.event.test.triggered" in finished.data["message"]
    assert "2m" in finished.data["message"] and "tasks.test" in finished.data["message"]
    [cancelled] = events_of_type(timed_out, TASK_CANCELLED_TYPE)
    assert cancelled.triggeredid == test.id
    assert cancelled.data["reason"] == "timedOut"
    assert [e.destination for e in timed_out.emitted if e.event.type == TASK_CANCELLED_TYPE] == ["tasks.test"]
    # The rollback selector matches fail, but a timeout never triggers follow-ups (Keptn §1.2).
    assert events_of_type(timed_out, "sh.keptn.event.dev.rollback.triggered") == []
    assert AuditKind.TIMED_OUT in kinds(timed_out)
    # The queued sequence starts in the same decision.
    assert only_task(timed_out).shkeptncontext == "b"


def test_a_started_task_is_not_subject_to_the_started_timeout() -> None:
    bus = Bus(CONFIG)
    test = only_task(bus.send(trigger("dev", "plain")))
    bus.send(reply(test, "started"))
    assert next_deadline(bus.state(DEV)) is None


def test_a_late_reply_after_a_timeout_is_ignored() -> None:
    bus = Bus(config_for(SHIPYARD, started_timeout=timedelta(minutes=1)))
    test = only_task(bus.send(trigger("dev", "plain")))
    bus.tick(DEV, at=T0 + MINUTE)
    late = bus.send(reply(test, "started"))
    assert [i.reason for i in late.ignored] == [IgnoreReason.UNKNOWN_TRIGGEREDID]


def test_the_task_timeout_property_ends_a_started_task_that_never_finishes() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    bus.send(reply(deployment, "started"), at=T0 + MINUTE)
    assert next_deadline(bus.state(DEV)) == T0 + 30 * MINUTE  # counted from the .triggered

    timed_out = bus.tick(DEV, at=T0 + 30 * MINUTE)
    [finished] = events_of_type(timed_out, "sh.keptn.event.dev.delivery.finished")
    assert (finished.data["status"], finished.data["result"]) == ("errored", "fail")
    message = finished.data["message"]
    assert "task 'deployment' did not finish within its timeout of 30m" in message
    assert "1 started, 0 finished" in message
    [cancelled] = events_of_type(timed_out, TASK_CANCELLED_TYPE)
    assert cancelled.triggeredid == deployment.id
    assert bus.state(DEV).sequences == []


def test_a_task_that_finishes_in_time_clears_its_timeout() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    bus.respond(deployment)
    # Only the evaluation's delay is left.
    assert next_deadline(bus.state(DEV)) == T0 + 5 * MINUTE


@pytest.mark.parametrize(
    ("sequence", "words"),
    [
        ("sloppy", ["task 'test' has an invalid timeout", "'soon' is not a duration"]),
        ("backwards", ["task 'test' has timeout '-5m'", "longer than zero"]),
    ],
)
def test_an_unusable_timeout_refuses_the_sequence_at_trigger_time(sequence: str, words: list[str]) -> None:
    bus = Bus(CONFIG)
    decision = bus.send(trigger("dev", sequence))
    assert tasks_of(decision) == []
    [finished] = events_of_type(decision, f"sh.keptn.event.dev.{sequence}.finished")
    assert finished.data["status"] == "errored"
    for word in words:
        assert word in finished.data["message"]


def test_ticks_are_deterministic_and_a_duplicate_tick_is_harmless() -> None:
    assert tick_event(DEV, T0).id == tick_event(DEV, T0).id
    assert tick_event(DEV, T0).id != tick_event(key("staging"), T0).id
    assert tick_event(DEV, T0).id != tick_event(DEV, T0 + MINUTE).id
    bus = Bus(CONFIG)
    bus.respond(only_task(bus.send(trigger("dev", "delivery"))))
    tick = tick_event(DEV, T0 + 5 * MINUTE)
    first = bus.send(tick, at=T0 + 5 * MINUTE)
    assert len(tasks_of(first)) == 1
    again = bus.send(tick, at=T0 + 6 * MINUTE)
    assert again.emitted == []
    assert [i.reason for i in again.ignored] == [IgnoreReason.DUPLICATE]


def test_timers_survive_a_restart() -> None:
    # The shell stores the state as JSON; a new worker reads it back and its tick still fires.
    bus = Bus(CONFIG)
    bus.respond(only_task(bus.send(trigger("dev", "delivery"))))
    stored = STATE_CODEC.encode(bus.state(DEV))
    restarted = STATE_CODEC.decode(stored)
    deadline = next_deadline(restarted)
    assert deadline == T0 + 5 * MINUTE
    decision = decide(restarted, tick_event(DEV, deadline), CONFIG, T0 + 7 * MINUTE)
    assert [e.event.type for e in decision.emitted] == ["sh.keptn.event.evaluation.triggered"]


@pytest.mark.parametrize("missing_state", [True, False])
def test_a_tick_for_a_key_with_nothing_active_is_ignored(missing_state: bool) -> None:
    state = None if missing_state else KeyState(project="sockshop", stage="dev", service="carts")
    decision = decide(state, tick_event(DEV, T0), CONFIG, T0)
    assert decision.state is state
    assert [i.reason for i in decision.ignored] == [IgnoreReason.NOTHING_DUE]
