"""Produce-to-consume round trips by producer client and by how the consumer subscribes.

    python -m benchmarks.bench_consumer_fanin [--rounds 150] [--topics 6] [--partitions 12]

Why it exists: the sequencer benchmark's stand-in connector consumes the task topics, and how it does
so changes the hop it measures. For each producer (aiokafka as the raw baseline uses it; confluent-kafka
as the sequencer's processor uses it) one record at a time goes to a consumer that reads
- `one topic`: one topic of `--partitions` partitions (the raw baseline's consumer);
- `all topics`: one consumer subscribed to `--topics` such topics (every partition of all of them);
- `one per topic`: one consumer per topic, each reading its own (as Tidegate's connectors do).
Each shape has topics of its own, so no consumer reads another shape's records; the rounds are
interleaved, so every figure sees the same moments of a noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from confluent_kafka import Producer

from benchmarks.bench_sequencer import broker, percentile
from tidegate.streams.kafka import aiokafka_config, delete_topics, provision_topics
from tidegate.streams.kafka.loop import producer_config
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicSpec

WARM_UP = 10
ONE_TOPIC, ALL_TOPICS, ONE_PER_TOPIC = "one topic", "all topics", "one per topic"
Send = Callable[[str, bytes, bytes], Awaitable[None]]


class Inbox:
    """Every record the given consumers read, in one queue (each consumer pumped by its own task)."""

    def __init__(self, consumers: list[AIOKafkaConsumer]) -> None:
        self.consumers = consumers
        self.records: asyncio.Queue[ConsumerRecord[bytes, bytes]] = asyncio.Queue()
        self._pumps: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for consumer in self.consumers:
            await consumer.start()
            await consumer.getmany(timeout_ms=2000)  # joined and assigned before the clock runs
        self._pumps = [asyncio.create_task(self._pump(consumer)) for consumer in self.consumers]

    async def stop(self) -> None:
        for pump in self._pumps:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        for consumer in self.consumers:
            await consumer.stop()

    async def _pump(self, consumer: AIOKafkaConsumer) -> None:
        async for record in consumer:
            self.records.put_nowait(record)

    async def wait_for(self, payload: bytes) -> None:
        while (await asyncio.wait_for(self.records.get(), 30)).value != payload:
            pass


@contextlib.asynccontextmanager
async def senders(settings: Settings) -> AsyncIterator[dict[str, Send]]:
    aio = AIOKafkaProducer(**aiokafka_config(settings), acks="all")
    confluent = Producer(producer_config(settings))  # the loop's settings, as the sequencer uses them

    async def aio_send(topic: str, value: bytes, key: bytes) -> None:
        await aio.send(topic, value, key=key)

    async def confluent_send(topic: str, value: bytes, key: bytes) -> None:
        confluent.produce(topic, value, key=key)
        confluent.poll(0)

    await aio.start()
    try:
        yield {"aiokafka": aio_send, "confluent-kafka": confluent_send}
    finally:
        await aio.stop()
        confluent.flush(10)


async def measure(settings: Settings, topics: dict[str, list[str]], rounds: int) -> dict[tuple[str, str], list[float]]:
    def consumer(*names: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(*names, **aiokafka_config(settings), group_id=f"fanin-{uuid.uuid4().hex}",
                                auto_offset_reset="latest")

    inboxes = {ONE_TOPIC: Inbox([consumer(topics[ONE_TOPIC][0])]), ALL_TOPICS: Inbox([consumer(*topics[ALL_TOPICS])]),
               ONE_PER_TOPIC: Inbox([consumer(topic) for topic in topics[ONE_PER_TOPIC]])}
    for inbox in inboxes.values():
        await inbox.start()
    figures: dict[tuple[str, str], list[float]] = {}
    number = 0
    try:
        async with senders(settings) as sends:
            for round_number in range(WARM_UP + rounds):
                for client, send in sends.items():
                    for shape, inbox in inboxes.items():
                        number += 1
                        payload = f"{number}".encode()
                        shape_topics = topics[shape]
                        started = time.perf_counter()
                        await send(shape_topics[number % len(shape_topics)], payload, f"key-{number % 16}".encode())
                        await inbox.wait_for(payload)
                        if round_number >= WARM_UP:
                            figures.setdefault((client, shape), []).append(time.perf_counter() - started)
    finally:
        for inbox in inboxes.values():
            await inbox.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--topics", type=int, default=6, help="task topics a connector set reads (the bench's six)")
    parser.add_argument("--partitions", type=int, default=12)
    options = parser.parse_args()
    with broker() as bootstrap:
        settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=f"fanin{uuid.uuid4().hex[:8]}.",
                            partitions=options.partitions)
        topics = {shape: [f"{settings.topic_prefix}{shape.replace(' ', '-')}.t{number}"
                          for number in range(1 if shape == ONE_TOPIC else options.topics)]
                  for shape in (ONE_TOPIC, ALL_TOPICS, ONE_PER_TOPIC)}
        report = provision_topics(settings, [TopicSpec(topic, options.partitions)
                                             for names in topics.values() for topic in names])
        if not report.ok:
            raise SystemExit(f"could not create the topics: {report.problems}")
        try:
            figures = asyncio.run(measure(settings, topics, options.rounds))
        finally:
            delete_topics(settings, settings.topic_prefix)
    print(f"round trip, one record at a time ({options.rounds} rounds, {options.topics} topics of "
          f"{options.partitions} partitions)")
    for (client, shape), values in figures.items():
        print(f"   {client:16s} -> {shape:14s} p50 {percentile(values, 0.5) * 1000:6.2f} ms   "
              f"p99 {percentile(values, 0.99) * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
