"""Kafka plumbing of the runtime: topic creation and the connector's state log (the shell part)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from tidegate.connectors.runtime.state import TaskMemory, TaskRecord, decode_record, encode_record
from tidegate.streams.settings import Settings

log = logging.getLogger("tidegate.connector.runtime")

STATE_TOPIC_CONFIG = {"cleanup.policy": "compact"}


async def ensure_topics(settings: Settings, topics: Iterable[tuple[str, int, dict[str, str]]]) -> dict[str, int]:
    """Create the topics that do not exist yet (name, partitions, config); returns each one's
    partition count as the broker knows it (wanted or not, an existing topic keeps its own)."""
    wanted = list(topics)
    admin = AIOKafkaAdminClient(**settings.aiokafka_config())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, settings.replication_factor, topic_configs=config)
            for name, partitions, config in wanted
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another instance raced us
                await admin.create_topics(missing)
        # Right after creation the broker may describe a topic without its partitions for a moment.
        for _ in range(100):
            described = await admin.describe_topics([name for name, _, _ in wanted])
            counts = {str(item["topic"]): len(item["partitions"]) for item in described}
            if all(counts.get(name, 0) > 0 for name, _, _ in wanted):
                return counts
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the broker did not show the partitions of {[name for name, _, _ in wanted]} "
                           "within 10 s of creating them; is Kafka healthy?")
    finally:
        await admin.close()


class StateLog:
    """The connector's memory (TaskMemory) backed by its compacted state topic.

    `start` reads the topic from the beginning up to its end; a background task keeps following it
    (other instances of the same connector write to it too); `catch_up` waits until every record
    written before the call has been read. `write` waits for the broker's acknowledgement.
    """

    def __init__(self, settings: Settings, topic: str, producer: AIOKafkaProducer) -> None:
        self.topic = topic
        self.memory = TaskMemory()
        self._settings = settings
        self._producer = producer
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._progress = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None

    async def start(self, partitions: int, timeout: float = 60.0) -> None:
        """Read the topic (with `partitions` partitions, see ensure_topics) to its end, then follow it."""
        consumer = AIOKafkaConsumer(**self._settings.aiokafka_config(), enable_auto_commit=False)
        await consumer.start()
        self._consumer = consumer
        # Assigned by number: a consumer's metadata only covers topics it already reads.
        self._partitions = [TopicPartition(self.topic, p) for p in range(partitions)]
        consumer.assign(self._partitions)
        await consumer.seek_to_beginning(*self._partitions)
        for tp in self._partitions:
            self._positions[tp] = await consumer.position(tp)
        self._follower = asyncio.create_task(self._follow(), name=f"state-log:{self.topic}")
        await self.catch_up(timeout)
        log.info("state log %s: %d task(s) remembered", self.topic, len(self.memory))

    async def _follow(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    decoded = decode_record(record.key, record.value)
                    if decoded is not None:
                        self.memory.apply(*decoded)
            for tp in self._partitions:
                self._positions[tp] = await consumer.position(tp)
            self._progress.set()

    async def catch_up(self, timeout: float = 60.0) -> None:
        """Wait until everything written to the state topic before this call has been read."""
        assert self._consumer is not None
        ends = await self._consumer.end_offsets(self._partitions)

        async def reached() -> None:
            while any(self._positions.get(tp, 0) < end for tp, end in ends.items()):
                if self._follower is not None and self._follower.done():
                    self._follower.result()  # re-raise what stopped the follower
                self._progress.clear()
                await self._progress.wait()

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError as error:
            raise RuntimeError(
                f"could not read the state topic {self.topic} to its end within {timeout:g} s; is Kafka reachable?"
            ) from error

    async def write(self, triggered_id: str, record: TaskRecord) -> None:
        key, value = encode_record(triggered_id, record)
        await self._producer.send_and_wait(self.topic, value=value, key=key)
        self.memory.apply(triggered_id, record)

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        if self._consumer is not None:
            await self._consumer.stop()
