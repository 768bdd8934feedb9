"""A worker's restarts (issue 17): it outlives its broker's, and comes back from a kill -9 as the same member.

Broker restarts. Found by test_faults.py: a worker could exit with faust-streaming's NodeNotReadyError,
raised from Faust's own topic creation (`_really_create_topic`) when the broker went away while Faust
declared a table's changelog. The worker's app no longer lets Faust create topics
(`streams.app.create_app`): it creates its tables' changelogs itself, through `provision_topics`,
retrying while Kafka is away. The test starts a broker of its own (deploy/local/kafka.py
`kafka_cluster(1)`, so killing it touches no other test) and a worker with the sequencer (loop host) and
the remediator (Faust host, with a table whose changelog nobody provisioned beforehand). It kills the
broker -9 and starts it again, a few times; after each restart a sequence trigger and a get-action task
must be answered by the same worker process.

Worker restarts. A worker is a static member of its groups (`agents.worker.claim_instance_id`): killed -9
and started again on the same host with the same data directory, it rejoins both groups (the loop's and
Faust's) under the same `group.instance.id`, so Kafka hands it its partitions back at once instead of
waiting for the dead member's session.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from deploy.local.kafka import KafkaCluster, kafka_cluster
from tests.conftest import FaustWorker, StartWorker
from tests.support.kafka import EventCollector, publish_files
from tidegate.schemas.events import KeptnEvent, sequence_type, task_type
from tidegate.streams.kafka import AsyncEventPublisher, confluent_config, describe_topics, provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PROJECT = "restarts"
SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: restarts}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}]
"""
RESTARTS = 3
ANSWER_TIMEOUT = 180.0  # seconds a probe may wait for its answer (the worker reconnects meanwhile)
REMEDIATIONS = ("worker", "remediations")  # the remediator's table, as the Faust host names its changelog


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaCluster]:
    with kafka_cluster(1, home=tmp_path / "kafka") as started:
        yield started


@pytest.fixture
def restart_settings(broker: KafkaCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TIDEGATE_AGENTS", "sequencer,remediator")
    monkeypatch.setenv("TIDEGATE_AGENT_HOSTS", "remediator=faust")  # Faust's table and group are under test
    settings = Settings(kafka_bootstrap=broker.bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=2,
                        store="memory://", data_dir=tmp_path / "faust", web_enabled=False)
    # Every topic but the remediator's table changelog: the worker must create that one itself.
    report = provision_topics(settings, TopicRegistry.from_settings(settings).specs())
    assert report.ok, report.problems
    return settings


def delivery(service: str) -> KeptnEvent:
    return KeptnEvent(type=sequence_type("dev", "delivery", "triggered"), source="ci", shkeptncontext=str(uuid.uuid4()),
                      data={"project": PROJECT, "stage": "dev", "service": service,
                            "configurationChange": {"values": {"image": f"{service}:1.0.0"}}})


def get_action(service: str) -> KeptnEvent:
    return KeptnEvent(type=task_type("get-action", "triggered"), source="ci", shkeptncontext=str(uuid.uuid4()),
                      data={"project": PROJECT, "stage": "dev", "service": service,
                            "problem": {"problemTitle": "restart", "rootCause": "restart"}})


async def wait_for_answer(collector: EventCollector, matches: Callable[[KeptnEvent], bool], worker: FaustWorker,
                          what: str) -> None:
    """Wait until `collector` has seen an event that `matches`, failing as soon as the worker exits."""
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while not any(matches(event) for event in collector.events):
        worker.assert_running()
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {ANSWER_TIMEOUT:.0f} s:\n{worker.log_tail(60)}")
        await asyncio.sleep(0.2)


async def both_hosts_answer(settings: Settings, events: EventCollector, deployments: EventCollector,
                            worker: FaustWorker, name: str) -> None:
    """A new delivery (the sequencer answers with deployment.triggered) and a get-action task (the
    remediator answers on `events`), each answered while the worker keeps running."""
    registry = TopicRegistry.from_settings(settings)
    trigger, action = delivery(f"svc-{name}"), get_action(f"svc-{name}")
    async with AsyncEventPublisher(settings) as publisher:
        await publisher.publish(registry.events, trigger)
        await publisher.publish(registry.task("get-action"), action)
    await wait_for_answer(deployments, lambda e: e.type == task_type("deployment", "triggered")
                          and e.shkeptncontext == trigger.shkeptncontext, worker, f"deployment.triggered ({name})")
    await wait_for_answer(events, lambda e: e.type.startswith("sh.keptn.event.get-action.")
                          and e.triggeredid == action.id, worker, f"answer of the remediator ({name})")


async def test_a_worker_outlives_broker_restarts_and_faust_creates_no_topic(
    broker: KafkaCluster, restart_settings: Settings, faust_worker: StartWorker,
) -> None:
    settings = restart_settings
    registry = TopicRegistry.from_settings(settings)
    publish_files(settings, PROJECT, {"shipyard.yaml": SHIPYARD})
    node = broker.layouts[0].node_id
    worker = faust_worker("tidegate.agents.main:app", settings)
    try:
        async with EventCollector(settings, registry.events) as events, \
                EventCollector(settings, registry.task("deployment")) as deployments:
            await both_hosts_answer(settings, events, deployments, worker, "before")
            for restart in range(1, RESTARTS + 1):
                await asyncio.to_thread(broker.kill, node)
                await asyncio.to_thread(broker.start, node)
                await both_hosts_answer(settings, events, deployments, worker, f"restart-{restart}")
        worker.assert_running()
        log = worker.log_file.read_text(errors="replace")
        # Faust never took the path that raised NodeNotReadyError: it logs "Creating topic" as it enters it.
        assert "Creating topic" not in log
        assert "NodeNotReadyError" not in "\n".join(line for line in log.splitlines() if "Traceback" in line)
        changelog = registry.changelog(*REMEDIATIONS)
        described = describe_topics(settings, names=[changelog])[changelog]  # created by the worker itself
        assert (described.partitions, described.cleanup_policy) == (settings.partitions, "compact")
    finally:
        worker.stop()


def static_members(settings: Settings, group: str) -> list[str]:
    """The `group.instance.id` of each member of `group` (empty: a dynamic member)."""
    admin = AdminClient(confluent_config(settings))
    description = admin.describe_consumer_groups([group], request_timeout=30)[group].result()
    return sorted(member.group_instance_id or "" for member in description.members)


async def test_a_worker_killed_9_comes_back_as_the_same_static_member_of_both_groups(
    tidegate_settings: Settings, faust_worker: StartWorker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIDEGATE_AGENTS", "sequencer,remediator")
    monkeypatch.setenv("TIDEGATE_AGENT_HOSTS", "remediator=faust")  # one agent on each host
    settings = tidegate_settings
    registry = TopicRegistry.from_settings(settings)
    publish_files(settings, PROJECT, {"shipyard.yaml": SHIPYARD})
    groups = [registry.app_id("sequencer"), registry.app_id("worker")]  # the loop's group, Faust's group
    async with EventCollector(settings, registry.events) as events, \
            EventCollector(settings, registry.task("deployment")) as deployments:
        first = faust_worker("tidegate.agents.main:app", settings)
        await both_hosts_answer(settings, events, deployments, first, "first")
        before = {group: await asyncio.to_thread(static_members, settings, group) for group in groups}
        (instance,) = before[groups[0]]
        assert instance and before[groups[1]] == [instance], before  # one static member, one id in both groups

        first.process.send_signal(signal.SIGKILL)
        first.process.wait(30)
        second = faust_worker("tidegate.agents.main:app", settings)
        try:
            await both_hosts_answer(settings, events, deployments, second, "second")
            after = {group: await asyncio.to_thread(static_members, settings, group) for group in groups}
            assert after == before  # the dead member replaced by its successor, not a second member beside it
        finally:
            second.stop()
