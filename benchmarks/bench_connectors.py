"""Connector runtime throughput: tasks per second through the runtime next to a raw-Kafka baseline.

    python -m benchmarks.bench_connectors [--tasks 300] [--concurrency 8]

Both sides read N `deployment.triggered` events from a task topic and write replies to `events` on
the same broker (the local one of deploy/local/kafka.py, or TIDEGATE_KAFKA_BOOTSTRAP).
- baseline: one aiokafka consumer that decodes each event and sends one reply, committing per batch;
- runtime: the connector runtime with a connector whose work returns at once, so what is measured is
  the runtime's own cost: a `started` state record (acknowledged) and `.started` per task before the
  offset commit, the work as an asyncio task, `.finished` and the `finished` state record.
The ratio says what the runtime's at-least-once bookkeeping costs per task (about four acknowledged
writes instead of one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from aiokafka import AIOKafkaConsumer

from tidegate.connectors.runtime import ConnectorOptions, TaskContext, TaskOutcome
from tidegate.connectors.runtime.replies import finished_event
from tidegate.connectors.runtime.runner import ConnectorHost
from tidegate.schemas.events import KeptnEvent, task_type
from tidegate.streams.codec import decode, encode
from tidegate.streams.kafka import AsyncEventPublisher, delete_topics, provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry


class Instant:
    name = "bench"
    tasks = ("deployment",)

    def wants(self, event: KeptnEvent) -> bool:
        return True

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        return TaskOutcome.passed()


def events(count: int) -> list[KeptnEvent]:
    return [KeptnEvent(type=task_type("deployment", "triggered"), shkeptncontext=str(uuid.uuid4()),
                       data={"project": "bench", "stage": "dev", "service": f"svc{i % 16}"}) for i in range(count)]


async def publish(settings: Settings, batch: list[KeptnEvent]) -> None:
    topic = TopicRegistry.from_settings(settings).task("deployment")
    async with AsyncEventPublisher(settings, linger_ms=5) as publisher:
        await asyncio.gather(*(publisher.publish(topic, event) for event in batch))


async def count_finished(settings: Settings, expected: int) -> None:
    consumer = AIOKafkaConsumer(TopicRegistry.from_settings(settings).events, bootstrap_servers=settings.kafka_bootstrap,
                                group_id=f"bench-{uuid.uuid4().hex}", auto_offset_reset="earliest")
    await consumer.start()
    seen = 0
    try:
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=500)
            seen += sum(1 for records in batch.values() for r in records
                        if dict(r.headers).get("ce_type", b"").endswith(b".finished"))
    finally:
        await consumer.stop()


async def baseline(settings: Settings, count: int) -> float:
    topics = TopicRegistry.from_settings(settings)
    await publish(settings, events(count))
    started = time.perf_counter()
    consumer = AIOKafkaConsumer(topics.task("deployment"), bootstrap_servers=settings.kafka_bootstrap,
                                group_id=f"{settings.topic_prefix}raw", enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    done = 0
    async with AsyncEventPublisher(settings) as publisher:
        while done < count:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = decode(record.value, record.headers)
                    reply = encode(finished_event(event, "raw", TaskOutcome.passed()))
                    await publisher.publish_record(topics.events, reply)
                    done += 1
            if batch:
                await consumer.commit()
    await consumer.stop()
    return count / (time.perf_counter() - started)


async def runtime(settings: Settings, count: int, concurrency: int) -> float:
    await publish(settings, events(count))
    host = ConnectorHost([Instant()], settings, {"bench": ConnectorOptions(concurrency=concurrency, timeout=60,
                                                                          max_waiting=max(64, concurrency))})
    started = time.perf_counter()
    running = asyncio.create_task(host.run())
    await count_finished(settings, count)
    elapsed = time.perf_counter() - started
    host.stop()
    await running
    return count / elapsed


def fresh_settings(bootstrap: str) -> Settings:
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.", partitions=4)
    report = provision_topics(settings, TopicRegistry.from_settings(settings).specs(tasks=["deployment"]))
    if not report.ok:
        raise SystemExit(f"cannot create the benchmark topics: {report.problems}")
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    bootstrap = os.environ.get("TIDEGATE_KAFKA_BOOTSTRAP")
    if not bootstrap:
        from deploy.local.kafka import ensure_kafka

        bootstrap = ensure_kafka()
    raw_settings, runtime_settings = fresh_settings(bootstrap), fresh_settings(bootstrap)
    try:
        raw = asyncio.run(baseline(raw_settings, args.tasks))
        ours = asyncio.run(runtime(runtime_settings, args.tasks, args.concurrency))
    finally:
        delete_topics(raw_settings, raw_settings.topic_prefix)
        delete_topics(runtime_settings, runtime_settings.topic_prefix)
    print(f"raw consume+reply baseline: {raw:8.1f} tasks/s")
    print(f"connector runtime:          {ours:8.1f} tasks/s  (ratio {ours / raw:.2f} of the baseline; "
          f"includes startup: state topic, group join)")


if __name__ == "__main__":
    main()
