"""A three-broker cluster loses a broker mid-run: 100 deliveries, nothing lost, stuck or doubled.

The test starts a KRaft cluster of its own (deploy/local/kafka.py `kafka_cluster`: three nodes, each
broker and controller, fresh ports below the ephemeral range, its state in the test's tmp dir) with
replication factor 3 and min.insync.replicas 2, the sequencer worker, and a responder playing the
connectors (as test_sequencer_crash.py does). While the deliveries run, the broker leading the most
partitions of the test's topics is killed with SIGKILL; the run must go on on the two others (every
write still reaches two replicas), then the broker is started again (it recovers its logs and
rejoins). Every sequence must finish once with a pass, and no task may be triggered twice under
different ids (repeats under the same id are at-least-once and are counted).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from deploy.local.kafka import KafkaCluster, kafka_cluster
from tests.conftest import StartWorker
from tests.support.deliveries import Ledger, delivery_trigger, sequencer_only, wait_until
from tests.support.kafka import EventCollector, publish_files
from tests.support.responder import TaskResponder
from tidegate.schemas.events import sequence_type
from tidegate.streams.kafka import AsyncEventPublisher, provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PROJECT = "clustertest"
SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: clustertest}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}, {name: release}]
"""
DELIVERIES = 100
TASKS = [("dev", "deployment"), ("dev", "test"), ("dev", "release")]
TASK_TOPICS = ("deployment", "test", "release")
FINAL_TYPE = sequence_type("dev", "delivery", "finished")
ANSWER_DELAY = 0.5  # seconds from a task's .triggered to its .finished: sequences are mid-way at the kill
PROGRESS_TIMEOUT = 150.0
FINISH_TIMEOUT = 240.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    with kafka_cluster(3, home=tmp_path / "cluster") as started:
        yield started


@pytest.fixture
def cluster_settings(cluster: KafkaCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    sequencer_only(monkeypatch)
    settings = Settings(
        kafka_bootstrap=cluster.bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=4,
        replication_factor=3, store="memory://", data_dir=tmp_path / "faust", web_enabled=False,
    )
    report = provision_topics(settings, TopicRegistry.from_settings(settings).specs())
    assert report.ok, report.problems
    return settings


def leaders(settings: Settings) -> Counter[int]:
    """How many partitions of the test's topics (and of the consumer offsets) each broker leads."""
    metadata = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0}).list_topics(timeout=15)
    return Counter(
        partition.leader
        for name, topic in metadata.topics.items()
        if name.startswith(settings.topic_prefix) or name == "__consumer_offsets"
        for partition in topic.partitions.values()
    )


def durability(settings: Settings) -> tuple[int, str]:
    """The events topic's replica count and min.insync.replicas, as the cluster reports them. Each
    broker learns a new topic on its own, so the metadata is read until it lists the partition."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
    events = TopicRegistry.from_settings(settings).events
    deadline = time.monotonic() + 60
    while not (partitions := admin.list_topics(events, timeout=15).topics[events].partitions):
        assert time.monotonic() < deadline, f"the cluster's metadata never listed the partitions of {events}"
        time.sleep(0.1)
    replicas = len(partitions[0].replicas)
    (configs,) = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, events)]).values()
    return replicas, configs.result(timeout=15)["min.insync.replicas"].value


async def test_a_killed_broker_of_three_loses_no_delivery_and_doubles_no_task(
    cluster: KafkaCluster, cluster_settings: Settings, faust_worker: StartWorker,
    capsys: pytest.CaptureFixture[str], record_property: Callable[[str, object], None],
) -> None:
    settings = cluster_settings
    began = time.monotonic()
    assert await asyncio.to_thread(durability, settings) == (3, "2")
    registry = TopicRegistry.from_settings(settings)
    publish_files(settings, PROJECT, {"shipyard.yaml": SHIPYARD})
    triggers = [delivery_trigger(PROJECT, f"svc-{n:03d}") for n in range(DELIVERIES)]
    expected = {e.shkeptncontext for e in triggers}

    worker = faust_worker("tidegate.agents.main:app", settings)
    collectors = [EventCollector(settings, registry.task(task)) for task in TASK_TOPICS]
    async with EventCollector(settings, registry.events) as events, TaskResponder(
        settings, delay=ANSWER_DELAY
    ) as responder:
        for collector in collectors:
            await collector.__aenter__()
        try:
            async with AsyncEventPublisher(settings) as publisher:
                for event in triggers:
                    await publisher.publish(registry.events, event)

            def dispatched() -> set[str]:
                return {e.shkeptncontext or "" for c in collectors for e in c.events
                        if e.type.endswith(".triggered")} & expected

            def done() -> set[str]:
                return {e.shkeptncontext or "" for e in events.events if e.type == FINAL_TYPE} & expected

            await wait_until(lambda: len(dispatched()) >= DELIVERIES // 4, PROGRESS_TIMEOUT,
                             "a quarter of the deliveries to dispatch a task", worker)
            led = await asyncio.to_thread(leaders, settings)
            victim, victim_led = led.most_common(1)[0]
            done_at_kill = len(done())
            await asyncio.to_thread(cluster.kill, victim)
            killed_at = time.monotonic()
            # The run goes on with one broker down: more deliveries finish on the two others.
            await wait_until(lambda: len(done()) >= min(DELIVERIES, done_at_kill + DELIVERIES // 5), PROGRESS_TIMEOUT,
                             "deliveries to finish with a broker down", worker)
            done_while_down = len(done()) - done_at_kill
            await asyncio.to_thread(cluster.start, victim)
            down_for = time.monotonic() - killed_at
            await wait_until(lambda: len(done()) == DELIVERIES, FINISH_TIMEOUT,
                             f"all {DELIVERIES} deliveries to finish", worker)
            worker.assert_running()
        finally:
            for collector in collectors:
                await collector.__aexit__(None, None, None)
        answered = len(responder.seen)
    # The preconditions of the test itself: the kill interrupted work.
    assert done_at_kill < DELIVERIES, "every delivery finished before the broker was killed"

    ledger = Ledger.read(events.events, (e for c in collectors for e in c.events), expected,
                         lambda event: event.type == FINAL_TYPE)
    # Every delivery finished with a pass, under one id; each of its tasks was triggered under one id.
    ledger.assert_finished_once(expected)
    for finals in ledger.finals.values():
        assert all((e.data["result"], e.data["status"]) == ("pass", "succeeded") for e in finals), finals
    ledger.assert_no_task_twice()
    for context in expected:
        assert ledger.tasks_of(context) == sorted(TASKS), context

    record_property("repeated_task_triggers", ledger.repeated_tasks)
    record_property("repeated_sequence_finished", ledger.repeated_finals)
    with capsys.disabled():
        print(
            f"\n[cluster test] {DELIVERIES} deliveries on 3 brokers (RF 3, min ISR 2); killed broker {victim} "
            f"leading {victim_led} of {sum(led.values())} partitions ({dict(led)}) with {done_at_kill} done; "
            f"{done_while_down} finished while it was down ({down_for:.0f} s incl. its restart); "
            f"{len(ledger.triggered)} tasks triggered ({ledger.repeated_tasks} repeated under the same id), "
            f"{ledger.repeated_finals} repeated .finished; {answered} task records answered; "
            f"{time.monotonic() - began:.0f} s in the test body, the cluster started before"
        )
