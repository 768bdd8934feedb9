"""The sequencer in a real Faust worker on the real broker, beyond the happy path.

- the Sock Shop example project's own shipyard (`examples/sockshop/shipyard.yaml`) through three stages,
  with production's manual approval answered by a human through the CLI's own Kafka path;
- two deliveries of one service: FIFO in dev, both waiting for approval in production at once (an
  approval gives the stage lock up), one declined (production rollback) and one approved;
- pause / resume / abort through control events, the cancellation reaching `tasks.<task>`;
- a `triggeredAfter` delay, a task `timeout` and the started timeout, fired by the worker's tick timer;
- invalid input (undecodable, wrongly keyed, no service) in the DLQ while the worker goes on;
- the audit topic holding every transition of a run, in order.

Connectors are played by `TaskResponder`; only the sequencer and approver agents run in the worker
(the evaluator would answer evaluation tasks itself).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.support.kafka import EventCollector, publish_files
from tests.support.responder import TaskResponder
from tidegate.agents.sequencer import TASK_CANCELLED_TYPE, ControlState, control_event
from tidegate.cli.client import CLI_SOURCE, publish_to_kafka
from tidegate.cli.events_build import approval_finished
from tidegate.schemas.events import KeptnEvent, sequence_type, task_type
from tidegate.schemas.keys import Key
from tidegate.streams.codec import encode
from tidegate.streams.dlq import read_dead_letter
from tidegate.streams.kafka import AsyncEventPublisher, aiokafka_config
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SOCKSHOP_SHIPYARD = (Path(__file__).resolve().parents[2] / "examples" / "sockshop" / "shipyard.yaml").read_text()
TIMERS_SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: timers}
spec:
  stages:
    - name: dev
      sequences:
        - name: delayed
          tasks: [{name: deployment, triggeredAfter: "2s"}]
        - name: bounded
          tasks: [{name: test, properties: {timeout: "2s"}}]
        - name: unanswered
          tasks: [{name: rollback}]
"""
STARTED_WAIT = "3s"  # the started timeout where it is under test (Keptn's default is 10m)
TIMEOUT = 90.0
AUDIT_PREFIX = "sh.tidegate.audit.sequencer."


def start_worker(settings: Settings, faust_worker, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                 started_wait: str | None = None):
    monkeypatch.setenv("TIDEGATE_AGENTS", "sequencer,approver")
    if started_wait is not None:
        monkeypatch.setenv("TIDEGATE_TASK_STARTED_WAIT_DURATION", started_wait)
    publish_files(settings, "sockshop", {"shipyard.yaml": SOCKSHOP_SHIPYARD})
    publish_files(settings, "timers", {"shipyard.yaml": TIMERS_SHIPYARD})
    return faust_worker("tidegate.agents.main:app", settings)


@pytest.fixture
def worker(tidegate_settings: Settings, faust_worker, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    started = start_worker(tidegate_settings, faust_worker, monkeypatch)
    yield started
    started.assert_running()


@pytest.fixture
def timer_worker(tidegate_settings: Settings, faust_worker, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    # A short started timeout only where it is under test: elsewhere a slow machine must not end runs.
    started = start_worker(tidegate_settings, faust_worker, monkeypatch, STARTED_WAIT)
    yield started
    started.assert_running()


def trigger(service: str, sequence: str = "delivery", project: str = "sockshop", image: str = "1.0.0") -> KeptnEvent:
    return KeptnEvent(
        type=sequence_type("dev", sequence, "triggered"),
        source="ci",
        shkeptncontext=str(uuid.uuid4()),
        data={"project": project, "stage": "dev", "service": service,
              "configurationChange": {"values": {"image": f"{service}:{image}"}}},
    )


def of(events: list[KeptnEvent], event_type: str, context: str | None, stage: str | None = None) -> list[KeptnEvent]:
    return [e for e in events if e.type == event_type and e.shkeptncontext == context
            and (stage is None or e.data.get("stage") == stage)]


def has(event_type: str, context: str | None, stage: str | None = None) -> Callable[[list[KeptnEvent]], bool]:
    return lambda events: bool(of(events, event_type, context, stage))


def transitions(audit: list[KeptnEvent], context: str | None, stage: str) -> list[str]:
    """The sequencer's transitions of one run in one stage, in order (one key: one partition, in order)."""
    return [e.type.removeprefix(AUDIT_PREFIX) for e in audit
            if e.type.startswith(AUDIT_PREFIX) and e.shkeptncontext == context and e.data.get("stage") == stage]


def task_steps(count: int) -> list[str]:
    return ["task_triggered", "task_started", "task_finished"] * count


async def publish(settings: Settings, *events: KeptnEvent) -> None:
    registry = TopicRegistry.from_settings(settings)
    async with AsyncEventPublisher(settings) as publisher:
        for event in events:
            await publisher.publish(registry.events, event)


async def answer_as_human(settings: Settings, approval: KeptnEvent, *, approve: bool,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`tidegate approve|decline --kafka ...`: the CLI's own event and publishing path."""
    monkeypatch.setenv("TIDEGATE_TOPIC_PREFIX", settings.topic_prefix)
    body = approval_finished(approval.model_dump(mode="json"), approve=approve, message="checked by a human")
    await asyncio.to_thread(publish_to_kafka, body, settings.kafka_bootstrap)


async def test_sockshop_delivery_reaches_production_after_a_human_approval(
    tidegate_settings: Settings, worker, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    registry = TopicRegistry.from_settings(tidegate_settings)
    event = trigger("carts")
    context = event.shkeptncontext
    async with EventCollector(tidegate_settings, registry.events) as events, EventCollector(
        tidegate_settings, registry.audit
    ) as audit, EventCollector(tidegate_settings, registry.task("approval")) as approvals, TaskResponder(
        tidegate_settings
    ):
        await publish(tidegate_settings, event)
        await approvals.wait_for(has(task_type("approval", "triggered"), context, "production"), TIMEOUT,
                                 "the production approval")
        (pending,) = of(approvals.events, task_type("approval", "triggered"), context, "production")
        # The shipyard says `pass: manual` in production: the approver acknowledges, a human decides.
        await events.wait_for(has(task_type("approval", "started"), context, "production"), TIMEOUT,
                              "the approver's approval.started")
        assert not of(events.events, task_type("approval", "finished"), context, "production")
        await answer_as_human(tidegate_settings, pending, approve=True, monkeypatch=monkeypatch)
        await events.wait_for(has(sequence_type("production", "delivery", "finished"), context), TIMEOUT,
                              "production.delivery.finished")
        await audit.wait_for(
            lambda evs: all("finished" in transitions(evs, context, stage) for stage in ("dev", "staging", "production")),
            TIMEOUT, "every stage's last transition on the audit topic",
        )

    for stage in ("dev", "staging", "production"):
        (done,) = of(events.events, sequence_type(stage, "delivery", "finished"), context)
        assert (done.data["result"], done.data["status"]) == ("pass", "succeeded"), (stage, done.data)
    (automatic,) = of(events.events, task_type("approval", "finished"), context, "staging")
    assert automatic.source == "tidegate-approver"
    (human,) = of(events.events, task_type("approval", "finished"), context, "production")
    assert human.source == CLI_SOURCE and human.triggeredid == pending.id
    deployed = of(events.events, task_type("deployment", "finished"), context, "production")
    assert len(deployed) == 1, "production deploys after the approval"

    # Every transition of the run is on the audit topic, in order, stage by stage.
    assert transitions(audit.events, context, "dev") == ["queued", "started", *task_steps(4), "finished"]
    assert transitions(audit.events, context, "staging") == [
        "queued", "started", *task_steps(3), "task_triggered", "waiting_for_approval", "task_started",
        "task_finished", *task_steps(1), "finished",
    ]
    assert transitions(audit.events, context, "production") == [
        "queued", "started", "task_triggered", "waiting_for_approval", "task_started", "task_finished",
        *task_steps(2), "finished",
    ]
    finished = [e for e in audit.events if e.type == AUDIT_PREFIX + "finished" and e.shkeptncontext == context]
    assert [(e.data["stage"], e.data["result"]) for e in finished] == [
        ("dev", "pass"), ("staging", "pass"), ("production", "pass")]


async def test_two_deliveries_queue_in_dev_then_both_wait_for_approval_one_declined_one_approved(
    tidegate_settings: Settings, worker, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    registry = TopicRegistry.from_settings(tidegate_settings)
    first, second = trigger("orders", image="1"), trigger("orders", image="2")
    async with EventCollector(tidegate_settings, registry.events) as events, EventCollector(
        tidegate_settings, registry.task("approval")
    ) as approvals, TaskResponder(tidegate_settings) as responder:
        await publish(tidegate_settings, first, second)
        # Both reach production's approval: the first, waiting for a human, does not hold the lock.
        await approvals.wait_for(
            lambda evs: all(of(evs, task_type("approval", "triggered"), run.shkeptncontext, "production")
                            for run in (first, second)),
            TIMEOUT, "both production approvals",
        )
        for run, approve in ((first, False), (second, True)):
            (pending,) = of(approvals.events, task_type("approval", "triggered"), run.shkeptncontext, "production")
            await answer_as_human(tidegate_settings, pending, approve=approve, monkeypatch=monkeypatch)
        await events.wait_for(
            lambda evs: bool(of(evs, sequence_type("production", "rollback", "finished"), first.shkeptncontext)
                             and of(evs, sequence_type("production", "delivery", "finished"), second.shkeptncontext)),
            TIMEOUT, "the declined run's rollback and the approved run's delivery",
        )

    dev_runs = [e.shkeptncontext for e in responder.seen if e.data.get("stage") == "dev"]
    assert dev_runs == [first.shkeptncontext] * 4 + [second.shkeptncontext] * 4, "dev ran them one after the other"
    (declined,) = of(events.events, sequence_type("production", "delivery", "finished"), first.shkeptncontext)
    assert declined.data["result"] == "fail"
    (approved,) = of(events.events, sequence_type("production", "delivery", "finished"), second.shkeptncontext)
    assert (approved.data["result"], approved.data["status"]) == ("pass", "succeeded")
    production = [(e.shkeptncontext, e.type) for e in responder.seen if e.data.get("stage") == "production"]
    assert (first.shkeptncontext, task_type("deployment", "triggered")) not in production
    assert (first.shkeptncontext, task_type("rollback", "triggered")) in production
    deployment = next(e for e in responder.seen if e.data.get("stage") == "production"
                      and e.type == task_type("deployment", "triggered"))
    assert deployment.data["configurationChange"]["values"]["image"] == "orders:2"


async def test_pause_holds_the_next_task_until_resume(tidegate_settings: Settings, worker) -> None:  # type: ignore[no-untyped-def]
    registry = TopicRegistry.from_settings(tidegate_settings)
    event = trigger("catalogue")
    context = event.shkeptncontext or ""
    key = Key("sockshop", "dev", "catalogue")
    async with EventCollector(tidegate_settings, registry.events) as events, EventCollector(
        tidegate_settings, registry.audit
    ) as audit, TaskResponder(tidegate_settings, ["deployment=hang@dev"]) as responder:
        await publish(tidegate_settings, event)
        await audit.wait_for(lambda evs: "task_started" in transitions(evs, context, "dev"), TIMEOUT,
                             "the deployment to start")
        await publish(tidegate_settings, control_event(key, context, ControlState.PAUSE))
        await audit.wait_for(lambda evs: "paused" in transitions(evs, context, "dev"), TIMEOUT, "the pause")
        # The running task is not interrupted: its connector finishes it while the run is paused.
        (deployment,) = [e for e in responder.seen if e.type == task_type("deployment", "triggered")]
        await publish(tidegate_settings, KeptnEvent(
            type=task_type("deployment", "finished"), source="test-connector", shkeptncontext=context,
            triggeredid=deployment.id,
            data={"project": "sockshop", "stage": "dev", "service": "catalogue", "status": "succeeded",
                  "result": "pass"},
        ))
        await audit.wait_for(lambda evs: "task_finished" in transitions(evs, context, "dev"), TIMEOUT,
                             "the deployment to finish while paused")
        await publish(tidegate_settings, control_event(key, context, ControlState.RESUME))
        await events.wait_for(has(sequence_type("dev", "delivery", "finished"), context), TIMEOUT,
                              "dev.delivery.finished after the resume")
        await audit.wait_for(lambda evs: "finished" in transitions(evs, context, "dev"), TIMEOUT,
                             "the run's last transition on the audit topic")

    # Nothing was dispatched between the pause and the resume; the next task came only after it.
    assert transitions(audit.events, context, "dev") == [
        "queued", "started", "task_triggered", "task_started", "paused", "task_finished", "resumed",
        *task_steps(3), "finished",
    ]
    (done,) = of(events.events, sequence_type("dev", "delivery", "finished"), context)
    assert done.data["result"] == "pass"


async def test_abort_ends_the_run_and_cancels_the_running_task(tidegate_settings: Settings, worker) -> None:  # type: ignore[no-untyped-def]
    registry = TopicRegistry.from_settings(tidegate_settings)
    event = trigger("payment")
    context = event.shkeptncontext or ""
    async with EventCollector(tidegate_settings, registry.events) as events, EventCollector(
        tidegate_settings, registry.audit
    ) as audit, EventCollector(tidegate_settings, registry.task("deployment")) as deployments, TaskResponder(
        tidegate_settings, ["deployment=hang@dev"]
    ):
        await publish(tidegate_settings, event)
        await audit.wait_for(lambda evs: "task_started" in transitions(evs, context, "dev"), TIMEOUT,
                             "the deployment to start")
        await publish(tidegate_settings, control_event(Key("sockshop", "dev", "payment"), context, ControlState.ABORT))
        await deployments.wait_for(has(TASK_CANCELLED_TYPE, context), TIMEOUT, "the cancellation on tasks.deployment")
        await events.wait_for(has(sequence_type("dev", "delivery", "finished"), context), TIMEOUT,
                              "dev.delivery.finished")
        await audit.wait_for(lambda evs: "aborted" in transitions(evs, context, "dev"), TIMEOUT, "the audit record")

    (triggered,) = of(deployments.events, task_type("deployment", "triggered"), context)
    (cancelled,) = of(deployments.events, TASK_CANCELLED_TYPE, context)
    assert cancelled.triggeredid == triggered.id
    assert (cancelled.data["task"], cancelled.data["reason"]) == ("deployment", "aborted")
    (done,) = of(events.events, sequence_type("dev", "delivery", "finished"), context)
    assert (done.data["status"], done.data["result"]) == ("aborted", "pass")
    assert transitions(audit.events, context, "dev")[-1] == "aborted"
    assert "finished" not in transitions(audit.events, context, "dev"), "an aborted run triggers no follow-up"


async def test_delay_task_timeout_and_started_timeout_fire_through_the_tick_timer(
    tidegate_settings: Settings, timer_worker
) -> None:  # type: ignore[no-untyped-def]
    registry = TopicRegistry.from_settings(tidegate_settings)
    delayed = trigger("web", "delayed", "timers")
    bounded = trigger("web", "bounded", "timers")  # same key: queued behind the delayed one
    unanswered = trigger("api", "unanswered", "timers")
    collectors = {task: EventCollector(tidegate_settings, registry.task(task)) for task in ("deployment", "test", "rollback")}
    async with EventCollector(tidegate_settings, registry.events) as events, EventCollector(
        tidegate_settings, registry.audit
    ) as audit, TaskResponder(tidegate_settings, ["test=hang", "rollback=silent"]):
        for collector in collectors.values():
            await collector.__aenter__()
        try:
            await publish(tidegate_settings, delayed, bounded, unanswered)
            await events.wait_for(
                lambda evs: all(of(evs, sequence_type("dev", name, "finished"), run.shkeptncontext)
                                for run, name in ((delayed, "delayed"), (bounded, "bounded"),
                                                  (unanswered, "unanswered"))),
                TIMEOUT, "the three timer runs to finish",
            )
            for task, context in (("test", bounded.shkeptncontext), ("rollback", unanswered.shkeptncontext)):
                await collectors[task].wait_for(has(TASK_CANCELLED_TYPE, context), TIMEOUT, f"the {task} cancellation")
                await audit.wait_for(lambda evs, context=context: "timed_out" in transitions(evs, context, "dev"),
                                     TIMEOUT, f"the {task} run's timed_out transition")
        finally:
            for collector in collectors.values():
                await collector.__aexit__(None, None, None)

    # triggeredAfter: the deployment was held for its 2 s, then sent by a tick, and the run went on.
    (delay,) = [e for e in audit.events if e.type == AUDIT_PREFIX + "task_delayed"
                and e.shkeptncontext == delayed.shkeptncontext]
    due = datetime.fromisoformat(delay.data["detail"]["due_at"])
    assert due == delay.time + timedelta(seconds=2)
    (deployment,) = of(collectors["deployment"].events, task_type("deployment", "triggered"), delayed.shkeptncontext)
    assert deployment.time >= due
    (done,) = of(events.events, sequence_type("dev", "delayed", "finished"), delayed.shkeptncontext)
    assert done.data["result"] == "pass"

    # The task's own timeout: started but never finished within 2 s.
    (test,) = of(collectors["test"].events, task_type("test", "triggered"), bounded.shkeptncontext)
    (cancelled,) = of(collectors["test"].events, TASK_CANCELLED_TYPE, bounded.shkeptncontext)
    assert (cancelled.triggeredid, cancelled.data["reason"]) == (test.id, "timedOut")
    (done,) = of(events.events, sequence_type("dev", "bounded", "finished"), bounded.shkeptncontext)
    assert (done.data["status"], done.data["result"]) == ("errored", "fail")
    assert "timeout of 2s" in done.data["message"]

    # The started timeout (TIDEGATE_TASK_STARTED_WAIT_DURATION): nobody took the rollback task.
    (rollback,) = of(collectors["rollback"].events, task_type("rollback", "triggered"), unanswered.shkeptncontext)
    (cancelled,) = of(collectors["rollback"].events, TASK_CANCELLED_TYPE, unanswered.shkeptncontext)
    assert (cancelled.triggeredid, cancelled.data["reason"]) == (rollback.id, "timedOut")
    (done,) = of(events.events, sequence_type("dev", "unanswered", "finished"), unanswered.shkeptncontext)
    assert (done.data["status"], done.data["result"]) == ("errored", "fail")
    assert "sh.keptn.event.rollback.triggered" in done.data["message"] and STARTED_WAIT in done.data["message"]
    for run, kind in ((bounded, "timed_out"), (unanswered, "timed_out")):
        assert transitions(audit.events, run.shkeptncontext, "dev")[-1] == kind


async def test_invalid_input_goes_to_the_dlq_and_the_worker_goes_on(tidegate_settings: Settings, worker, kafka_reader) -> None:  # type: ignore[no-untyped-def]
    registry = TopicRegistry.from_settings(tidegate_settings)
    carts = Key("sockshop", "dev", "carts").encode()
    misrouted = encode(trigger("orders"), Key("sockshop", "dev", "carts"))  # data says orders, key says carts
    no_service = trigger("")
    valid = trigger("carts")
    producer = AIOKafkaProducer(**aiokafka_config(tidegate_settings))
    await producer.start()
    try:
        await producer.send_and_wait(registry.events, b"{not json", key=carts)
        await producer.send_and_wait(registry.events, misrouted.value, key=misrouted.key,
                                     headers=list(misrouted.headers))
    finally:
        await producer.stop()
    async with EventCollector(tidegate_settings, registry.events) as events, TaskResponder(tidegate_settings):
        await publish(tidegate_settings, no_service, valid)
        await events.wait_for(has(sequence_type("dev", "delivery", "finished"), valid.shkeptncontext), TIMEOUT,
                              "the valid delivery after the invalid input")

    letters = [read_dead_letter(record) for record in kafka_reader(registry.dlq, 3, check=worker.assert_running)]
    assert all(letter is not None and letter.source_topic == registry.events for letter in letters), letters
    reasons = [letter.reason for letter in letters if letter is not None]
    # One letter per bad record, each saying what is wrong with it.
    for phrase in ("not valid JSON", "is not the event's project/stage/service", "has no service"):
        assert sum(phrase in reason for reason in reasons) == 1, (phrase, reasons)
    (done,) = of(events.events, sequence_type("dev", "delivery", "finished"), valid.shkeptncontext)
    assert done.data["result"] == "pass"
