"""The stage lock: one running sequence per project/stage/service, FIFO, approval and pause do not block."""

from __future__ import annotations

from tests.unit.test_sequencer_helpers import (
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
from tidegate.agents.sequencer import AuditKind, ControlState, Decision, SequenceState, control_event
from tidegate.schemas.events import KeptnEvent

SHIPYARD = load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: queue}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: release}]
        - name: gated
          tasks:
            - {name: deployment}
            - {name: approval, properties: {pass: manual, warning: manual}}
            - {name: release}
        - name: delayed
          tasks: [{name: evaluation, triggeredAfter: 10m}]
    - name: staging
      sequences:
        - name: delivery
          tasks: [{name: deployment}]
""")
CONFIG = config_for(SHIPYARD)
DEV = key("dev")


def run_through(bus: Bus, task_event: KeptnEvent, result: str = "pass") -> Decision:
    """Answer every task of a sequence until it finishes; returns the last decision."""
    decision = bus.respond(task_event, result)
    while True:
        sent = [t for t in tasks_of(decision) if t.shkeptncontext == task_event.shkeptncontext]
        if not sent:
            return decision
        decision = bus.respond(sent[0], result)


def test_sequences_of_one_service_wait_in_fifo_order_and_start_at_once_when_the_lock_frees() -> None:
    bus = Bus(CONFIG)
    first = only_task(bus.send(trigger("dev", "delivery", context="a")))
    second = bus.send(trigger("dev", "delivery", context="b"))
    third = bus.send(trigger("dev", "delivery", context="c"))
    for queued in (second, third):
        assert tasks_of(queued) == []
        assert kinds(queued) == [AuditKind.QUEUED]
    states = {run.keptn_context: run.state for run in bus.state(DEV).sequences}
    assert states == {"a": SequenceState.STARTED, "b": SequenceState.TRIGGERED, "c": SequenceState.TRIGGERED}

    release = only_task(bus.respond(first))
    end_of_a = bus.respond(release)
    # The same decision that finishes a starts b: no polling interval.
    assert events_of_type(end_of_a, "sh.keptn.event.dev.delivery.finished")[0].shkeptncontext == "a"
    b_task = only_task(end_of_a)
    assert b_task.shkeptncontext == "b"
    assert AuditKind.STARTED in kinds(end_of_a)

    end_of_b = run_through(bus, b_task)
    assert only_task(end_of_b).shkeptncontext == "c"


def test_fifo_follows_arrival_even_when_the_event_times_disagree() -> None:
    bus = Bus(CONFIG)
    only_task(bus.send(trigger("dev", "delivery", context="a")))
    late = trigger("dev", "delivery", context="b")
    early_clock = trigger("dev", "delivery", context="c").model_copy(update={"time": T0.replace(year=2020)})
    bus.send(late)
    bus.send(early_clock)
    orders = {run.keptn_context: run.order for run in bus.state(DEV).sequences}
    assert orders["b"] < orders["c"]


def test_different_services_and_stages_run_in_parallel() -> None:
    bus = Bus(CONFIG)
    carts = bus.send(trigger("dev", "delivery", context="a", service="carts"))
    orders = bus.send(trigger("dev", "delivery", context="b", service="orders"))
    staging = bus.send(trigger("staging", "delivery", context="c", service="carts"))
    for decision in (carts, orders, staging):
        assert len(tasks_of(decision)) == 1
    assert {e.key for e in bus.emitted} == {key("dev", "carts"), key("dev", "orders"), key("staging", "carts")}


def test_a_sequence_waiting_for_approval_does_not_block_and_then_waits_for_the_lock() -> None:
    bus = Bus(CONFIG)
    deployment_a = only_task(bus.send(trigger("dev", "gated", context="a")))
    approval_a = only_task(bus.respond(deployment_a))
    assert approval_a.type == "sh.keptn.event.approval.triggered"
    run_a = bus.state(DEV).sequences[0]
    assert run_a.state is SequenceState.WAITING_FOR_APPROVAL
    assert bus.state(DEV).lock is None

    deployment_b = only_task(bus.send(trigger("dev", "delivery", context="b")))  # starts at once
    assert deployment_b.shkeptncontext == "b"
    bus.send(trigger("dev", "delivery", context="c"))  # queued behind b

    bus.send(reply(approval_a, "started"))
    approved = bus.send(reply(approval_a, "finished", result="pass"))
    assert tasks_of(approved) == []  # b holds the lock: a waits before its release task
    assert kinds(approved) == [AuditKind.TASK_FINISHED, AuditKind.WAITING]
    states = {run.keptn_context: run.state for run in bus.state(DEV).sequences}
    assert states == {"a": SequenceState.WAITING, "b": SequenceState.STARTED, "c": SequenceState.TRIGGERED}

    end_of_b = run_through(bus, deployment_b)
    # a was triggered before c, so a goes first.
    release_a = only_task(end_of_b)
    assert (release_a.type, release_a.shkeptncontext) == ("sh.keptn.event.release.triggered", "a")
    end_of_a = bus.respond(release_a)
    assert only_task(end_of_a).shkeptncontext == "c"


def test_a_declined_approval_finishes_the_sequence_without_needing_the_lock() -> None:
    bus = Bus(CONFIG)
    approval_a = only_task(bus.respond(only_task(bus.send(trigger("dev", "gated", context="a")))))
    only_task(bus.send(trigger("dev", "delivery", context="b")))
    bus.send(reply(approval_a, "started"))
    declined = bus.send(reply(approval_a, "finished", result="fail"))
    [finished] = events_of_type(declined, "sh.keptn.event.dev.gated.finished")
    assert finished.data["result"] == "fail"
    assert [run.keptn_context for run in bus.state(DEV).sequences] == ["b"]


def test_a_paused_sequence_does_not_block_and_continues_after_resume() -> None:
    bus = Bus(CONFIG)
    deployment_a = only_task(bus.send(trigger("dev", "delivery", context="a")))
    bus.send(trigger("dev", "delivery", context="b"))
    paused = bus.send(control_event(DEV, "a", ControlState.PAUSE))
    # Pausing a hands the lock to b at once.
    deployment_b = only_task(paused)
    assert deployment_b.shkeptncontext == "b"
    assert kinds(paused)[0] is AuditKind.PAUSED

    # a's running task still finishes while paused, but its next task is held.
    assert tasks_of(bus.respond(deployment_a)) == []
    resumed = bus.send(control_event(DEV, "a", ControlState.RESUME))
    assert tasks_of(resumed) == []  # b holds the lock now
    assert {r.keptn_context: r.state for r in bus.state(DEV).sequences}["a"] is SequenceState.WAITING
    end_of_b = run_through(bus, deployment_b)
    release_a = only_task(end_of_b)
    assert (release_a.type, release_a.shkeptncontext) == ("sh.keptn.event.release.triggered", "a")


def test_evaluation_sequences_queue_too() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery", context="a")))
    queued = bus.send(trigger("dev", "evaluation", context="b"))
    assert tasks_of(queued) == []
    end = run_through(bus, deployment)
    assert only_task(end).type == "sh.keptn.event.evaluation.triggered"


def test_a_task_waiting_for_triggered_after_holds_the_lock() -> None:
    # Keptn's behaviour (enhancement-proposals#79): the delay is part of the running sequence.
    bus = Bus(CONFIG)
    delayed = bus.send(trigger("dev", "delayed", context="a"))
    assert tasks_of(delayed) == []
    assert bus.state(DEV).lock == bus.state(DEV).sequences[0].triggered_id
    assert tasks_of(bus.send(trigger("dev", "delivery", context="b"))) == []


def test_a_sequence_resumed_while_its_task_runs_waits_for_the_lock_before_its_next_task() -> None:
    bus = Bus(CONFIG)
    deployment_a = only_task(bus.send(trigger("dev", "delivery", context="a")))
    bus.send(trigger("dev", "delivery", context="b"))
    deployment_b = only_task(bus.send(control_event(DEV, "a", ControlState.PAUSE)))
    resumed = bus.send(control_event(DEV, "a", ControlState.RESUME))
    assert tasks_of(resumed) == []
    run_a = next(r for r in bus.state(DEV).sequences if r.keptn_context == "a")
    assert run_a.state is SequenceState.STARTED  # its deployment is still running
    assert bus.state(DEV).lock != run_a.triggered_id  # but b holds the lock

    a_done = bus.respond(deployment_a)
    assert tasks_of(a_done) == []
    assert kinds(a_done)[-1] is AuditKind.WAITING
    release_a = only_task(run_through(bus, deployment_b))
    assert (release_a.type, release_a.shkeptncontext) == ("sh.keptn.event.release.triggered", "a")
