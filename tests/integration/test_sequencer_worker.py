"""The sequencer and approver agents in a real Faust worker on the real broker, with scripted responders."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from tests.support.kafka import EventCollector, publish_files
from tests.support.responder import TaskResponder
from tidegate.schemas.events import KeptnEvent, sequence_type
from tidegate.streams.kafka import AsyncEventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: shipyard-sockshop}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - {name: deployment, properties: {deploymentstrategy: direct}}
            - {name: test, properties: {teststrategy: functional}}
            - {name: evaluation}
            - {name: release}
    - name: staging
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks:
            - {name: deployment, properties: {deploymentstrategy: blue_green_service}}
            - {name: test, properties: {teststrategy: performance}}
            - {name: evaluation}
            - {name: approval, properties: {pass: automatic, warning: manual}}
            - {name: release}
        - name: rollback
          triggeredOn: [{event: staging.delivery.finished, selector: {match: {result: fail}}}]
          tasks: [{name: rollback}]
    - name: production
      sequences:
        - name: delivery
          triggeredOn: [{event: staging.delivery.finished}]
          tasks:
            - {name: deployment, properties: {deploymentstrategy: blue_green_service}}
            - {name: release}
"""
TIMEOUT = 120.0


def trigger(service: str, image: str = "carts:0.11.1", stage: str = "dev") -> KeptnEvent:
    return KeptnEvent(
        type=sequence_type(stage, "delivery", "triggered"),
        source="ci",
        shkeptncontext=str(uuid.uuid4()),
        data={
            "project": "sockshop",
            "stage": stage,
            "service": service,
            "configurationChange": {"values": {"image": image}},
        },
    )


def finished_of(events: list[KeptnEvent], context: str, stage: str, sequence: str = "delivery") -> list[KeptnEvent]:
    wanted = sequence_type(stage, sequence, "finished")
    return [e for e in events if e.type == wanted and e.shkeptncontext == context]


@pytest.fixture
def worker(tidegate_settings: Settings, faust_worker):  # type: ignore[no-untyped-def]
    publish_files(tidegate_settings, "sockshop", {"shipyard.yaml": SHIPYARD})
    settings = tidegate_settings.model_copy(update={})
    started = faust_worker("tidegate.agents.main:app", settings)
    yield started
    started.assert_running()


async def test_three_stage_delivery_reaches_production(tidegate_settings: Settings, worker) -> None:  # type: ignore[no-untyped-def]
    registry = TopicRegistry.from_settings(tidegate_settings)
    event = trigger("carts")
    async with EventCollector(tidegate_settings, registry.events) as events, TaskResponder(tidegate_settings) as responder:
        async with AsyncEventPublisher(tidegate_settings) as publisher:
            await publisher.publish(registry.events, event)
        await events.wait_for(
            lambda evs: bool(finished_of(evs, event.shkeptncontext or "", "production")),
            TIMEOUT,
            "production.delivery.finished",
        )
    context = event.shkeptncontext or ""
    for stage in ("dev", "staging", "production"):
        (done,) = finished_of(events.events, context, stage)
        assert done.data["result"] == "pass", done.data
        assert done.data["status"] == "succeeded"
    # The approval in staging was automatic (pass), answered by the approver agent, not the responder.
    approvals = [e for e in events.events if e.type == "sh.keptn.event.approval.finished" and e.shkeptncontext == context]
    assert [a.data["result"] for a in approvals] == ["pass"]
    assert approvals[0].source == "tidegate-approver"
    # Each task was triggered exactly once per stage, with the merged payload carrying the image forward.
    tasks = Counter((e.type, e.data["stage"]) for e in responder.seen if e.shkeptncontext == context)
    assert tasks[("sh.keptn.event.deployment.triggered", "production")] == 1
    assert all(count == 1 for count in tasks.values()), tasks
    prod_deploy = next(e for e in responder.seen if e.type == "sh.keptn.event.deployment.triggered" and e.data["stage"] == "production")
    assert prod_deploy.data["configurationChange"]["values"]["image"] == "carts:0.11.1"
    assert prod_deploy.gitcommitid, "events carry the configuration version they used"


async def test_failed_staging_evaluation_rolls_back_and_never_reaches_production(tidegate_settings: Settings, worker) -> None:  # type: ignore[no-untyped-def]
    registry = TopicRegistry.from_settings(tidegate_settings)
    event = trigger("carts", "carts:0.11.2")
    context = event.shkeptncontext or ""
    async with EventCollector(tidegate_settings, registry.events) as events, TaskResponder(
        tidegate_settings, ["evaluation=fail@staging"]
    ) as responder:
        async with AsyncEventPublisher(tidegate_settings) as publisher:
            await publisher.publish(registry.events, event)
        await events.wait_for(
            lambda evs: bool(finished_of(evs, context, "staging", "rollback")), TIMEOUT, "staging.rollback.finished"
        )
    (staging,) = finished_of(events.events, context, "staging")
    assert staging.data["result"] == "fail"
    assert finished_of(events.events, context, "staging", "rollback")[0].data["result"] == "pass"
    assert not [e for e in events.events if e.data.get("stage") == "production"], "production must never be reached"
    # The release after the failed evaluation was skipped.
    releases = [e for e in responder.seen if e.type == "sh.keptn.event.release.triggered" and e.data.get("stage") == "staging"]
    assert releases == []


async def test_two_deliveries_of_one_service_are_queued_in_order(tidegate_settings: Settings, worker) -> None:  # type: ignore[no-untyped-def]
    registry = TopicRegistry.from_settings(tidegate_settings)
    first, second = trigger("carts", "carts:1"), trigger("carts", "carts:2")
    async with EventCollector(tidegate_settings, registry.events) as events, TaskResponder(tidegate_settings) as responder:
        async with AsyncEventPublisher(tidegate_settings) as publisher:
            await publisher.publish(registry.events, first)
            await publisher.publish(registry.events, second)
        await events.wait_for(
            lambda evs: bool(finished_of(evs, second.shkeptncontext or "", "dev")), TIMEOUT, "the second dev delivery"
        )
    dev_tasks = [e.shkeptncontext for e in responder.seen if e.data.get("stage") == "dev"]
    # While the first delivery holds dev's lock, none of the second's tasks run: no interleaving.
    assert dev_tasks == [first.shkeptncontext] * 4 + [second.shkeptncontext] * 4, dev_tasks
